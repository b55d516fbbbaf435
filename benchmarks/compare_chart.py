"""Drawing the comparison chart: ours (pictures/comparison.py) against plotext, if installed.

    python benchmarks/compare_chart.py [--runs 3] [--points 300] [--size 120x40]

Three synthetic runs of 300 validation points each (a decaying loss, different per run), drawn
at 120×40 into a string as the monitor's screen would take it. Median of 50 draws each, and
for each: the distinct glyphs used for the runs (what is left of them under NO_COLOR). plotext
is an optional comparison only (pip install 'plotext<6'); kafkarnn does not depend on it.
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
import time

import common  # noqa: F401  (puts this checkout first on sys.path)
from rich.console import Console

from kafkarnn.pictures import comparison as compare_view
from kafkarnn.inspect.compare import Comparison, RunCurves
from kafkarnn.inspect.curves import Point


def synthetic(runs: int, points: int) -> Comparison:
    out = []
    for r in range(runs):
        val = [Point(i * 10, i * 10 * 64 * (r + 1), i * 0.5, 1.2 + r * 0.1 + 2.5 * math.exp(-i / (40 + 30 * r)))
               for i in range(points)]
        out.append(RunCurves(f"run-{r}", {"model": "lstm", "batch": 64 * (r + 1), "seq_len": 1},
                             val=val))
    return Comparison(out, "chars")


def ours(c: Comparison, width: int, height: int) -> str:
    console = Console(width=width, file=io.StringIO(), force_terminal=True, color_system="truecolor")
    console.print(compare_view.legend(c))
    console.print(compare_view.chart(c, width, height - 1))
    return console.file.getvalue()


def plotext_draw(c: Comparison, width: int, height: int) -> str:
    import plotext as plt                  # the 5.x API, which textual-plotext 1.0 requires
    plt.clear_figure()
    plt.plotsize(width, height)
    for r, (glyph, _) in zip(c.runs, compare_view.MARKERS):
        plt.plot([p.chars for p in r.val], [p.loss for p in r.val], label=r.name, marker=glyph)
    return plt.build()


def timed(draw, *args) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(50):
        t0 = time.perf_counter()
        out = draw(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--points", type=int, default=300)
    p.add_argument("--size", default="120x40")
    a = p.parse_args()
    width, height = map(int, a.size.split("x"))
    c = synthetic(a.runs, a.points)
    drawers = [("kafkarnn compare_view.chart", ours)]
    try:
        import plotext  # noqa: F401
        drawers.append(("plotext.build", plotext_draw))
    except ImportError:
        print("plotext is not installed: only ours is timed")
    for name, draw in drawers:
        ms, out = timed(draw, c, width, height)
        glyphs = sorted({ch for ch in out if ch in "●▲■◆✚○△□⢀⣀⠁⠂⠄⡀⠈⠐⠠⢀•▄▀█"})
        print(f"{name:<30} {ms:7.2f} ms per draw at {width}x{height}, {len(out):,} bytes, "
              f"marker glyphs: {''.join(glyphs)[:20]}")


if __name__ == "__main__":
    main()
