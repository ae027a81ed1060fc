"""The whole suite left nothing behind (tests/leaks.py). A plain run runs this last
(tests/conftest.py moves it to the end) and checks here; under xdist this worker's
neighbours may still be running, so it asks the controller to check once they all ended."""

import os

import pytest

from tests import leaks


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_suite_left_no_kernel_objects_behind(request):
    config = request.config
    if hasattr(config, "workerinput"):  # an xdist worker
        config.workeroutput["nutshell_leak_check"] = True
        pytest.skip("checked by the xdist controller after every worker has ended")
    # this process's own read-only mounts of layer images (core.fs.imagemount.readable,
    # used in process by the tests) last until it exits, as an xdist worker's do; let them
    # go first, so what is left was left by something else (a container's init)
    import sys

    if "core.fs.imagemount" in sys.modules:
        sys.modules["core.fs.imagemount"].release("/")
    leaked = leaks.leftover(config._nutshell_leak_baseline)
    assert not leaked, leaks.report(leaked)
