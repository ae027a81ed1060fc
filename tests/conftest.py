import os

import pytest

from tests.rootfs import make_busybox_rootfs


def pytest_sessionstart(session):
    from tests import leaks

    session.config._nutshell_leak_baseline = leaks.snapshot()


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
