"""Containers: every container with its state, and what you can do to it.

The list (``/`` filters it) shows name, id, image, command, state, status (uptime or exit)
and published ports; containers of a Compose project come first, grouped by project and
service in a COMPOSE column (shown only while there is one). Below it, for the highlighted
container, one of three views:

- Logs (``l``): the container's log with search highlighting (``/`` in the log, ``n``/``N``),
  ``--tail`` and ``--since`` fields, and following (``f`` starts/stops). Following stops
  while the pane is hidden: nobody reads, nothing polls.
- Inspect (``i``): ``nutshell inspect`` as a foldable JSON tree.
- Diff (``D``): ``nutshell diff``: what the container changed, from its upper dir.

Actions, each the same Engine call as its CLI verb, each posting the equivalent command:
start ``u``, stop ``x``, restart ``r``, kill ``K`` (confirmed), remove ``d`` (confirmed;
``rm -f`` when running), commit ``c`` (a form), exec ``e`` (a shell tab: bash, ash or sh),
attach ``a`` (closing the tab detaches). Read-only mode hides all of them but the views.
"""

from __future__ import annotations

import threading
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import ContentSwitcher, Input, Static

from workbench.format import command as nutshell_command
from workbench.format import ports_column
from workbench.keys import pane_bindings
from workbench.messages import EngineChanged, OpenTerminal
from workbench.panes.base import Pane
from workbench.widgets.jsontree import JsonTree
from workbench.widgets.logview import LogView, split_entries

STATE_STYLE = {"running": "bold green", "paused": "cyan", "created": "yellow",
               "exited": "red", "dead": "bold red", "restarting": "yellow"}
DIFF_KIND = {0: ("C", "yellow", "changed"), 1: ("A", "green", "added"), 2: ("D", "red", "deleted")}
LOG_BATCH = 500
DEFAULT_TAIL = "200"
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_NUMBER = "com.docker.compose.container-number"


def compose_groups(items: list[dict]) -> list[tuple[dict, str]]:
    """Containers in list order, except that those of a Compose project (its labels) come
    first, together, by service, each with its place in the tree (``proj ┬ api``,
    ``     ├ db``, ``     └ web``); the others follow with "" (as lazydocker groups them)."""
    projects: dict[str, list[dict]] = {}
    plain = []
    for c in items:
        labels = c.get("Labels") or {}
        if labels.get(COMPOSE_PROJECT):
            projects.setdefault(labels[COMPOSE_PROJECT], []).append(c)
        else:
            plain.append(c)
    out: list[tuple[dict, str]] = []
    for project in sorted(projects):
        members = sorted(projects[project], key=lambda c: (
            c["Labels"].get(COMPOSE_SERVICE, ""), str(c["Labels"].get(COMPOSE_NUMBER, "")).zfill(6)))
        for i, c in enumerate(members):
            labels = c["Labels"]
            service = labels.get(COMPOSE_SERVICE, "?")
            number = str(labels.get(COMPOSE_NUMBER, ""))
            if number not in ("", "1"):
                service += f" #{number}"
            last = i == len(members) - 1
            if i == 0:
                head = f"{project} {'─' if last else '┬'} "
            else:
                head = " " * len(project) + (" └ " if last else " ├ ")
            out.append((c, head + service))
    return out + [(c, "") for c in plain]


class ContainersPane(Pane):
    PANE_TITLE = "Containers"
    PANE_KEY = "3"
    MUTATING = frozenset({"start", "stop", "restart", "kill", "remove", "commit", "exec",
                          "attach", "pause"})

    DEFAULT_CSS = """
    ContainersPane #containers-table { height: 2fr; min-height: 6; }
    ContainersPane #containers-detail-title { height: 1; padding: 0 1; background: $boost; }
    ContainersPane #containers-detail { height: 3fr; min-height: 6; }
    ContainersPane #log-bar { height: 1; }
    ContainersPane #log-bar Input { height: 1; border: none; padding: 0 1; }
    ContainersPane #log-search { width: 1fr; }
    ContainersPane #log-tail { width: 8; }
    ContainersPane #log-since { width: 16; }
    ContainersPane .log-label { width: auto; padding: 0 0 0 1; color: $text-muted; }
    ContainersPane #log-state { width: auto; padding: 0 1; }
    ContainersPane #containers-diff-note { height: auto; padding: 0 1; color: $text-muted; }
    ContainersPane #containers-inspect { height: 1fr; }
    """

    BINDINGS = pane_bindings("containers")

    def __init__(self, engine, read_only: bool = False, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(engine, read_only, id=id, classes=classes)
        self.items: dict[str, dict] = {}
        self.view = "logs"
        self.follow = True
        self.loads = 0
        self.log_gen = 0          # the current log reader; older readers stop
        self.log_running = False
        self._log_lock = threading.Lock()
        self._detail_timer = None
        self._shown = False
        self.detail_loaded: tuple[str, str | None] | None = None

    # ------------------------------------------------------------------ layout
    @staticmethod
    def _columns(with_compose: bool) -> list:
        from workbench.widgets.table import Col

        cols = [Col("NAME", "name"), Col("ID", "id"), Col("IMAGE", "image"),
                Col("COMMAND", "command"), Col("STATE", "state"), Col("STATUS", "status"),
                Col("PORTS", "ports")]
        return [Col("COMPOSE", "compose"), *cols] if with_compose else cols

    def _compose_column(self, table, with_compose: bool) -> None:
        """The COMPOSE column (project and service) is there only while a container of a
        Compose project is."""
        if (table.columns[0].key == "compose") != with_compose:
            table.set_columns(self._columns(with_compose))

    def compose(self) -> ComposeResult:
        from workbench.widgets.table import Col, FilterTable

        yield FilterTable(self._columns(False), id="containers-table", empty_text="no containers")
        yield Static("", id="containers-detail-title")
        with ContentSwitcher(initial="containers-logs", id="containers-detail"):
            with Vertical(id="containers-logs"):
                with Horizontal(id="log-bar"):
                    yield Input(placeholder="/ search the log (n / N: next, previous)",
                                id="log-search", compact=True)
                    yield Static("tail", classes="log-label")
                    yield Input(DEFAULT_TAIL, placeholder="all", id="log-tail", compact=True,
                                tooltip="--tail: lines from the end (empty: all)")
                    yield Static("since", classes="log-label")
                    yield Input(placeholder="10m, RFC 3339", id="log-since", compact=True,
                                tooltip="--since: a duration back from now, or a time")
                    yield Static("", id="log-state")
                yield LogView(id="log-view")
            yield JsonTree(id="containers-inspect")
            with Vertical(id="containers-diff"):
                yield Static("", id="containers-diff-note")
                yield FilterTable([Col("", "kind"), Col("PATH", "path"), Col("CHANGE", "what")],
                                  id="diff-table", empty_text="no changes")

    def on_mount(self) -> None:
        self._title()
        self.reload()

    def focus_default(self) -> None:
        from workbench.widgets.table import FilterTable

        self.query_one("#containers-table", FilterTable).focus()

    def on_show(self) -> None:
        self._shown = True
        if self.view == "logs" and self.follow and self.container_id and not self.log_running:
            self._load_detail()

    def on_hide(self) -> None:
        self._shown = False
        self.stop_logs()  # nobody is reading: stop polling the log file

    def on_unmount(self) -> None:
        with self._log_lock:
            self.log_gen += 1  # the reader thread ends at its next look at the generation

    # ------------------------------------------------------------------ the list
    def on_engine_changed(self, message: EngineChanged) -> None:
        if not message.kinds or "containers" in message.kinds:
            self.reload()
            if self.container_id and (not message.ids or self.container_id in message.ids):
                # a started container writes a new log: pick it up again
                if self.view == "logs" and self.follow and not self.log_running and self._shown:
                    self._schedule_detail()
                elif self.view == "diff":
                    self._schedule_detail()

    def reload(self) -> None:
        engine = self.engine

        def work() -> list[dict]:
            items = engine.ps(all=True)
            for c in items:
                c["_ports"] = ports_column(engine, c)
            return items

        self.fetch(work, self._apply, group="containers")

    def _apply(self, items: list[dict]) -> None:
        from workbench.widgets.table import FilterTable

        self.loads += 1
        self.items = {c["Id"]: c for c in items}
        table = self.query_one("#containers-table", FilterTable)
        grouped = compose_groups(items)
        with_compose = any(group for _, group in grouped)
        self._compose_column(table, with_compose)
        rows = []
        for c, group in grouped:
            state = c.get("State", "")
            command = c.get("Command", "")
            cells = [
                Text(c.get("Names", ""), style="bold"), c["Id"][:12], c.get("Image") or "<none>",
                command if len(command) <= 30 else command[:29] + "…",
                Text(state, style=STATE_STYLE.get(state, "")), c.get("Status", ""),
                c.get("_ports", ""),
            ]
            if with_compose:
                cells.insert(0, Text(group, style="cyan"))
            rows.append((c["Id"], cells))
        table.set_rows(rows)
        if self.container_id is not None and self.container_id not in self.items:
            self.choose_container(table.selected_key)
        elif self.container_id is None and table.selected_key is not None:
            self.choose_container(table.selected_key)
        self._title()

    def on_filter_table_highlighted(self, message) -> None:
        if message.table.id != "containers-table":
            message.stop()
            return
        message.stop()
        if message.key != message.table.selected_key:
            return  # stale: the cursor moved again since (see StatsPane)
        if message.key is not None:
            self.choose_container(message.key)

    def container_changed(self, container_id: str | None) -> None:
        from workbench.widgets.table import FilterTable

        table = self.query_one("#containers-table", FilterTable)
        if container_id is not None and table.selected_key != container_id:
            table.select(container_id)
        self._title()
        self._schedule_detail()

    # ------------------------------------------------------------------ helpers
    @property
    def current(self) -> dict | None:
        return self.items.get(self.container_id or "")

    def _cname(self) -> str:
        c = self.current
        return (c.get("Names") or c["Id"][:12]) if c else ""

    def _title(self) -> None:
        title = self.query_one("#containers-detail-title", Static)
        c = self.current
        t = Text()
        label = {"logs": "Logs", "inspect": "Inspect", "diff": "Diff"}[self.view]
        t.append(label, style="bold reverse")
        if c is None:
            t.append("  select a container above")
        else:
            t.append(f"  {c.get('Names', '')}  ", style="bold")
            t.append(c.get("State", ""), style=STATE_STYLE.get(c.get("State", ""), ""))
            t.append("   l logs · i inspect · D diff", style="dim")
            if self.view == "logs":
                t.append(" · f follow · / search · t time", style="dim")
        title.update(t)

    def _need(self) -> dict | None:
        c = self.current
        if c is None:
            self.notify("select a container first", severity="warning", timeout=3)
        return c

    # ------------------------------------------------------------------ detail views
    def action_view(self, view: str) -> None:
        self.view = view
        self.query_one("#containers-detail", ContentSwitcher).current = f"containers-{view}"
        self._title()
        if view != "logs":
            self.stop_logs()
        self._load_detail(explicit=True)

    def _schedule_detail(self) -> None:
        """Load the detail view a moment after the cursor stops (not for every row passed)."""
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(0.15, self._load_detail)

    def _load_detail(self, explicit: bool = False) -> None:
        self._detail_timer = None
        c = self.current
        if c is None:
            self.stop_logs()
            return
        if self.view == "logs":
            self.start_logs(explicit=explicit)
        elif self.view == "inspect":
            self._load_inspect(c, explicit)
        else:
            self._load_diff(c, explicit)

    def _load_inspect(self, c: dict, explicit: bool) -> None:
        name = c.get("Names") or c["Id"][:12]
        cid = c["Id"]

        def apply(doc: dict) -> None:
            self.query_one("#containers-inspect", JsonTree).load(doc, label=f"inspect {name}")
            self.detail_loaded = ("inspect", cid)

        if explicit:
            self.perform(nutshell_command("inspect", name),
                            lambda: self.engine.container_inspect(cid), done=apply)
        else:
            self.fetch(lambda: self.engine.container_inspect(cid), apply, group="detail")

    def _load_diff(self, c: dict, explicit: bool) -> None:
        from workbench.widgets.table import FilterTable

        name = c.get("Names") or c["Id"][:12]
        cid = c["Id"]
        note = self.query_one("#containers-diff-note", Static)
        table = self.query_one("#diff-table", FilterTable)
        differ = self.engine.container_diff

        def apply(changes: list[dict]) -> None:
            rows = []
            for ch in changes:
                letter, style, what = DIFF_KIND.get(ch.get("Kind"), ("?", "", "?"))
                rows.append((ch["Path"], [Text(letter, style=f"bold {style}"), ch["Path"],
                                          Text(what, style=style)]))
            table.set_rows(rows)
            counts = {w: sum(1 for ch in changes if DIFF_KIND.get(ch.get("Kind"), ("", "", ""))[2] == w)
                      for w in ("added", "changed", "deleted")}
            note.update(Text.assemble(
                (f"$ nutshell diff {name}", "bold"),
                f"   {counts['added']} added, {counts['changed']} changed, {counts['deleted']} "
                "deleted - the container's upper dir, what `commit` would keep"))
            self.detail_loaded = ("diff", cid)

        if explicit:
            self.perform(nutshell_command("diff", name), lambda: differ(cid), done=apply)
        else:
            self.fetch(lambda: differ(cid), apply, group="detail")

    # ------------------------------------------------------------------ logs
    def _log_args(self) -> tuple[int | None, str | None]:
        tail_text = self.query_one("#log-tail", Input).value.strip()
        since = self.query_one("#log-since", Input).value.strip() or None
        tail = None
        if tail_text and tail_text != "all":
            try:
                tail = max(int(tail_text), 0)
            except ValueError:
                from core.errors import UsageError

                self.notify_error(UsageError(f"invalid value for --tail: {tail_text!r}"))
                tail = int(DEFAULT_TAIL)
        return tail, since

    def logs_command(self, tail: int | None = None, since: str | None = None,
                     from_fields: bool = True) -> str:
        """The ``nutshell logs`` line for what the log view reads (the fields' --tail and
        --since unless given)."""
        if from_fields:
            tail, since = self._log_args()
        args: list[Any] = ["logs"]
        if self.follow:
            args.append("-f")
        if tail is not None:
            args += ["--tail", tail]
        if since:
            args += ["--since", since]
        return nutshell_command(*args, self._cname())

    def start_logs(self, explicit: bool = False, keep: bool = False) -> None:
        """(Re)read the log of the current container in a thread: the tail, then - when
        following - new lines as they come. ``keep``: append to what is shown (resume)."""
        c = self.current
        view = self.query_one("#log-view", LogView)
        if c is None:
            return
        cid = c["Id"]
        tail, since = self._log_args()
        if keep:
            tail, since = 0, None  # resume: only what comes from now on
        follow = self.follow
        with self._log_lock:
            self.log_gen += 1
            gen = self.log_gen
        if not keep:
            view.clear()
            view.follow = True
        command = self.logs_command(tail, since, from_fields=False)
        engine = self.engine
        pending: list = []
        app = self.app

        def flush() -> None:
            if pending and gen == self.log_gen:
                batch = split_entries(pending)
                pending.clear()
                app.call_from_thread(self._append_logs, gen, batch)

        def stopped() -> bool:
            flush()  # the reader is idle (caught up): show what it has
            return gen != self.log_gen

        def work() -> None:
            error = None
            try:
                for entry in engine.logs(cid, follow=follow, tail=tail, since=since, stop=stopped):
                    if gen != self.log_gen:
                        return
                    pending.append(entry)
                    if len(pending) >= LOG_BATCH:
                        flush()
                flush()
            except Exception as exc:  # noqa: BLE001
                error = exc
            app.call_from_thread(self._logs_ended, gen, error, command, explicit)

        self.log_running = True
        self._log_state()
        self.run_worker(work, thread=True, group=f"logs-{self.id}", exit_on_error=False)
        if explicit:
            from workbench.messages import CommandRun

            self.post_message(CommandRun(command))

    def _append_logs(self, gen: int, batch: list) -> None:
        if gen != self.log_gen or not self.is_mounted:
            return
        view = self.query_one("#log-view", LogView)
        view.append(batch)
        if view.search:
            self._log_state()

    def _logs_ended(self, gen: int, error, command: str, explicit: bool) -> None:
        if gen != self.log_gen:
            return
        self.log_running = False
        self.detail_loaded = ("logs", self.container_id)
        if error is not None:
            self.notify_error(error)
        self._log_state()

    def stop_logs(self) -> None:
        with self._log_lock:
            self.log_gen += 1
        self.log_running = False
        if self.is_mounted:
            self._log_state()

    def _log_state(self) -> None:
        view = self.query_one("#log-view", LogView)
        t = Text()
        if self.follow and self.log_running:
            t.append("● following", style="bold green")
        elif self.follow:
            t.append("○ follow (not running)", style="yellow")
        else:
            t.append("■ stopped", style="dim")
        if view.search:
            hits = len(view.matches())
            t.append(f"  {hits} match{'es' if hits != 1 else ''}", style="bold" if hits else "red")
        self.query_one("#log-state", Static).update(t)

    def action_toggle_follow(self) -> None:
        if self.view != "logs":
            self.action_view("logs")
        self.follow = not self.follow
        if self.follow:
            self.start_logs(explicit=True, keep=True)
        else:
            self.stop_logs()
            self.query_one("#log-view", LogView).follow = False
        self.notify("following the log" if self.follow else "stopped following", timeout=2)

    def action_search(self) -> None:
        if self.view != "logs":
            self.action_view("logs")
        self.query_one("#log-search", Input).focus()

    def action_next_match(self, forward: bool = True) -> None:
        view = self.query_one("#log-view", LogView)
        if view.next_match(forward) is None and view.search:
            self.notify(f"no match for {view.search!r}", timeout=2)

    def action_toggle_time(self) -> None:
        view = self.query_one("#log-view", LogView)
        view.show_time = not view.show_time
        view._width = max((len(t) for _, _, t in view.lines), default=0) + (31 if view.show_time else 0)
        view._resize()
        view.refresh()

    @on(Input.Changed, "#log-search")
    def _search_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_one("#log-view", LogView).set_search(event.value)
        self._log_state()

    @on(Input.Submitted, "#log-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_next_match(True)

    @on(Input.Submitted, "#log-tail, #log-since")
    def _range_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.start_logs(explicit=True)

    def on_key(self, event) -> None:
        if event.key == "escape" and isinstance(self.app.focused, Input) and \
                self.app.focused.id in ("log-search", "log-tail", "log-since"):
            event.stop()
            self.query_one("#log-view", LogView).focus()

    # ------------------------------------------------------------------ lifecycle actions
    def _lifecycle(self, verb: str, fn, *args, flags: tuple = (), note: str | None = None) -> None:
        c = self._need()
        if c is None:
            return
        name = c.get("Names") or c["Id"][:12]
        cid = c["Id"]
        self.perform(nutshell_command(verb, *flags, name), lambda: fn(cid, *args),
                        done=lambda _r: self.reload(), note=note)

    def action_start(self) -> None:
        self._lifecycle("start", lambda cid: self.engine.start(cid))

    def action_stop(self) -> None:
        self._lifecycle("stop", lambda cid: self.engine.stop(cid))

    def action_restart(self) -> None:
        self._lifecycle("restart", lambda cid: self.engine.restart(cid))

    def action_pause(self) -> None:
        """Pause a running container, unpause a paused one (the cgroup freezer)."""
        c = self._need()
        if c is None:
            return
        if c.get("State") == "paused":
            self._lifecycle("unpause", lambda cid: self.engine.unpause(cid))
        else:
            self._lifecycle("pause", lambda cid: self.engine.pause(cid))

    def action_kill(self) -> None:
        c = self._need()
        if c is None:
            return
        name = c.get("Names") or c["Id"][:12]
        self.confirm(f"Kill container {name} (SIGKILL)?",
                     lambda: self._lifecycle("kill", lambda cid: self.engine.kill(cid, "KILL")),
                     detail="$ " + nutshell_command("kill", name), yes_label="Kill")

    def action_remove(self) -> None:
        c = self._need()
        if c is None:
            return
        name = c.get("Names") or c["Id"][:12]
        running = c.get("State") in ("running", "paused")
        flags = ("-f",) if running else ()
        question = (f"Remove RUNNING container {name}? It is killed first."
                    if running else f"Remove container {name}?")
        self.confirm(question,
                     lambda: self._lifecycle("rm", lambda cid: self.engine.rm(cid, force=running),
                                             flags=flags),
                     detail="$ " + nutshell_command("rm", *flags, name), yes_label="Remove")

    def action_commit(self) -> None:
        c = self._need()
        if c is None:
            return
        from workbench.screens.form import Field, FormScreen

        name = c.get("Names") or c["Id"][:12]
        cid = c["Id"]

        def argv(v: dict) -> list:
            out: list[Any] = ["commit"]
            if v.get("message"):
                out += ["-m", v["message"]]
            if v.get("author"):
                out += ["-a", v["author"]]
            if not v.get("pause", True):
                out += ["--pause=false"]
            out.append(name)
            if v.get("ref"):
                out.append(v["ref"])
            return out

        def done(values: dict | None) -> None:
            if not values:
                return
            ref = values.get("ref") or None

            def note(img) -> None:
                image_id = getattr(img, "id", None) or (img.get("Id") if isinstance(img, dict) else "")
                self.notify(f"committed {str(image_id)[7:19]}" + (f" as {ref}" if ref else ""),
                            timeout=4)

            self.perform(nutshell_command(*argv(values)),
                            lambda: self.engine.commit(cid, ref, message=values.get("message") or None,
                                                       author=values.get("author") or None,
                                                       pause=bool(values.get("pause", True))),
                            done=note)

        fields = [Field("ref", "Repository[:tag]", placeholder="myimage:latest (optional)"),
                  Field("message", "Message", placeholder="what changed"),
                  Field("author", "Author", placeholder="Jane <jane@example.com>"),
                  Field("pause", "Pause while committing", kind="bool", default=True)]
        self.app.push_screen(FormScreen(f"Commit container {name}", fields, submit="Commit",
                                        preview=lambda v: nutshell_command(*argv(v))), done)

    def action_exec(self) -> None:
        c = self._need()
        if c is not None:
            self.post_message(OpenTerminal("exec", c["Id"]))

    def action_attach(self) -> None:
        c = self._need()
        if c is not None:
            self.post_message(OpenTerminal("attach", c["Id"]))
