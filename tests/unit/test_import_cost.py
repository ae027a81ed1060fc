"""What a one-shot verb imports (issue 16: a `run` is mostly imports). Each check runs in
a fresh interpreter, since this one has imported everything already."""

from __future__ import annotations

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _fresh(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_run_path_does_not_import_heavy_modules():
    """What the CLI and the engine's container path import: not dataclasses (its classes
    are records, core/records.py) nor inspect, ipaddress, datetime, typing (annotations only: ``TYPE_CHECKING = False``
    blocks), socket.py (``_socket`` does), tempfile,
    shutil (only removals need it), hashlib (small digests use CPython's own SHA-256),
    threading (``_thread``), signal.py (``_signal``), core.events (progress: pulls, builds),
    shlex (only the app quotes command lines);
    argparse's help formatter does not ask the
    terminal its width (shutil) while flags are added."""
    got = _fresh(
        "import sys, json\n"
        "from workbench.cli import build_parser, defer_inspect_for_dataclasses\n"
        "defer_inspect_for_dataclasses()      # as _main does for every verb\n"
        "build_parser(('containers',), only_verb='run').parse_args(\n"
        "    ['run', '--rm', '--network', 'none', 'img', 'true'])\n"
        "parsed_without_shutil = 'shutil' not in sys.modules\n"
        "import core.engine, core.runtime.containers, core.store.store, core.network.sandbox\n"
        "import core.runtime.lifecycle, core.runtime.start.launch, core.runtime.seccomp.default\n"
        "import core.runtime.seccomp.libseccomp, core.runtime.attach, core.runtime.cgroups\n"
        "from core.network import names\n"
        "names.host_resolv_text()\n"
        "print(json.dumps(dict({m: m in sys.modules for m in\n"
        "      ('dataclasses', 'inspect', 'ipaddress', 'datetime', 'typing', 'socket', 'tempfile', 'shutil',\n"
        "       'hashlib', 'threading', 'signal', 'core.events', 'shlex')},\n"
        "      parsed=parsed_without_shutil)))\n")
    assert got == {"dataclasses": False, "inspect": False, "ipaddress": False, "datetime": False, "typing": False,
                   "socket": False, "tempfile": False, "shutil": False, "hashlib": False,
                   "threading": False, "signal": False, "core.events": False, "shlex": False,
                   "parsed": True}


def test_dataclasses_still_work_fully_once_imported_without_inspect():
    """The stand-in defers inspect, it changes nothing: a dataclass without a docstring
    (the one place dataclasses uses inspect) gets its signature as __doc__, and the
    inspect that loads is the real module. The finder is gone after its one use."""
    got = _fresh(
        "import sys, json\n"
        "from core.importcost import defer_inspect_for_dataclasses\n"
        "defer_inspect_for_dataclasses()\n"
        "import dataclasses\n"
        "before = 'inspect' in sys.modules\n"
        "finder_left = any('Dataclasses' in repr(f) for f in sys.meta_path)\n"
        "@dataclasses.dataclass\n"
        "class P:\n"
        "    x: int\n"
        "    y: str = 'a'\n"
        "import inspect\n"
        "print(json.dumps({'before': before, 'doc': P.__doc__, 'finder_left': finder_left,\n"
        "                  'source': 'def dataclass' in inspect.getsource(dataclasses),\n"
        "                  'real': hasattr(inspect, 'getsource') and type(inspect).__name__ == 'module',\n"
        "                  'same': sys.modules['inspect'] is inspect,\n"
        "                  'sig': str(inspect.signature(P))}))\n")
    assert got["before"] is False and got["finder_left"] is False and got["source"]
    assert got["doc"] == "P(x: int, y: str = 'a')"
    assert got["real"] and got["same"]
    assert got["sig"] == "(x: int, y: str = 'a') -> None"


def test_atomic_write_temp_files(tmp_path):
    """fsutil's own mkstemp: 0600, close-on-exec, a fresh name each time, nothing left."""
    from core import fsutil

    fd, tmp = fsutil._mkstemp(str(tmp_path))
    try:
        st = os.fstat(fd)
        assert st.st_mode & 0o777 == 0o600 and not os.get_inheritable(fd)
        assert os.path.basename(tmp).startswith(".tmp-")
        fd2, tmp2 = fsutil._mkstemp(str(tmp_path))
        os.close(fd2)
        assert tmp2 != tmp
    finally:
        os.close(fd)
    fsutil.atomic_write(str(tmp_path / "f"), b"data", mode=0o640)
    assert (tmp_path / "f").read_bytes() == b"data"
    assert os.stat(tmp_path / "f").st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".tmp-")) == ["f"]


def test_small_sha256_is_sha256():
    import hashlib

    from core.paths import small_sha256
    from core.store.store import sha256_digest

    for n in (0, 1, 55, 56, 64, 1000, 1 << 16, (1 << 16) + 1, 300_000):
        data = bytes(range(256)) * (n // 256) + bytes(n % 256)
        assert small_sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
        assert sha256_digest(data) == "sha256:" + hashlib.sha256(data).hexdigest()


# --- the cyclic collector while a command starts (workbench.cli.configure_gc): a verb
# raises the threshold, the workbench starts with the collector off and turns it on after
# its first frame (tests/tui/test_app_frame.py)

def test_a_verb_makes_no_collection_on_the_run_path_but_still_collects():
    got = _fresh(
        "import gc, json, sys\n"
        "from workbench.cli import configure_gc, build_parser\n"
        "configure_gc('run')\n"
        "n = []\n"
        "gc.callbacks.append(lambda phase, info: phase == 'stop' and n.append(1))\n"
        "build_parser(('containers',), only_verb='run').parse_args(['run', 'img', 'true'])\n"
        "import core.engine, core.runtime.containers, core.runtime.lifecycle\n"
        "import core.runtime.start.launch, core.runtime.seccomp.default\n"
        "during = len(n)\n"
        "junk = [[] for _ in range(30000)]\n"
        "for j in junk: j.append(j)\n"
        "print(json.dumps({'enabled': gc.isenabled(), 'threshold': gc.get_threshold()[0],\n"
        "                  'during': during, 'later': len(n) > during}))\n")
    assert got == {"enabled": True, "threshold": 20000, "during": 0, "later": True}


def test_the_workbench_starts_without_the_collector():
    got = _fresh(
        "import gc, json\n"
        "from workbench.cli import configure_gc\n"
        "configure_gc(None)\n"
        "print(json.dumps({'enabled': gc.isenabled()}))\n")
    assert got == {"enabled": False}


def test_the_workbench_start_reads_no_toml_without_a_config_file(tmp_path):
    """The keys' table is Python and workbench.toml is parsed only when it exists: tomllib
    (~4 ms to import, ~2 ms to parse the old keys.toml) is not on the first paint's path."""
    got = _fresh(
        "import sys, json\n"
        "import workbench.app, workbench.panes.images\n"
        "from workbench import keys\n"
        "from workbench.config import load_config\n"
        "bindings = {p: len(keys.pane_bindings(p)) for p in keys.panes()}\n"
        f"cfg = load_config({str(tmp_path)!r})\n"
        "print(json.dumps({'tomllib': 'tomllib' in sys.modules, 'errors': cfg.errors,\n"
        "                  'images': bindings['images']}))\n")
    assert got == {"tomllib": False, "errors": [], "images": 10}
    (tmp_path / "workbench.toml").write_text('theme = "light"\n')
    got = _fresh(
        "import sys, json\n"
        "from workbench.config import load_config\n"
        f"cfg = load_config({str(tmp_path)!r})\n"
        "print(json.dumps({'tomllib': 'tomllib' in sys.modules, 'theme': cfg.theme}))\n")
    assert got == {"tomllib": True, "theme": "nutshell-light"}


def test_reading_container_state_loads_no_ctypes(tmp_path):
    """ps, inspect and logs reconcile state with /proc (procstat.py) and need nothing of
    core.runtime.linux: ctypes and libc's prototypes were ~2 ms of each of them."""
    code = ("import sys, json\n"
            "from core.engine import Engine\n"
            f"e = Engine({str(tmp_path)!r})\n"
            "e.ps(all=True)\n"
            "import core.runtime.containers, core.runtime.state\n"
            "print(json.dumps({'ctypes': 'ctypes' in sys.modules,\n"
            "                  'linux': 'core.runtime.linux' in sys.modules}))\n")
    assert _fresh(code) == {"ctypes": False, "linux": False}


def test_every_dataclass_has_a_docstring():
    """dataclasses writes a signature into the __doc__ of a class without one, with
    inspect (ast, dis, tokenize: ~5-11 ms), which defer_inspect_for_dataclasses keeps off a
    verb's start only while no such class is made. `logs` paid it for LogEntry."""
    import ast

    missing = []
    for top in ("core", "workbench"):
        for base, _dirs, files in os.walk(os.path.join(REPO, top)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(base, name)
                with open(path) as f:
                    tree = ast.parse(f.read())
                for node in ast.walk(tree):
                    if isinstance(node, ast.ClassDef) and ast.get_docstring(node) is None and any(
                            ast.unparse(d).split("(")[0] in ("dataclass", "dataclasses.dataclass")
                            for d in node.decorator_list):
                        missing.append(f"{os.path.relpath(path, REPO)}: {node.name}")
    assert not missing, missing


def test_logs_path_makes_its_dataclass_without_inspect():
    code = ("import sys, json\n"
            "from core.importcost import defer_inspect_for_dataclasses\n"
            "defer_inspect_for_dataclasses()\n"
            "import core.runtime.logs, core.registry.auth, core.store.layertree\n"
            "print(json.dumps({'dataclasses': 'dataclasses' in sys.modules,\n"
            "                  'inspect': 'inspect' in sys.modules}))\n")
    assert _fresh(code) == {"dataclasses": True, "inspect": False}
