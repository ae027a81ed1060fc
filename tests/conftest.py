import os

import pytest

from tests import leaks
from tests.rootfs import make_busybox_rootfs


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
