"""The comparison (compare.py) as Rich renderables, for the command line and the monitor alike.

    chart(c, width, height)      every run's validation curve (and with train=True its training
                                 curve, dim) on one x-axis, each run with its own marker AND colour,
                                 so that the runs stay apart under NO_COLOR; a baseline as a line
    legend(c)                    marker, run name, and the baseline's line
    table(c)                     model, parameters, chars/s, best validation loss and when
    settings_table(c)            only the settings that differ between the runs
    samples_table(c)             each run's sample from best.npz, side by side

Plain Rich, no Textual. Model text goes in as Text, never markup, with control characters
made visible.
"""

from __future__ import annotations

import math

from rich import box
from rich.table import Table
from rich.text import Text

from kafkarnn.inspect.compare import AXES, Comparison, RunCurves
from kafkarnn.pictures.text import visible
from kafkarnn.train.progress import format_duration

MARKERS = [("●", "#e0a030"), ("▲", "#40a0e0"), ("■", "#e05060"), ("◆", "#50c060"),
           ("✚", "#c070d0"), ("○", "#a0a0a0"), ("△", "#30c0c0"), ("□", "#d0d050")]
TRAIN_STYLE = "dim"                   # a training curve: the run's marker, dimmed
LIVE_STYLE = "bold reverse"           # the run the monitor trains now
BASELINE = "╌"
LABEL_W = 6


def marker(i: int) -> tuple[str, str]:
    return MARKERS[i % len(MARKERS)]


def x_label(value: float, axis: str) -> str:
    """A tick on the x-axis: 1.23M chars, 4m05s, 1,234 iterations."""
    if axis == "seconds":
        return f"{value:.3g}s" if value < 60 else format_duration(value)
    if axis == "chars":
        for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if value >= size:
                return f"{value / size:.3g}{unit}"
    return f"{value:,.0f}"


def _series(c: Comparison, train: bool) -> list[tuple[list[tuple[float, float]], str, str]]:
    """(points on c.axis, glyph, style) per curve, drawn in this order (the later on top)."""
    out = []
    for i, r in enumerate(c.runs):
        glyph, colour = marker(i)
        if train:
            out.append((_xy(r.train, c.axis), glyph, f"{TRAIN_STYLE} {colour}"))
    for i, r in sorted(enumerate(c.runs), key=lambda ir: ir[1].live):   # the live run on top
        glyph, colour = marker(i)
        out.append((_xy(r.val, c.axis), glyph, f"{LIVE_STYLE if r.live else 'bold'} {colour}"))
    return out


def _xy(points, axis: str) -> list[tuple[float, float]]:
    return [(x, p.loss) for p in points if (x := p.x(axis)) is not None]


def chart(c: Comparison, width: int, height: int, train: bool = False) -> Text:
    """The curves over x from 0 to the furthest point, on a y axis in nats per character."""
    series = _series(c, train)
    ys = [y for pts, _, _ in series for _, y in pts]
    xs = [x for pts, _, _ in series for x, _ in pts]
    if c.baseline is not None and math.isfinite(c.baseline):
        ys.append(c.baseline)
    if not xs:
        return Text("no validation loss yet in any of these runs", "dim")
    cols, rows = max(2, width - LABEL_W - 1), max(3, height - 1)
    x1 = max(xs) or 1.0
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5
    row_of = lambda y: round((y1 - y) / (y1 - y0) * (rows - 1))            # noqa: E731
    grid = [[(" ", "")] * cols for _ in range(rows)]
    if c.baseline is not None and math.isfinite(c.baseline):
        grid[row_of(c.baseline)] = [(BASELINE, "dim")] * cols
    for pts, glyph, style in series:
        buckets: dict[int, list[float]] = {}
        for x, y in pts:              # each column shows the mean of the points that fall in it
            buckets.setdefault(round(x / x1 * (cols - 1)), []).append(y)
        for col, vals in buckets.items():
            grid[row_of(sum(vals) / len(vals))][col] = (glyph, style)
    out = Text(no_wrap=True, overflow="crop")
    for r, cells in enumerate(grid):
        labelled = r in (0, rows // 2, rows - 1)
        y = y1 - (y1 - y0) * r / (rows - 1)
        out.append(f"{y:>{LABEL_W}.2f}" if labelled else " " * LABEL_W, "dim")
        out.append("┤" if labelled else "│", "dim")
        for glyph, style in cells:
            out.append(glyph, style or None)
        out.append("\n")
    out.append(" " * LABEL_W + "└" + "─" * cols + "\n", "dim")
    left, mid, right = "0", x_label(x1 / 2, c.axis), x_label(x1, c.axis)
    gap = max(1, (cols - len(mid)) // 2 - len(left))
    ticks = f"{'nats':>{LABEL_W}} {left}{' ' * gap}{mid}"
    ticks += " " * max(1, LABEL_W + 1 + cols - len(ticks) - len(right)) + right
    out.append(ticks + "\n", "dim")
    out.append(f"{'':>{LABEL_W}} x: {AXES[c.axis]}", "dim")
    return out


def legend(c: Comparison, train: bool = False) -> Text:
    out = Text()
    for i, r in enumerate(c.runs):
        glyph, colour = marker(i)
        out.append(glyph, f"{LIVE_STYLE if r.live else 'bold'} {colour}")
        out.append(f" {r.name}{' (live)' if r.live else ''}  ")
    if train:
        out.append("dim: training loss  ", "dim")
    if c.baseline is not None:
        out.append(BASELINE * 2 + f" {c.baseline_name}", "dim")
    out.rstrip()
    return out


def _when(r: RunCurves, axis: str) -> str:
    best = r.best
    if best is None:
        return "-"
    x = best.x(axis)
    return "-" if x is None else x_label(x, axis)


def table(c: Comparison) -> Table:
    """One row per run (and the baseline's): the note column only when a run has a note."""
    notes = [r.problem or ("no validation yet" if r.best is None else "") for r in c.runs]
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, expand=False)
    columns = [("run", "left"), ("model", "left"), ("params", "right"), ("chars/s", "right"),
               ("best val", "right"), (f"at ({c.axis})", "right")] + [("note", "left")] * any(notes)
    for name, justify in columns:
        t.add_column(name, justify=justify, no_wrap=name != "note", overflow="fold")
    for i, (r, note) in enumerate(zip(c.runs, notes)):
        glyph, colour = marker(i)
        best = r.best
        style = f"{LIVE_STYLE if r.live else 'bold'} {colour}"
        name = Text.assemble((glyph, style), " ", (r.name, LIVE_STYLE if r.live else "bold"))
        cells = [name, r.model, f"{r.n_params:,}" if r.n_params else "-",
                 f"{r.chars_per_sec:,.0f}" if r.chars_per_sec else "-",
                 f"{best.loss:.4f}" if best else "-", _when(r, c.axis)]
        t.add_row(*cells, *[Text(note, "bold" if r.problem else "dim")] * any(notes))
    if c.baseline is not None:
        t.add_row(Text(f"{BASELINE} {c.baseline_name}", "dim"), "-", "-", "-", f"{c.baseline:.4f}",
                  "-", *[""] * any(notes))
    return t


def settings_table(c: Comparison) -> Table | Text:
    rows = c.settings
    if not rows:
        return Text("the runs' settings are all the same", "dim")
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, title="settings that differ",
              title_justify="left", title_style="bold")
    t.add_column("setting", style="dim", no_wrap=True)
    names = [r.name for r in c.runs if r.config]
    for i, r in enumerate(c.runs):
        if r.config:
            glyph, colour = marker(i)
            t.add_column(Text.assemble((glyph, f"bold {colour}"), " ", r.name), overflow="fold")
    for key, values in rows:
        t.add_row(key, *("-" if values.get(n) is None else str(values[n]) for n in names))
    return t


def samples_table(c: Comparison) -> Table:
    title = (f"from each run's best.npz · prompt {c.prompt!r} · seed {c.seed} · "
             f"temperature {c.temperature:g}")
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=True, title=title, title_justify="left",
              title_style="bold")
    for i, r in enumerate(c.runs):
        glyph, colour = marker(i)
        t.add_column(Text.assemble((glyph, f"bold {colour}"), " ", r.name), ratio=1, overflow="fold")
    cells = []
    for r in c.runs:
        s = c.samples.get(r.name)
        if s is None:
            cells.append(Text("…", "dim"))
        elif s.error:
            cells.append(Text(s.error, "dim"))
        else:
            cells.append(Text.assemble((visible_text(c.prompt), "reverse"), visible_text(s.text)))
    t.add_row(*cells)
    return t


def visible_text(text: str) -> str:
    """Model text with its newlines kept and other control characters made visible."""
    return "\n".join("".join(visible(ch) for ch in line) for line in text.split("\n"))
