"""Offline test images: a busybox rootfs made from the host's busybox-static."""

from __future__ import annotations

import os
import shutil
import subprocess

BUSYBOX = shutil.which("busybox") or "/bin/busybox"

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000:app user:/home/app:/bin/sh
"""
GROUP = """root:x:0:
daemon:x:1:
tty:x:5:
users:x:100:app
app:x:1000:
nogroup:x:65534:
"""


def make_busybox_rootfs(dest: str) -> str:
    """A minimal but real rootfs: /bin/busybox with every applet as a symlink, /etc files."""
    if not os.path.exists(BUSYBOX):
        raise RuntimeError("busybox-static is not installed (apt-get install busybox-static)")
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "home/app", "var/log", "dev",
              "proc", "sys"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.makedirs(os.path.join(dest, "tmp"), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    os.chmod(os.path.join(dest, "root"), 0o700)
    os.chown(os.path.join(dest, "home/app"), 1000, 1000)
    shutil.copy2(BUSYBOX, os.path.join(dest, "bin/busybox"))
    os.chmod(os.path.join(dest, "bin/busybox"), 0o755)
    applets = subprocess.run([BUSYBOX, "--list-full"], check=True, capture_output=True,
                             text=True).stdout.split()
    for path in applets:
        if path == "bin/busybox":
            continue
        full = os.path.join(dest, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if not os.path.lexists(full):
            rel = os.path.relpath(os.path.join(dest, "bin/busybox"), os.path.dirname(full))
            os.symlink(rel, full)
    with open(os.path.join(dest, "etc/passwd"), "w") as f:
        f.write(PASSWD)
    with open(os.path.join(dest, "etc/group"), "w") as f:
        f.write(GROUP)
    with open(os.path.join(dest, "etc/hostname"), "w") as f:
        f.write("busybox\n")
    return dest
