"""Signal names as ``kill -s``, ``stop -s`` and ``--stop-signal`` take them
(core/runtime/lifecycle.py reads them from ``_signal``, not the enum of signal.py)."""

import signal

import pytest

from core.errors import UsageError
from core.runtime.lifecycle import _signal_number


@pytest.mark.parametrize("name", sorted(signal.Signals.__members__))
def test_every_signal_name_means_what_signal_py_says(name):
    number = int(signal.Signals[name])
    assert _signal_number(name) == number
    assert _signal_number(name.removeprefix("SIG").lower()) == number


def test_numbers_defaults_and_realtime_offsets():
    assert _signal_number(None) == _signal_number("") == signal.SIGKILL
    assert _signal_number(15) == _signal_number("15") == 15
    assert _signal_number("rtmin+3") == signal.SIGRTMIN + 3


@pytest.mark.parametrize("bad", ["SIG_DFL", "SIG_IGN", "_DFL", "SIG_BLOCK", "NSIG", "FOO",
                                 "SIGRTMIN+31", "0", "65", "SIGRTMIN+x"])
def test_what_is_not_a_signal_is_a_usage_error(bad):
    with pytest.raises(UsageError):
        _signal_number(bad)
