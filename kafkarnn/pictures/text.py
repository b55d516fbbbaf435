"""Pictures of the inside of a network as Rich text: for the monitor and the command line alike.

Plain Rich (no Textual, no NumPy maths beyond shaping), so that both front ends draw the same
thing. Every picture carries its meaning without colour too (NO_COLOR, a monochrome terminal):

    activation_text(text, values, width)  the text, each character's background by one unit's
                                          activation (−1 blue … +1 green), its style by a ladder
                                          (reverse, underline, dim, plain, bold, bold reverse),
                                          and under each line a row of ▁…█ glyphs with the value
    surprise_text(text, surprise)         the text by how surprised the model was at each
                                          character: dim (expected) … bold reverse (surprised)
    versus_text(text, advantage)          the text by where the network beats the n-gram table
                                          (bold, green) and where counting still wins (underline,
                                          bold reverse, orange); a tie is dim
    line_chart(series, width, height)     dots on a labelled y axis: one glyph per series, and
                                          optionally a labelled level line (╌╌ 6-gram 1.71)
    log_rows(rows, width)                 one row of ▁…█ per series on one log scale

Model text always goes in as Text, never markup; control characters are made visible.
"""

from __future__ import annotations

import math
import unicodedata

from rich.style import Style
from rich.text import Text

GLYPHS = "▁▂▃▄▅▆▇█"
LEVEL_STYLE = "italic #8080c0"    # a level line on a chart (its dashes say what it is without colour)
# the activation ladder, −1 … +1: (colour, style without colour)
LADDER = [("#3060d0", "reverse"), ("#284c9c", "underline"), ("#223a66", "dim"), (None, "dim"),
          (None, ""), ("#245a2c", "bold"), ("#2f8a3c", "bold underline"), ("#3fbf5f", "bold reverse")]
SURPRISE = [(1.0, None, "dim"), (3.0, None, ""), (5.0, "#c0a020", "bold underline"),
            (math.inf, "#d04040", "bold reverse")]      # up to nats: colour, style
# n-gram nats − network nats, up to: colour, style (positive: the network predicted better)
VERSUS = [(-1.0, "#c05020", "bold reverse"), (-0.25, "#806020", "underline"), (0.25, None, "dim"),
          (1.0, "#245a2c", ""), (math.inf, "#2f8a3c", "bold")]
_INVISIBLE = {"Cf", "Zl", "Zp", "Cs", "Co", "Cc"}


def visible(ch: str) -> str:
    """One character as it may reach the terminal: controls as visible symbols, a newline as ↵."""
    o = ord(ch)
    if ch == "\n":
        return "↵"
    if o < 0x20:
        return chr(0x2400 + o)                 # ␀ … ␟
    if o == 0x7F:
        return "␡"
    return "�" if unicodedata.category(ch) in _INVISIBLE else ch


def level(v: float) -> int:
    """The rung 0 … 7 of LADDER (and GLYPHS) of a value in −1 … +1."""
    if not math.isfinite(v):
        return 3
    return min(len(GLYPHS) - 1, max(0, int((v + 1.0) / 2.0 * len(GLYPHS))))


def _style(colour: str | None, words: str) -> Style:
    style = Style.parse(words) if words else Style()
    if colour is None:
        return style
    if "reverse" in words:                      # reversed, the colour becomes the background
        return style + Style(color=colour)
    return style + Style(bgcolor=colour)


def activation_style(v: float) -> Style:
    return _style(*LADDER[level(v)])


def lines_of(text: str, width: int) -> list[tuple[int, int]]:
    """(start, end) of each screen line: a break after every newline and at `width`."""
    width = max(1, width)
    out, start = [], 0
    for i, ch in enumerate(text):
        if ch == "\n" or i + 1 - start >= width:
            out.append((start, i + 1))
            start = i + 1
    if start < len(text) or not out:
        out.append((start, len(text)))
    return out


def activation_text(text: str, values, width: int, cursor: int | None = None,
                    first_line: int = 0, max_lines: int | None = None) -> Text:
    """The text shaded by values (one per character, −1 … +1), a glyph row under each line;
    `cursor` (an index) is underlined and bold. Lines from first_line, at most max_lines."""
    out = Text(no_wrap=True, overflow="crop")
    spans = lines_of(text, width)[first_line:]
    for a, b in spans[:max_lines]:
        for i in range(a, b):
            style = activation_style(values[i])
            if i == cursor:
                style += Style(bold=True, underline=True, reverse=not style.reverse)
            out.append(visible(text[i]), style)
        out.append("\n")
        out.append("".join(GLYPHS[level(values[i])] for i in range(a, b)), "dim")
        out.append("\n")
    out.rstrip()
    return out


def activation_legend() -> Text:
    out = Text("−1 ")
    for k, (colour, words) in enumerate(LADDER):
        out.append(GLYPHS[k], _style(colour, words))
    return out + Text(" +1")


def surprise_style(nats: float) -> Style:
    if not math.isfinite(nats):
        return Style()
    for up_to, colour, words in SURPRISE:
        if nats < up_to:
            return _style(colour, words)
    return Style()


def surprise_text(text: str, surprise) -> Text:
    """The text with each character styled by the nats of surprise at it (NaN: plain)."""
    out = Text()
    for ch, s in zip(text, surprise):
        out.append("\n" if ch == "\n" else visible(ch), surprise_style(float(s)))
    return out


def surprise_legend() -> Text:
    return Text.assemble(("expected <1 nat", surprise_style(0.0)), " · ", ("1–3", surprise_style(2.0)),
                         " · ", ("3–5", surprise_style(4.0)), " · ", ("surprised ≥5", surprise_style(9.0)))


def versus_style(advantage: float) -> Style:
    if not math.isfinite(advantage):
        return Style()
    for up_to, colour, words in VERSUS:
        if advantage < up_to:
            return _style(colour, words)
    return Style()


def versus_text(text: str, advantage) -> Text:
    """The text with each character styled by the network's advantage over the n-gram table
    there, in nats (n-gram surprise − network surprise; NaN: plain)."""
    out = Text()
    for ch, a in zip(text, advantage):
        out.append("\n" if ch == "\n" else visible(ch), versus_style(float(a)))
    return out


def versus_legend(ngram: str = "n-gram") -> Text:
    return Text.assemble((f"{ngram} better by >1 nat", versus_style(-2.0)), " · ",
                         (">¼", versus_style(-0.5)), " · ", ("tie", versus_style(0.0)), " · ",
                         ("network >¼", versus_style(0.5)), " · ", ("network >1", versus_style(2.0)))


def line_chart(series, width: int, height: int, y_label: str = "nats",
               level: tuple[float, str] | None = None) -> Text:
    """series: [(points [(x, y)], glyph, style)], drawn in that order (later ones on top) over a
    shared x range, on a y axis labelled at top, middle and bottom. Each column shows the mean of
    a series' points that fall in it. `level` (y, label): a dashed line across the chart at y,
    under the points, with its label at its left end (the y range always includes it)."""
    finite = [(x, y) for pts, _, _ in series for x, y in pts if math.isfinite(y)]
    label_w = 6
    cols = max(1, width - label_w - 1)
    if not finite:
        return Text("no points yet", "dim")
    if level is not None and not math.isfinite(level[0]):
        level = None
    x0, x1 = min(x for x, _ in finite), max(x for x, _ in finite)
    ys = [y for _, y in finite] + ([level[0]] if level else [])
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5
    grid: list[list[tuple[str, str]]] = [[(" ", "")] * cols for _ in range(height)]
    if level is not None:
        r = round((y1 - level[0]) / (y1 - y0) * (height - 1))
        grid[r] = [("╌", LEVEL_STYLE)] * cols
    for pts, glyph, style in series:
        buckets: dict[int, list[float]] = {}
        for x, y in pts:
            if math.isfinite(y):
                c = 0 if x1 == x0 else round((x - x0) / (x1 - x0) * (cols - 1))
                buckets.setdefault(c, []).append(y)
        for c, ys in buckets.items():
            y = sum(ys) / len(ys)
            r = round((y1 - y) / (y1 - y0) * (height - 1))
            grid[r][c] = (glyph, style)
    if level is not None and cols >= len(level[1]) + 3:        # the label over the line's left end
        r = round((y1 - level[0]) / (y1 - y0) * (height - 1))
        grid[r][1:len(level[1]) + 3] = [(ch, LEVEL_STYLE) for ch in f" {level[1]} "]
    out = Text(no_wrap=True, overflow="crop")
    for r in range(height):
        if r in (0, height - 1) or r == height // 2:
            y = y1 - (y1 - y0) * r / max(height - 1, 1)
            out.append(f"{y:>{label_w}.2f}", "dim")
        else:
            out.append(" " * label_w)
        out.append("┤" if r in (0, height // 2, height - 1) else "│", "dim")
        for glyph, style in grid[r]:
            out.append(glyph, style or None)
        out.append("\n")
    out.append(f"{y_label:>{label_w}} {x0:,}", "dim")
    right = f"{x1:,}"
    out.append(" " * max(1, cols - len(f"{x0:,}") - len(right)) + right, "dim")
    return out


def log_rows(rows: list[tuple[str, list[float]]], width: int) -> tuple[Text, float, float]:
    """One row of GLYPHS per (label, values), all on one log10 scale; each value as wide as fits
    (averaged in log when there are more than columns). Returns the text and the scale's ends."""
    logs = [math.log10(v) for _, vs in rows for v in vs if v > 0 and math.isfinite(v)]
    lo, hi = (min(logs), max(logs)) if logs else (0.0, 1.0)
    span = max(hi - lo, 1e-12)
    label_w = max((len(label) for label, _ in rows), default=0) + 1
    cols = max(1, width - label_w)
    out = Text(no_wrap=True, overflow="crop")
    for label, vs in rows:
        out.append(f"{label:<{label_w}}", "bold")
        n = len(vs)
        per, wide = max(1, math.ceil(n / cols)), max(1, cols // max(n, 1))   # values per column,
        for a in range(0, n, per):                                           # columns per value
            part = [math.log10(v) for v in vs[a:a + per] if v > 0 and math.isfinite(v)]
            if not part:
                out.append(" " * wide)
                continue
            k = min(len(GLYPHS) - 1, int((sum(part) / len(part) - lo) / span * len(GLYPHS)))
            out.append(GLYPHS[k] * wide)
        out.append("\n")
    out.rstrip()
    return out, 10 ** lo, 10 ** hi
