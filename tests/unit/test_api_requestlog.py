"""The API request log the app's command log reads (workbench/api/requestlog.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import types

from workbench.api import requestlog
from workbench.screens.history import HistoryEntry


def test_append_read_since_and_garbage(tmp_path):
    path = str(tmp_path / requestlog.NAME)
    requestlog.append(path, {"time": 10.0, "method": "POST", "path": "/v1.41/containers/create",
                             "status": 201, "agent": "Docker-Client/20.10", "peer": "pid 1 uid 0"})
    with open(path, "ab") as f:
        f.write(b"not json\n[1, 2]\n{\"time\": \"x\"}\n{\"trunc")
    requestlog.append(path, {"time": 20.0, "method": "DELETE", "path": "/containers/x", "status": 404})
    assert [e["time"] for e in requestlog.read(path)] == [10.0]   # the torn line ate the next
    assert os.stat(path).st_mode & 0o777 == 0o600
    requestlog.append(path, {"time": 30.0, "method": "POST", "path": "/x", "status": 204})
    assert [e["time"] for e in requestlog.read(path, since=15)] == [30.0]
    e = requestlog.read(path)[0]
    assert requestlog.describe(e) == ("# API POST /v1.41/containers/create   "
                                      "(Docker-Client/20.10, pid 1 uid 0)")


def test_lines_stay_whole_with_concurrent_writers(tmp_path):
    path = str(tmp_path / requestlog.NAME)
    code = ("import sys; from workbench.api import requestlog as r\n"
            "for i in range(200): r.append(sys.argv[1], {'time': 1.0, 'method': 'POST', "
            "'path': '/' + 'x' * 300, 'status': 200, 'i': i})")
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    procs = [subprocess.Popen([sys.executable, "-c", code, path], env=env) for _ in range(4)]
    assert all(p.wait(60) == 0 for p in procs)
    assert len(requestlog.read(path, limit=10_000)) == 800


def test_a_missing_or_unwritable_log_is_no_error(tmp_path):
    assert requestlog.read(str(tmp_path / "nope")) == []
    requestlog.append(str(tmp_path / "no-dir" / requestlog.NAME), {"time": 1.0})


def test_app_history_merges_api_requests_in_time_order(tmp_path):
    from workbench.app import NutshellApp

    path = requestlog.path_for(str(tmp_path))
    requestlog.append(path, {"time": 5.0, "method": "POST", "path": "/old", "status": 200})
    requestlog.append(path, {"time": 150.0, "method": "POST", "path": "/containers/create", "status": 201})
    requestlog.append(path, {"time": 250.0, "method": "DELETE", "path": "/containers/x", "status": 409})
    app = types.SimpleNamespace(engine=types.SimpleNamespace(paths=types.SimpleNamespace(run=str(tmp_path))),
                                started_at=100.0,
                                history=[HistoryEntry(200.0, "nutshell stop web")])
    entries = NutshellApp.history_entries(app)           # type: ignore[arg-type]
    assert [(e.command.split("   ")[0], e.ok) for e in entries] == [
        ("# API POST /containers/create", True), ("nutshell stop web", True),
        ("# API DELETE /containers/x", False)]
    assert entries[2].error == "HTTP 409"
