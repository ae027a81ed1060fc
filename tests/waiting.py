"""Waiting for a condition in tests: one contract, a plain and a Textual-pilot flavour.

``wait_for(pred)`` polls ``pred()`` until it returns something truthy and returns that
value; when ``timeout`` runs out it raises ``AssertionError`` saying what it waited for.
A caller cannot drop the result and go on as if the condition held. ``what`` names the
condition in that message: a string, or a callable asked only on failure (to show the
state then, e.g. the screen). Exceptions from ``pred`` count as "not yet" (a widget not
mounted yet, a file not written yet); the last one is chained to the timeout error.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
What = str | Callable[[], Any] | None


def _describe(pred: Callable[[], Any], what: What) -> str:
    if callable(what):
        try:
            return str(what())
        except Exception as e:  # noqa: BLE001 - the description must not hide the timeout
            return f"<describing the condition failed: {e!r}>"
    if what:
        return what
    try:
        return inspect.getsource(pred).strip()
    except (OSError, TypeError):
        return repr(pred)


def _timed_out(pred: Callable[[], Any], timeout: float, what: What,
               last: BaseException | None) -> AssertionError:
    err = AssertionError(f"timed out after {timeout:g}s waiting for: {_describe(pred, what)}")
    err.__cause__ = last
    return err


def _poll(pred: Callable[[], T]) -> tuple[T | None, BaseException | None]:
    try:
        return pred(), None
    except Exception as e:  # noqa: BLE001 - not there yet
        return None, e


def wait_for(pred: Callable[[], T], timeout: float = 10.0, what: What = None,
             interval: float = 0.05) -> T:
    """Poll ``pred`` until it is truthy; return its value, or raise on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value, last = _poll(pred)
        if value:
            return value
        if time.monotonic() > deadline:
            raise _timed_out(pred, timeout, what, last)
        time.sleep(interval)


async def pilot_wait_for(pilot, pred: Callable[[], T], timeout: float = 10.0,
                         what: What = None, interval: float = 0.02) -> T:
    """``wait_for`` inside a Textual pilot: lets the app process messages between polls
    (workers finish in threads and post their results)."""
    deadline = time.monotonic() + timeout
    while True:
        await pilot.pause()
        value, last = _poll(pred)
        if value:
            return value
        if time.monotonic() > deadline:
            raise _timed_out(pred, timeout, what, last)
        await asyncio.sleep(interval)
