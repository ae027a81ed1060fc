"""Stats: live CPU, memory, pids, network and block I/O of each running container.

Every number comes from ``Engine.container_stats`` (the container's cgroup, v1 or v2, and
/proc/<pid>/net/dev), the same call ``nutshell stats`` makes:

- CPU % is the share of ONE core: 100 % = one core busy for the whole interval, so a
  container may show up to N x 100 % on N cores (the header says so; ctop#40).
- memory is usage minus the inactive file cache, like ``docker stats``; the limit is the
  cgroup's (``no limit`` when there is none).
- the sparklines keep the last minute of samples. The detail charts are scaled to the limit
  (CPU quota, memory limit) when there is one, else to one core / the peak seen plus 25 %.

This is the one pane that samples on a timer: once a second, only while it is visible,
in a thread worker; hidden, it stops. The list of running containers is reloaded on
``EngineChanged``, not polled.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from workbench.format import bar, chart, cpu_percent, dbytes, ibytes, pct, sparkline
from workbench.keys import pane_bindings
from workbench.messages import EngineChanged
from workbench.panes.base import Pane
from workbench.widgets.linetable import Column, LineTable

HISTORY = 60  # samples kept per container (one a second: a minute)


@dataclass
class Series:
    """What the pane remembers of one container between samples."""

    name: str
    cpu: deque = field(default_factory=lambda: deque(maxlen=HISTORY))      # percent of a core
    mem: deque = field(default_factory=lambda: deque(maxlen=HISTORY))      # bytes used
    last_cpu_ns: int | None = None
    last_time: float | None = None
    sample: dict = field(default_factory=dict)

    def add(self, s: dict) -> None:
        cpu_ns, t = s.get("cpu_usage_ns"), s.get("timestamp")
        value = cpu_percent(cpu_ns, t, self.last_cpu_ns, self.last_time)
        if cpu_ns is not None:
            self.last_cpu_ns, self.last_time = cpu_ns, t
        if self.last_time is not None and value is None and self.cpu:
            value = self.cpu[-1]
        self.cpu.append(value)
        self.mem.append(s.get("memory_used"))
        self.sample = s

    @property
    def cpu_now(self) -> float | None:
        return self.cpu[-1] if self.cpu else None


class StatsPane(Pane):
    PANE_TITLE = "Stats"
    PANE_KEY = "5"
    #: seconds between samples while visible (tests set it very large and sample by hand)
    SAMPLE_INTERVAL = 1.0

    DEFAULT_CSS = """
    StatsPane #stats-header { height: auto; color: $text-muted; padding: 0 1; }
    StatsPane #stats-table { height: 4; }
    StatsPane #stats-detail { height: 1fr; border-top: solid $primary 40%; padding: 0 1; }
    StatsPane .chart { height: auto; }
    StatsPane #stats-cpu-chart { color: $success; }
    StatsPane #stats-mem-chart { color: $warning; }
    """

    BINDINGS = pane_bindings("stats")

    def __init__(self, engine, read_only: bool = False, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(engine, read_only, id=id, classes=classes)
        self.series: dict[str, Series] = {}
        self.running: list[dict] = []
        self.paused = False
        self.samples_taken = 0
        self._sampling = False
        self._sampler = None
        self._visible = False
        self._timer = None
        self._spark_width = 10
        self.ncpu = os.cpu_count() or 1

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Static(self._header_text(), id="stats-header")
        yield LineTable(self._columns(12), id="stats-table", empty_text="no running containers")
        with Vertical(id="stats-detail"):
            yield Static("", id="stats-title")
            yield Static("", id="stats-cpu-chart", classes="chart")
            yield Static("", id="stats-mem-chart", classes="chart")
            yield Static("", id="stats-more")

    def _header_text(self) -> Text:
        t = Text()
        t.append("CPU %: 1 core = 100 %", style="bold")
        t.append(f"  (this host has {self.ncpu} core{'s' if self.ncpu != 1 else ''}"
                 f" = {self.ncpu * 100} %)")
        t.append(" · memory = usage − inactive file cache, as docker stats")
        t.append(" · sampled every second while this tab is shown")
        if self.paused:
            t.append(" · PAUSED (p)", style="bold reverse")
        return t

    @staticmethod
    def _columns(spark: int) -> list[Column]:
        return [Column("NAME", 12 if spark < 20 else 20), Column("CPU %", 7, "right"),
                Column("CPU (1 min)", spark), Column("MEM USED / LIMIT", 17, "right"),
                Column("MEM %", 6, "right"), Column("PIDS", 7, "right"),
                Column("NET RX / TX", 14, "right"), Column("BLOCK R / W", 14, "right")]

    def on_mount(self) -> None:
        self._timer = self.set_interval(self.SAMPLE_INTERVAL, self._tick, pause=True,
                                        name="stats-sample")
        self.reload()

    def focus_default(self) -> None:
        self.query_one("#stats-table", LineTable).focus()

    # ------------------------------------------------------------------ visibility
    def on_show(self) -> None:
        self._visible = True
        width = 20 if self.size.width >= 140 else 10
        if width != self._spark_width:
            self._spark_width = width
            self.query_one("#stats-table", LineTable).columns = self._columns(width)
        self.reload()
        if self._timer is not None and not self.paused:
            self._timer.resume()

    def on_hide(self) -> None:
        self._visible = False
        if self._timer is not None:
            self._timer.pause()

    @property
    def sampling(self) -> bool:
        """True while the pane samples on its timer (shown and not paused)."""
        return self._visible and not self.paused

    def _tick(self) -> None:
        # dolphie's rule: nothing to do while a modal covers us or we are hidden
        if not self._visible or self.paused or self.app.screen is not self.screen:
            return
        self.sample()

    # ------------------------------------------------------------------ data
    def on_engine_changed(self, message: EngineChanged) -> None:
        if not message.kinds or "containers" in message.kinds:
            self.reload()

    def reload(self) -> None:
        """Re-read the list of running containers (then take a sample)."""
        self.fetch(lambda: self.engine.ps(), self._apply_list, group="stats-list")

    def _apply_list(self, items: list[dict]) -> None:
        self.running = [c for c in items if c.get("State") == "running"]
        ids = {c["Id"] for c in self.running}
        for cid in list(self.series):
            if cid not in ids:
                del self.series[cid]
        for c in self.running:
            self.series.setdefault(c["Id"], Series(c.get("Names", c["Id"][:12])))
        self._render_table()
        if self._visible and not self.paused:
            self.sample()

    def sample(self) -> None:
        """Take one sample of every running container, in a thread worker."""
        if self._sampling:
            return
        ids = [c["Id"] for c in self.running]
        if not ids:
            return
        self._sampling = True
        engine = self.engine
        if self._sampler is None:
            self._sampler = engine.container_stats_sampler()
        sampler = self._sampler

        def work() -> list[tuple[str, dict | None]]:
            sampler.forget(set(ids))  # the engine's batch sampler: lookups done once
            got = sampler.sample(ids)
            return [(cid, got.get(cid)) for cid in ids]

        def failed(exc: BaseException) -> None:
            self._sampling = False
            self.notify_error(exc)

        self.fetch(work, self._apply_samples, group="stats-sample", failed=failed)

    def _apply_samples(self, results: list[tuple[str, dict | None]]) -> None:
        self._sampling = False
        gone = False
        for cid, s in results:
            series = self.series.get(cid)
            if s is None or series is None or s.get("State") not in (None, "running"):
                gone = True
                continue
            series.add(s)
        self.samples_taken += 1
        self._render_table()
        if gone:
            self.reload()

    # ------------------------------------------------------------------ drawing
    def _row(self, cid: str, series: Series) -> tuple[list, list]:
        """(cells, sort values) of one container's row."""
        s = series.sample
        cpu = series.cpu_now
        used, limit = s.get("memory_used"), s.get("memory_limit")
        mem_pct = used * 100.0 / limit if used is not None and limit else None
        net = s.get("Network") or {}
        pids_cur, pids_lim = s.get("pids_current"), s.get("pids_limit")
        top = max(100.0, max((v for v in series.cpu if v is not None), default=0.0))
        cells = [
            Text(series.name, style="bold"),
            Text(pct(cpu, 2)),
            Text(sparkline(list(series.cpu), self._spark_width, top), style="green"),
            Text(f"{ibytes(used)} / {ibytes(limit) if limit else 'no limit'}"),
            Text(pct(mem_pct, 2)),
            Text("-" if pids_cur is None else (f"{pids_cur} / {pids_lim}" if pids_lim else str(pids_cur))),
            Text(f"{dbytes(net.get('rx_bytes'))} / {dbytes(net.get('tx_bytes'))}" if net else "-"),
            Text(f"{dbytes(s.get('io_read_bytes'))} / {dbytes(s.get('io_write_bytes'))}" if s else "-"),
        ]
        sort = [series.name, cpu, None, used, mem_pct, pids_cur, net.get("rx_bytes"),
                s.get("io_read_bytes")]
        return cells, sort

    def _table_height(self) -> int:
        """Rows + header, at most 60 % of the pane: the charts below get the rest."""
        return max(4, min(len(self.series) + 1, int(self.size.height * 0.6)))

    def _render_table(self) -> None:
        table = self.query_one("#stats-table", LineTable)
        height = self._table_height()
        if height != getattr(self, "_table_rows", None):  # a layout only when it changes
            self._table_rows = height
            table.styles.height = height
        table.set_rows([(cid, *self._row(cid, series)) for cid, series in self.series.items()])
        if self.container_id in self.series and table.selected_key != self.container_id:
            table.select(self.container_id)
        self._render_detail()

    def _update(self, widget: Static, content) -> None:
        """Static.update without a new layout unless the number of lines changed (a layout
        repaints the whole screen: once a second that was most of the pane's CPU)."""
        lines = content.plain.count("\n") + 1 if isinstance(content, Text) else str(content).count("\n") + 1
        key = f"_lines_{widget.id}"
        if getattr(self, f"_shown_{widget.id}", None) == content:
            return  # the same picture (an idle container): no repaint
        setattr(self, f"_shown_{widget.id}", content)
        layout = getattr(self, key, None) != lines
        setattr(self, key, lines)
        widget.update(content, layout=layout)

    def _render_detail(self) -> None:
        cid = self.container_id if self.container_id in self.series else None
        if cid is None:
            cid = self.query_one("#stats-table", LineTable).selected_key
        title = self.query_one("#stats-title", Static)
        cpu_chart = self.query_one("#stats-cpu-chart", Static)
        mem_chart = self.query_one("#stats-mem-chart", Static)
        more = self.query_one("#stats-more", Static)
        series = self.series.get(cid) if cid else None
        if series is None:
            self._update(title, "no running container selected" if self.series
                         else "no running containers: start one in Containers (3)")
            for w in (cpu_chart, mem_chart, more):
                self._update(w, "")
            return
        s = series.sample
        width = max(10, min(HISTORY, self.size.width - 24))
        spare = self.size.height - self._table_height() - 6  # header, title, pids line, borders
        height = max(2, min(6, spare // 2))
        cpus = s.get("cpus_limit")
        # scale: the quota when there is one (the ceiling the kernel enforces), else one core;
        # never below what was seen
        cpu_top = max([cpus * 100.0 if cpus else 100.0] + [v for v in series.cpu if v is not None])
        t = Text()
        t.append(series.name, style="bold")
        t.append(f"  {cid[:12]}  ")
        t.append(f"CPU limit {cpus:g} CPUs" if cpus else "no CPU limit")
        if s.get("cpu_throttled_periods"):
            t.append(f"  (throttled in {s['cpu_throttled_periods']} periods so far)", style="yellow")
        self._update(title, t)
        used, limit = s.get("memory_used"), s.get("memory_limit")
        peak = max((v or 0 for v in series.mem), default=0)
        mem_top = limit or (peak * 1.25) or 1  # no limit: the peak seen, with headroom
        charts = (
            (cpu_chart, chart(list(series.cpu), width, height, cpu_top),
             f"cpu {pct(series.cpu_now)}", f"of {cpu_top:.0f}%"),
            (mem_chart, chart(list(series.mem), width, height, mem_top),
             f"mem {ibytes(used)}", f"of {ibytes(limit)}" if limit else "(no limit)"),
        )
        for widget, lines, first, last in charts:
            text = Text()
            for i, line in enumerate(lines):
                label = first if i == 0 else (last if i == len(lines) - 1 else "")
                text.append(label.ljust(14)[:14], style="bold" if i == 0 else "dim")
                text.append(line + ("\n" if i < len(lines) - 1 else ""))
            self._update(widget, text)
        pids_cur, pids_lim = s.get("pids_current"), s.get("pids_limit")
        m = Text()
        m.append("pids ", style="bold")
        m.append(f"{pids_cur if pids_cur is not None else '-'} / {pids_lim or 'no limit'} ")
        if pids_lim and pids_cur is not None:
            m.append(bar(pids_cur / pids_lim, 10) + " ")
        net = s.get("Network") or {}
        m.append(" net ", style="bold")
        m.append(f"rx {dbytes(net.get('rx_bytes'))} tx {dbytes(net.get('tx_bytes'))} ")
        m.append(" block ", style="bold")
        m.append(f"r {dbytes(s.get('io_read_bytes'))} w {dbytes(s.get('io_write_bytes'))} ")
        oom = s.get("oom_kills")
        m.append(" OOM kills ", style="bold")
        m.append(str(oom if oom is not None else "-"), style="red bold" if oom else "")
        self._update(more, m)

    # ------------------------------------------------------------------ selection
    def on_line_table_highlighted(self, message) -> None:
        message.stop()
        if message.key != message.table.selected_key:
            return  # stale: the cursor moved again since (e.g. another pane's selection);
            # acting on it would announce an old choice and make the panes flip-flop
        if message.key is not None:
            self.choose_container(message.key)
        self._render_detail()

    def container_changed(self, container_id: str | None) -> None:
        if container_id in self.series:
            self.query_one("#stats-table", LineTable).select(container_id)
        self._render_detail()

    # ------------------------------------------------------------------ actions
    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self.query_one("#stats-header", Static).update(self._header_text())
        if self._timer is not None:
            if self.paused:
                self._timer.pause()
            elif self._visible:
                self._timer.resume()

    def action_clear_history(self) -> None:
        for s in self.series.values():
            s.cpu.clear()
            s.mem.clear()
        self._render_table()
