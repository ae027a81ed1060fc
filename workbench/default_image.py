"""The offline default image: ``localhost/busybox:latest`` made from the host's
busybox-static, so a new user has something to run with no registry at all.

``python -m workbench.default_image [--root DIR]`` creates it if it is missing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

DEFAULT_IMAGE = "localhost/busybox:latest"

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


def find_busybox() -> str:
    for cand in ("/bin/busybox", "/usr/bin/busybox", shutil.which("busybox") or ""):
        if cand and os.path.exists(cand):
            return cand
    raise FileNotFoundError("busybox is not installed (apt-get install busybox-static)")


def make_busybox_rootfs(dest: str, busybox: str | None = None) -> str:
    """A minimal but real rootfs: /bin/busybox with every applet as a symlink, /etc files."""
    busybox = busybox or find_busybox()
    out = subprocess.run(["file", "-b", busybox], capture_output=True, text=True) \
        if shutil.which("file") else None
    if out is not None and "dynamically linked" in out.stdout:
        raise RuntimeError(f"{busybox} is dynamically linked; install busybox-static")
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "home/app", "var/log",
              "dev", "proc", "sys"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.makedirs(os.path.join(dest, "tmp"), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    os.chmod(os.path.join(dest, "root"), 0o700)
    os.chown(os.path.join(dest, "home/app"), 1000, 1000)
    shutil.copy2(busybox, os.path.join(dest, "bin/busybox"))
    os.chmod(os.path.join(dest, "bin/busybox"), 0o755)
    applets = subprocess.run([busybox, "--list-full"], check=True, capture_output=True,
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


def ensure_default_image(engine, name: str = DEFAULT_IMAGE) -> str:
    """Create the default image unless it exists; returns its ID."""
    from core.errors import NotFound

    try:
        return engine.image(name).id
    except NotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="nutshell-busybox-") as tmp:
        rootfs = make_busybox_rootfs(os.path.join(tmp, "rootfs"))
        img = engine.import_image(
            rootfs, name,
            changes=['CMD ["sh"]', "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            message="busybox-static from the host")
        return img.id


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root")
    ap.add_argument("--name", default=DEFAULT_IMAGE)
    args = ap.parse_args(argv)
    from core.engine import Engine

    image_id = ensure_default_image(Engine(root=args.root), args.name)
    print(f"{args.name} {image_id[7:19]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
