"""Run per-layer work on a few threads; the first failure (or Ctrl-C) stops the rest.

Workers check a shared ``threading.Event`` (the blob reader and the upload body do, on every
read), so once something fails the other transfers end within one read instead of running to
completion behind an error the user is already waiting to see.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError, ThreadPoolExecutor, as_completed

from .reader import Cancelled


def run_all(fn: Callable, items: Iterable, max_workers: int, cancel: threading.Event,
            name: str = "registry") -> None:
    items = list(items)
    if not items:
        return
    errors: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(items))),
                            thread_name_prefix=name) as pool:
        futures = [pool.submit(fn, it) for it in items]
        try:
            for fut in as_completed(futures):
                try:
                    exc = fut.exception()
                except CancelledError:
                    continue
                if exc is not None:
                    cancel.set()
                    errors.append(exc)
                    for f in futures:
                        f.cancel()  # those not started yet never start
        except BaseException as exc:  # Ctrl-C while waiting: stop the workers, then re-raise
            cancel.set()
            for f in futures:
                f.cancel()
            errors.insert(0, exc)
    if errors:
        real = [e for e in errors if not isinstance(e, Cancelled)]
        raise (real or errors)[0]
