"""What the Inside screen draws, as Rich renderables: pure functions of one look and a selection.

- `Look`: one `inside.look` and the other texts read by the same copy of the model;
- `unit_info`: which unit is shown and what it tracks best;
- `next_view`: the text around a cursor, the top-5 guesses after it and the surprise at the real
  next character; with the n-gram baseline's surprise, shaded by where the network beats it;
- `gradient_view`: ‖∂L_t/∂h_{t−k}‖ per layer on a log scale, gate saturation and clipping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from rich.console import Group
from rich.table import Table
from rich.text import Text

from kafkarnn.engine.cells import cell_class
from kafkarnn.engine.probe import Trace
from kafkarnn.pictures.text import log_rows, surprise_style, versus_style, visible
from kafkarnn.inspect.inside import Guesses, Inside

TEXTS = ("validation", "sample", "continuation")


@dataclass(frozen=True)
class Look:
    """One look inside, and each text it was read on: name -> (text, trace, guesses)."""
    inside: Inside
    texts: dict[str, tuple[str, Trace, Guesses]]
    ngram: dict[str, np.ndarray] = field(default_factory=dict)   # name -> n-gram nats per character


def shown_char(ch: str) -> str:
    return "␣" if ch == " " else visible(ch)


def unit_info(inside: Inside, layer: int, unit: int, state: str) -> Text:
    """The unit shown, and the feature it tracks best on the validation passage."""
    out = Text.assemble(("layer ", "dim"), (f"{layer}", "bold"), ("  unit ", "dim"),
                        (f"{unit}", "bold"), ("  state ", "dim"), (state, "bold"))
    best = next((u for u in inside.units if (u["layer"], u["unit"], u["state"]) ==
                 (layer, unit, state)), None)
    if best is not None:
        out.append(f"\ntracks {best['feature']} best: r {best['correlation']:+.2f}")
    return out


def next_view(text: str, guesses: Guesses, cursor: int, width: int, lines: int,
              ngram: np.ndarray | None = None) -> Group:
    """The text around the cursor (shaded by surprise, or with `ngram` — the n-gram baseline's
    nats at each character — by the network's advantage over it), then what the model expected next."""
    width = max(width, 10)
    start = max(0, cursor - (width * max(lines, 1)) // 2)
    window = text[start:start + width * max(lines, 1)]
    shown = Text(no_wrap=False, overflow="fold")
    for i, ch in enumerate(window):
        t = start + i
        style = None
        if t > 0:                                  # surprise[t − 1]: at character t
            s = float(guesses.surprise[t - 1])
            style = surprise_style(s) if ngram is None else versus_style(float(ngram[t]) - s)
        if t == cursor:
            shown.append(visible(ch), "bold reverse underline")
        else:
            shown.append(visible(ch), style)
    real = text[cursor + 1] if cursor + 1 < len(text) else None
    table = Table(box=None, padding=(0, 1), show_header=True, header_style="dim")
    table.add_column("guess", justify="right")
    table.add_column("char")
    table.add_column("p", justify="right")
    table.add_column("", no_wrap=True)
    for rank, (ch, p) in enumerate(guesses.top(cursor), 1):
        bar = "█" * max(1, round(p * 20)) if p >= 0.025 else "▏"
        mark = Text(" ◀ the real one", "bold") if ch == real else Text()
        table.add_row(f"{rank}", Text(shown_char(ch), "bold"), f"{p:.3f}", Text(bar) + mark)
    after = Text.assemble(("after ", "dim"), (repr(text[cursor]), "bold"),
                          (f" (character {cursor:,} of {len(text):,})", "dim"))
    if real is None:
        verdict = Text("the end of the text: nothing to predict", "dim")
    else:
        s = float(guesses.surprise[cursor])
        verdict = Text.assemble(("the real next character ", "dim"), (repr(real), "bold"),
                                (": surprise ", "dim"), (f"{s:.2f} nats", "bold"),
                                (f" ({s / math.log(2):.2f} bits, p {math.exp(-s):.3f})", "dim"))
        if ngram is not None:
            verdict.append(f"; the n-gram table's {float(ngram[cursor + 1]):.2f} nats", "dim")
    return Group(shown, Text(), after, table, verdict)


def gradient_view(inside: Inside, width: int) -> Group:
    """The gradient through time per layer, gate saturation, and the gradient norm and clipping."""
    gtt, cell = inside.gradient_through_time, cell_class(inside.cell)
    parts: list = []
    if gtt.shape[1] == 0:
        parts.append(Text("no gradient through time: the text is too short", "dim"))
    else:
        T = gtt.shape[1]
        rows = [(f"layer {l}", [float(v) for v in g]) for l, g in enumerate(gtt)]
        chart, lo, hi = log_rows(rows, width)
        parts += [Text("‖∂L_t/∂h_(t−k)‖, log scale", "bold"), chart]
        label_w = max(len(r[0]) for r in rows) + 1
        axis, right = "k=0 (now)", f"k={T - 1} steps back"
        cols = width - label_w
        span = T * max(1, cols // T) if T <= cols else cols
        parts.append(Text(" " * label_w + axis + " " * max(1, span - len(axis) - len(right)) + right,
                          "dim"))
        parts.append(Text(f"scale: ▁ {lo:.1e} … █ {hi:.1e}", "dim"))
        for label, g in rows:
            first, last = g[0], g[-1]
            ratio = f"×{last / first:.1e}" if first > 0 else "-"
            parts.append(Text.assemble((label, "bold"), f": {first:.2e} at k=0, {last:.2e} at "
                                       f"k={T - 1} ({ratio})"))
        if cell.through_time_note:
            parts.append(Text(cell.through_time_note, "dim"))
    parts.append(Text())
    if not cell.gates:
        parts.append(Text(f"gate saturation: a {inside.cell} has no sigmoid gates", "dim"))
    else:
        parts.append(Text("gate saturation: the share of time a gate is shut (<0.1) or open (>0.9)",
                          "bold"))
        table = Table(box=None, padding=(0, 1), header_style="dim")
        table.add_column("layer")
        table.add_column("gate")
        table.add_column("shut", justify="right")
        table.add_column("open", justify="right")
        for l, layer in enumerate(inside.saturation):
            for name, s in layer.items():
                table.add_row(f"{l}", name, f"{s['low']:.0%}", f"{s['high']:.0%}")
        parts.append(table)
    clip = inside.clip
    if clip is not None and clip.steps:
        norm = "-" if math.isnan(clip.norm) else f"{clip.norm:.3g}"
        parts.append(Text.assemble(("gradient norm before clipping ", "dim"), (norm, "bold"),
                                   ("  · clipping acted in ", "dim"), (f"{clip.clipped_share:.0%}", "bold"),
                                   (f" of {clip.steps:,} steps", "dim")))
    elif clip is not None:
        parts.append(Text("no training step yet in this session: no gradient norm", "dim"))
    return Group(*parts)
