"""The report's charts: matplotlib figures rendered to SVG and made fit to inline in HTML.

Charts are drawn through matplotlib's object API (``Figure`` + ``savefig``), never pyplot,
so no GUI backend is touched and no global figure state is shared: a report can be built
from any thread of a pytest run. The SVG is then adjusted for inlining: its ids get a
per-chart prefix (every matplotlib SVG defines the same glyph ids, and ids are global in
an HTML page), its fixed size goes (CSS scales it to the page width, so it fits a phone)
and its global ``<style>`` goes (the page's CSS carries the rule instead). Text is drawn
as paths, so a chart looks the same on a reader's machine whatever fonts it has.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import math
import re
import sqlite3
from collections.abc import Iterable, Sequence

import attr
import matplotlib
from markupsafe import Markup, escape
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from hil.measure.figure import NOT_MEASURED
from hil.measure.records import FigureRecord, TestRecord

FIGSIZE = (5.2, 3.3)  # inches; scaled to the page width by CSS (about 1:1 on a phone)
LIMIT_COLOUR = "#b3261e"
BASELINE_COLOUR = "#5f6368"
LINESTYLES = ("-", "--", ":", "-.")
# figures charted across runs, and whether their history is kept apart per model
HISTORY_FIGURES = (("boot_to_shell_s", False), ("text_decode_tokens_per_s", True))
DECODE_MARK = "decode_tokens_per_s"
VISION_FIGURE = "rknn_fps"  # tests/test_vision.py: one chart per model, one line per core mask
_RC = {"svg.fonttype": "path", "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10,
       "legend.fontsize": 8, "xtick.labelsize": 9, "ytick.labelsize": 9}


@attr.s(frozen=True)
class Plot:
    """One rendered chart: ``name`` is stable (``data-plot``), ``svg`` is ready to inline."""

    name = attr.ib()
    title = attr.ib()
    caption = attr.ib()
    svg = attr.ib()  # Markup


@attr.s(frozen=True)
class Line:
    label = attr.ib()
    x = attr.ib()
    y = attr.ib()
    marker = attr.ib(default="o")
    linestyle = attr.ib(default="-")
    colour = attr.ib(default=None)
    highlight = attr.ib(default=())  # indices of points to ring (this run, in a history)


@attr.s(frozen=True)
class Guide:
    """A horizontal reference line: a limit or a baseline median."""

    y = attr.ib()
    label = attr.ib()
    colour = attr.ib(default=LIMIT_COLOUR)
    linestyle = attr.ib(default="--")


@attr.s
class Section:
    """The charts of one part of the report, and what to say when there are none."""

    plots = attr.ib(factory=list)
    notes = attr.ib(factory=list)  # str: data left out, or why there is no chart


# drawing ---------------------------------------------------------------------------------
def chart(name: str, title: str, xlabel: str, ylabel: str, lines: Sequence[Line], guides: Iterable[Guide] = (),
          *, caption: str = "", integer_x: bool = False, dates: bool = False) -> Plot:
    """Draw ``lines`` (and reference ``guides``) into one inline-ready SVG chart."""
    guides = list(guides)
    if not any(len(line.y) for line in lines):
        raise ValueError(f"chart {name!r} has no data to draw")
    with matplotlib.rc_context({**_RC, "svg.hashsalt": name}):
        fig = Figure(figsize=FIGSIZE, layout="constrained")
        ax = fig.add_subplot()
        for line in lines:
            drawn, = ax.plot(line.x, line.y, marker=line.marker or "", markersize=4, linestyle=line.linestyle,
                             linewidth=1.5, label=line.label, color=line.colour)
            if line.highlight:
                ax.plot([line.x[i] for i in line.highlight], [line.y[i] for i in line.highlight], linestyle="none",
                        marker="o", markersize=10, markerfacecolor="none", markeredgewidth=1.5,
                        color=drawn.get_color())
        for guide in guides:
            ax.axhline(guide.y, color=guide.colour, linestyle=guide.linestyle, linewidth=1, label=guide.label)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if integer_x:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if dates:
            locator = AutoDateLocator(minticks=3, maxticks=7)
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        entries = len(ax.get_legend_handles_labels()[1])  # labelled lines and guides
        if entries > 1 or guides:
            if entries <= 3:
                ax.legend(loc="best")
            else:  # many lines: a legend below the axes hides no data
                fig.legend(loc="outside lower center", ncols=min(3, entries))
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return Plot(name=name, title=title, caption=caption, svg=inline_svg(buf.getvalue(), name, title))


_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'((?:xlink:)?href="#|url\(#)([^")]+)')


def inline_svg(svg: str, name: str, title: str) -> Markup:
    """matplotlib's SVG document as an element that can sit in an HTML page next to others."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r"<style\b.*?</style>\s*", "", svg, flags=re.S)
    prefix = f"{re.sub(r'[^A-Za-z0-9_-]+', '-', name)}-{hashlib.sha1(name.encode()).hexdigest()[:6]}-"
    ids = set(_ID.findall(svg))
    svg = _ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = _REF.sub(lambda m: m.group(1) + (prefix if m.group(2) in ids else "") + m.group(2), svg)
    head_end = svg.index(">")
    head = svg[:head_end]
    head = re.sub(r'\s(?:width|height)="[^"]*"', "", head)
    head += f' data-plot="{escape(name)}" role="img" aria-label="{escape(title)}"'
    return Markup(f"{head}>\n<title>{escape(title)}</title>{svg[head_end + 1:]}")


# number and label helpers -----------------------------------------------------------------
def number(x, digits: int = 4) -> str:
    """A figure with ``digits`` significant digits and no exponent, as the tables show it."""
    if x is None:
        return "–"
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    text = f"{x:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def unit_of(name: str, known: dict[str, str] | None = None) -> str:
    """A figure's unit: the one this run recorded, else what its name says."""
    if known and known.get(name):
        return known[name]
    for suffix, unit in (("_tokens_per_s", "tok/s"), ("_ms", "ms"), ("_mib", "MiB"), ("_pct", "%"),
                         ("_c", "°C"), ("_s", "s")):
        if name.endswith(suffix):
            return unit
    return ""


def axis_label(name: str, unit: str) -> str:
    return f"{name} ({unit})" if unit else name


def _limit_guides(limits: Iterable[dict | None], unit: str) -> list[Guide]:
    out: dict[tuple, Guide] = {}
    for limit in limits:
        for key, word in (("min", "lower limit"), ("max", "upper limit")):
            value = (limit or {}).get(key)
            if value is not None and (key, value) not in out:
                out[(key, value)] = Guide(float(value), f"{word} {number(value)} {unit}".rstrip())
    return list(out.values())


def _sources_label(board: str, test: str, *, boards: int, tests: int) -> str:
    parts = [board or "(no board)"] if boards > 1 else []
    if tests > 1:
        parts.append(test)
    return " ".join(parts)


# the report's charts ---------------------------------------------------------------------
def decode_plots(tests: list[TestRecord]) -> Section:
    """Decode speed per repetition: one chart per figure name, one line per board (and test)."""
    section = Section()
    found: dict[str, list[tuple[TestRecord, FigureRecord]]] = {}
    for test in tests:
        for m in test.measurements:
            if DECODE_MARK in (m.name or ""):
                found.setdefault(m.name, []).append((test, m))
    if not found:
        section.notes.append("No decode speed was measured in this run: no decode-per-repetition chart.")
    for name, entries in sorted(found.items()):
        boards = {t.board or "" for t, _ in entries}
        tests_per_board = max(sum(1 for t, _ in entries if (t.board or "") == b) for b in boards)
        unit = next((m.unit for _, m in entries if m.unit), "") or unit_of(name)
        lines, guides = [], _limit_guides((m.limit for _, m in entries), unit)
        for i, (test, m) in enumerate(entries):
            samples = m.samples or []
            label = _sources_label(test.board or "", name_of(test), boards=len(boards),
                                   tests=tests_per_board) or name
            if not samples:
                why = "not measured" if m.verdict == NOT_MEASURED else "no accepted sample to draw"
                section.notes.append(f"{name} of {name_of(test)} on {test.board or '(no board)'}: {why}.")
                continue
            lines.append(Line(label, list(range(1, len(samples) + 1)), samples))
            baseline = (m.comparison or {}).get("baseline_median")
            if baseline is not None and len(entries) == 1:
                guides.append(Guide(float(baseline), f"baseline median {number(baseline)} {unit}".rstrip(),
                                    BASELINE_COLOUR, ":"))
        if not lines:
            section.notes.append(f"{name}: no samples in this run, so no chart.")
            continue
        section.plots.append(chart(
            f"decode:{name}", f"{name} per repetition", "repetition", axis_label(name, unit), lines, guides,
            integer_x=True, caption="Every repetition in the order the test ran it; dashed: the limit."))
    return section


def vision_plots(tests: list[TestRecord]) -> Section:
    """FPS of each timed loop of rknn_benchmark: one chart per vision model, one line per core
    mask (and board), the limit dashed."""
    section = Section()
    found: dict[str, list[tuple[TestRecord, FigureRecord]]] = {}
    for test in tests:
        for m in test.measurements:
            if m.name == VISION_FIGURE:
                model, _, mask = (test.test_id or "").partition("[")[2].rstrip("]").rpartition("-")
                found.setdefault(model or mask, []).append((test, m))
    if not found:
        section.notes.append("No vision model was measured in this run: no FPS chart.")
    for model, entries in sorted(found.items()):
        boards = {t.board or "" for t, _ in entries}
        lines, guides = [], _limit_guides((m.limit for _, m in entries), "FPS")
        for test, m in entries:
            mask = (test.test_id or "").rstrip("]").rpartition("-")[2]
            label = f"{test.board} {mask}" if len(boards) > 1 else mask
            if m.samples:
                lines.append(Line(label, list(range(1, len(m.samples) + 1)), m.samples))
            else:
                section.notes.append(f"{VISION_FIGURE} of {name_of(test)} on {test.board or '(no board)'}: "
                                     f"{'not measured' if m.verdict == NOT_MEASURED else 'no sample'}.")
        if lines:
            section.plots.append(chart(
                f"vision:{model}", f"{model}: FPS per timed loop", "loop", axis_label(VISION_FIGURE, "FPS"), lines,
                guides, integer_x=True,
                caption="rknn_benchmark's timed loops after its warm-ups, per core mask; dashed: the limit."))
    return section


def series_plots(tests: list[TestRecord]) -> Section:
    """Time series recorded during the tests (NPU load with the CPU clusters' utilisation,
    temperatures): one chart per series name.

    Colour tells the label (NPU core, CPU cluster, thermal zone) apart, line style the board. A
    value of None (a CPU cluster before a session's second sample) is a gap in its line.
    """
    section = Section()
    by_name: dict[str, list[tuple[TestRecord, dict]]] = {}
    for test in tests:
        for series in test.series or []:
            if isinstance(series, dict) and series.get("name"):
                by_name.setdefault(series["name"], []).append((test, series))
    if not by_name:
        section.notes.append("No time series (NPU load, temperatures) were recorded in this run: no chart.")
    prop_colours = matplotlib.rcParams["axes.prop_cycle"].by_key().get("color", [None])
    for name, entries in sorted(by_name.items()):
        boards = list(dict.fromkeys(t.board or "" for t, _ in entries))
        tests_per_board = max(sum(1 for t, _ in entries if (t.board or "") == b) for b in boards)
        unit = next((s.get("unit") for _, s in entries if s.get("unit")), "")
        labels = list(dict.fromkeys(lab for _, s in entries for lab in (s.get("values") or {})))
        lines = []
        for test, series in entries:
            board = test.board or ""
            source = _sources_label(board, name_of(test), boards=len(boards), tests=tests_per_board)
            t = series.get("t") or []
            for label, values in (series.get("values") or {}).items():
                values = values or []
                if len(values) != len(t):
                    section.notes.append(f"Series {name} of {name_of(test)} on {board or '(no board)'}: "
                                         f"{label} has {len(values)} values for {len(t)} times, left out.")
                    continue
                if not values:
                    continue
                y = [math.nan if v is None else float(v) for v in values]
                lines.append(Line(f"{source} {label}".strip(), list(t), y, marker="." if len(t) <= 40 else "",
                                  linestyle=LINESTYLES[boards.index(board) % len(LINESTYLES)],
                                  colour=prop_colours[labels.index(label) % len(prop_colours)]))
        if not lines:
            section.notes.append(f"Series {name}: no values to draw, so no chart.")
            continue
        x = next((s.get("x") for _, s in entries if s.get("x")), None)
        title = f"{name} per {x}" if x else f"{name} over time"
        section.plots.append(chart(f"series:{name}", title, x or "time (s)", axis_label(name, unit), lines,
                                   caption=("Sampled while the test ran. Colour: NPU core, CPU cluster or "
                                            "thermal zone" + ("; line style: board." if len(boards) > 1 else "."))))
    return section


def history_plots(history, boards: Sequence[str], *, run_id: str, models: dict[str, str | None] | None = None,
                  units: dict[str, str] | None = None, limits: dict[str, list] | None = None,
                  figures: Sequence[tuple[str, bool]] = HISTORY_FIGURES) -> Section:
    """Each figure's median across earlier runs, per board of this run, from ``history.trend``.

    ``history`` is anything with ``trend(name, board=, model=, runtime=, limit=)`` returning
    ``(run_id, started, board, median, n)`` rows, oldest first; None gives a "no history" note.
    ``models`` gives each board's model (figures of inference are charted for that model
    only). This run's points are ringed.
    """
    section = Section()
    if history is None:
        section.notes.append("No history: no history database was given, so no trend charts.")
        return section
    for name, per_model in figures:
        unit = unit_of(name, units)
        lines = []
        dated = True
        rows_by_board = {}
        for board in boards:
            try:
                model = (models or {}).get(board) if per_model else None
                rows = list(history.trend(name, board=board or None, model=model, limit=50))
            except sqlite3.Error as e:  # the run's own report matters more than its trend charts
                section.notes.append(f"No history for {name} on {board or '(no board)'}: the history "
                                     f"database could not be read ({e}).")
                continue
            if rows:
                rows_by_board[board] = rows
                dated = dated and all(_parse_time(r[1]) is not None for r in rows)
        for board, rows in rows_by_board.items():
            x = [_parse_time(r[1]) for r in rows] if dated else list(range(1, len(rows) + 1))
            y = [float(r[3]) if r[3] is not None else math.nan for r in rows]
            here = tuple(i for i, r in enumerate(rows) if r[0] == run_id)
            lines.append(Line(board or "(no board)", x, y, highlight=here))
        if not lines:
            section.notes.append(f"No history for {name} on {', '.join(b or '(no board)' for b in boards)}.")
            continue
        caption = ("The median of each run in the history, per board"
                   + ("; this run is ringed." if any(line.highlight for line in lines) else "."))
        section.plots.append(chart(
            f"history:{name}", f"{name} across runs", "run start" if dated else "run (oldest to newest)",
            axis_label(name, unit), lines, _limit_guides((limits or {}).get(name, []), unit),
            caption=caption, dates=dated, integer_x=not dated))
    return section


def _parse_time(value) -> _dt.datetime | None:
    """A run's start as recorded (wall-clock time where it ran, offset dropped), or None."""
    if isinstance(value, _dt.datetime):
        return value.replace(tzinfo=None)
    try:
        return _dt.datetime.fromisoformat(str(value)).replace(tzinfo=None)
    except ValueError:
        return None


def name_of(test: TestRecord) -> str:
    """How the report names a test: its id without the board."""
    return test.test_id or "?"
