import os

import pytest

from tests import leaks
from tests.registry_servers import HTPASSWD_BIN, OPENSSL_BIN, REGISTRY_BIN, RegistryServer, tar_from_dir
from tests.rootfs import make_busybox_rootfs
from tests.runtime_root import IMAGE, RT, image_root, leftovers


def _xdist_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_sessionstart(session):
    """The leak baseline (tests/leaks.py), taken once: by the xdist controller before
    any worker starts, or by the one process of a plain run."""
    if not _xdist_worker(session.config):
        session.config._nutshell_leak_baseline = leaks.snapshot()
        session.config._nutshell_leaked = set()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """An xdist worker ended; if it ran tests/test_zz_leaks.py, the controller checks."""
    if getattr(node, "workeroutput", {}).get("nutshell_leak_check"):
        node.config._nutshell_leak_check = True


def pytest_sessionfinish(session, exitstatus):
    """Under xdist, the leak check asked for by tests/test_zz_leaks.py runs here, once,
    after every worker has ended; a leak fails the session."""
    config = session.config
    if _xdist_worker(config) or not getattr(config, "_nutshell_leak_check", False):
        return
    leaked = leaks.leftover(config._nutshell_leak_baseline)
    if leaked:
        config._nutshell_leaked = leaked
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    leaked = getattr(config, "_nutshell_leaked", None)
    if leaked:
        terminalreporter.section("leak check failed (checked by the xdist controller)", sep="=", red=True, bold=True)
        terminalreporter.write_line(leaks.report(leaked), red=True)


@pytest.fixture(autouse=True)
def _shared_layer_mounts_released(tmp_path_factory):
    """The shared layer mounts of this worker's temporary roots are released after each
    test (tests/leaks.py, release_layer_mounts): they last until their layer is deleted,
    and a test's root never is."""
    yield
    if os.geteuid() == 0:
        leaks.release_layer_mounts(under=str(tmp_path_factory.getbasetemp()))


def pytest_collection_modifyitems(config, items):
    skip_root = pytest.mark.skip(reason="needs root")
    for item in items:
        if "integration" in item.keywords and os.geteuid() != 0:
            item.add_marker(skip_root)
    # the leak check runs after everything else
    last = [i for i in items if i.module.__name__.endswith("test_zz_leaks")]
    for i in last:
        items.remove(i)
    items.extend(last)


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory) -> str:
    """A busybox rootfs directory (read-only by convention: copy before changing it)."""
    return make_busybox_rootfs(str(tmp_path_factory.mktemp("busybox-rootfs")))


@pytest.fixture
def root(tmp_path) -> str:
    """A fresh, empty Nutshell state root."""
    d = tmp_path / "root"
    d.mkdir()
    return str(d)


@pytest.fixture(scope="module")
def rt(tmp_path_factory, busybox_rootfs):
    """tests/runtime_root.py's RT on a fresh root of this test module."""
    r = image_root(RT, tmp_path_factory.mktemp("rt"), busybox_rootfs, IMAGE)
    yield r
    ids = [c["Id"] for c in r.engine.ps(all=True)]
    for cid in ids:
        r.engine.rm(cid, force=True)
    left = [x for cid in ids for x in leftovers(r, cid)]
    assert not left, f"left behind: {left}"


# --- registries (tests/registry_servers.py) ---------------------------------------------
def _registry_server(mode: str, tools: dict):
    """Start a RegistryServer in ``mode`` for the session, or skip when a tool is missing."""
    if not (os.path.exists(REGISTRY_BIN) and all(tools.values())):
        pytest.skip(" or ".join(["docker-registry", *tools]) + " is not installed")
    srv = RegistryServer(mode).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def registry():
    """An anonymous registry (plain HTTP on loopback)."""
    yield from _registry_server("anonymous", {})


@pytest.fixture(scope="session")
def basic_registry():
    """A registry with htpasswd (bcrypt) Basic auth; users in USERS."""
    yield from _registry_server("basic", {"htpasswd": HTPASSWD_BIN is not None})


@pytest.fixture(scope="session")
def token_registry():
    """A registry in token mode with its token server (anonymous pull, users push)."""
    yield from _registry_server("token", {"openssl": OPENSSL_BIN is not None})


@pytest.fixture(scope="session")
def tls_registry():
    """An anonymous registry over HTTPS with a self-signed certificate."""
    yield from _registry_server("tls", {"openssl": OPENSSL_BIN is not None})


@pytest.fixture
def docker_config(tmp_path, monkeypatch):
    """An empty $DOCKER_CONFIG so tests never read or write the real ~/.docker."""
    d = tmp_path / "docker-config"
    d.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(d))
    return str(d)


@pytest.fixture
def registry_env(docker_config, tmp_path, monkeypatch):
    """Private $DOCKER_CONFIG and Nutshell config dir: tests never touch the user's."""
    nc = tmp_path / "nutshell-config"
    nc.mkdir()
    monkeypatch.setenv("NUTSHELL_CONFIG_DIR", str(nc))
    return {"DOCKER_CONFIG": docker_config, "NUTSHELL_CONFIG_DIR": str(nc)}


@pytest.fixture(scope="session")
def busybox_layer_tar(busybox_rootfs) -> bytes:
    return tar_from_dir(busybox_rootfs)
