"""Runs last (tests/conftest.py moves it to the end): the whole suite left nothing behind."""

import os

import pytest

from tests import leaks


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_suite_left_no_kernel_objects_behind(request):
    before = request.config._nutshell_leak_baseline
    import time

    # shims of --rm containers finish their teardown asynchronously: give them a moment
    for _ in range(50):
        leaked = leaks.snapshot() - before
        if not leaked:
            break
        time.sleep(0.1)
    leaks.remove(leaked)
    assert not leaked, "left behind by the test suite:\n" + "\n".join(sorted(leaked))
