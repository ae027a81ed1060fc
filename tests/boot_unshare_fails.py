"""A module for seal.spawn in tests (tests/integration/test_seal_prepare.py): boot.py's
main on a host that allows no new PID namespace (``user.max_pid_namespaces = 0`` gives
ENOSPC), simulated by refusing ``unshare`` in this process only."""

from __future__ import annotations

import errno


def main() -> None:
    from core.runtime import linux
    from core.runtime.start import boot

    def refuse(flags: int) -> None:
        raise OSError(errno.ENOSPC, "unshare: No space left on device")

    linux.unshare = refuse
    boot.main()
