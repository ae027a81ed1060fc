"""A test image with this host's Python in it: for probes that need real system calls
(ctypes) inside a container, and for attacks that need the host's interpreter to start
there (tests/integration/test_security_*.py).

The rootfs is the offline busybox one plus the interpreter's dynamic loader and
libraries (in the directory where the host keeps libc, which the loader trusts even for
a setuid program), the ``encodings`` and ``ctypes`` packages and the extension modules
``ctypes`` needs, under ``/py`` (``ENV PYTHONHOME=/py``). Start it with ``python -S``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

PYTHONHOME = "/py"


def libraries(binary: str) -> tuple[str, list[str]]:
    """(the dynamic loader, the libraries) ``binary`` needs, from ldd."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    loader, libs = "", []
    for line in out.splitlines():
        m = re.search(r"=>\s+(/\S+)", line)
        if m:
            libs.append(m.group(1))
        elif line.strip().startswith("/"):
            loader = line.split()[0]
    return loader, libs


def make_python_rootfs(dest: str, busybox_rootfs: str, python: str | None = None) -> str:
    """Copy ``busybox_rootfs`` to ``dest`` and add ``python`` (this interpreter's binary by
    default) as /bin/python with what it needs to run ``python -S -c 'import ctypes'``."""
    import _ctypes
    import encodings

    python = python or os.path.realpath(sys.executable)
    shutil.copytree(busybox_rootfs, dest, symlinks=True)
    dynload = os.path.dirname(_ctypes.__file__)
    binaries = [python] + [os.path.join(dynload, n) for n in os.listdir(dynload)
                           if n.startswith(("_ctypes.", "_struct."))]
    loader, libs = "", []
    for b in binaries:
        ld, more = libraries(b)
        loader = loader or ld
        libs += [lib for lib in more if lib not in libs]
    libc = next(lib for lib in libs if os.path.basename(lib).startswith("libc.so"))
    libdir = dest + os.path.dirname(libc)
    os.makedirs(libdir, exist_ok=True)
    os.makedirs(dest + os.path.dirname(loader), exist_ok=True)
    shutil.copy2(loader, dest + loader)
    for lib in libs:
        shutil.copy2(lib, os.path.join(libdir, os.path.basename(lib)))
    stdlib = os.path.dirname(encodings.__path__[0])
    ver = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    home = os.path.join(dest, PYTHONHOME.lstrip("/"), "lib", ver)
    for pkg in ("encodings", "ctypes"):
        shutil.copytree(os.path.join(stdlib, pkg), os.path.join(home, pkg),
                        ignore=shutil.ignore_patterns("__pycache__", "test*"))
    for mod in ("types.py", "struct.py"):
        shutil.copy2(os.path.join(stdlib, mod), os.path.join(home, mod))
    os.makedirs(os.path.join(home, "lib-dynload"))
    for b in binaries[1:]:
        shutil.copy2(b, os.path.join(home, "lib-dynload", os.path.basename(b)))
    shutil.copy2(python, os.path.join(dest, "bin", "python"))
    return dest
