"""`kafkarnn inspect` and `kafkarnn score`: looking inside a saved model from the shell.

- inspect: which units track which features of a text (the run's validation text, or --text
  FILE), one unit's activation shaded on the text, and the gradient through time per layer
  (train/inside.py on a model loaded like `sample` loads it); --json prints `Inside.to_json()`;
- score: how well the model predicts a file (train/scoring.py, validation's computation), and
  the text shaded by the model's surprise at each character; --json the numbers.

Part of the command line (it never imports the monitor); errors are KafkarnnError, one line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kafkarnn.errors import KafkarnnError

INSPECT_MAX_CHARS = 20_000    # of a --text FILE, ranked and traced (the cost grows with it)
SHOWN_LINES = 12              # lines of shaded text inspect prints (each with its glyph row)
SCORE_SHOWN_CHARS = 3000      # characters of the scored text printed shaded


def read_text_file(path: str, what: str = "text file") -> str:
    """A UTF-8 file's text, or KafkarnnError saying why not."""
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as e:
        raise KafkarnnError(f"cannot read {what} {path} ({e.strerror or e})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise KafkarnnError(f"{what} {path} is not UTF-8 text (byte {e.start}: {e.reason})") from None


def parse_unit(spec: str) -> tuple[int, int]:
    """LAYER:N, e.g. 0:12."""
    layer, sep, unit = spec.partition(":")
    if not (sep and layer.isdigit() and unit.isdigit()):
        raise KafkarnnError(f"--unit must be LAYER:N, e.g. 0:12, not {spec!r}")
    return int(layer), int(unit)


def _load(args):
    from kafkarnn.inspect.inference import load_for_sampling
    from kafkarnn.runs.folder import resolve_data_dir
    sampler, run = load_for_sampling(resolve_data_dir(args.data_dir), args.run, best=args.best)
    return sampler.model, sampler.vocab, sampler.meta, run


def _console():
    from rich.console import Console
    return Console(highlight=False)


def cmd_inspect(args) -> int:
    from rich.table import Table
    from rich.text import Text

    from kafkarnn.pictures import activation_legend, activation_text, log_rows
    from kafkarnn.inspect import inside
    from kafkarnn.inspect.features import FEATURES
    from kafkarnn.train.launch import validation_text

    if args.feature is not None and args.feature not in FEATURES:
        raise KafkarnnError(f"unknown feature {args.feature!r}: choose from {', '.join(FEATURES)}")
    chosen = parse_unit(args.unit) if args.unit is not None else None
    model, vocab, meta, run = _load(args)
    if chosen is not None:
        layer, unit = chosen
        if not (layer < len(model.cells) and unit < model.spec.hidden):
            raise KafkarnnError(f"--unit {args.unit}: run {run.name} has layers 0–{len(model.cells) - 1} "
                                f"of units 0–{model.spec.hidden - 1}")
    if args.text is not None:
        text, where = read_text_file(args.text)[:INSPECT_MAX_CHARS], args.text
    else:
        full = validation_text(run)
        start = full.find("\n", 0, 200) + 1                  # from a line's start, as the monitor
        text, where = full[start:start + inside.PASSAGE_CHARS], f"run {run.name}'s validation text"
    if len(text) < 2:
        raise KafkarnnError(f"{where} is too short to inspect: it needs at least two characters")
    probe = inside.probe_text(model, vocab, text, int(meta["config"]["seq_len"]))
    result = inside.look(probe)
    if args.feature is not None:
        if args.feature not in result.best:
            raise KafkarnnError(f"feature {args.feature} does not vary on {where}: no unit can track it")
        pick = result.best[args.feature]
    elif chosen is not None:
        pick = {"layer": chosen[0], "unit": chosen[1], "state": "h"}
    elif result.units:
        pick = result.units[0]
    else:
        pick = {"layer": 0, "unit": 0, "state": "h"}
    if args.json:
        print(json.dumps(dict(result.to_json(), run=run.name, iteration=meta.get("iteration"),
                              shown={k: pick[k] for k in ("layer", "unit", "state")}), indent=1))
        return 0
    console = _console()
    console.print(Text(f"run {run.name} · iteration {meta.get('iteration', '?')} · "
                       f"{model.spec.cell} · {len(text):,} characters of {where}", "bold"))
    values = inside.unit_values(result.trace, pick["layer"], pick["unit"], pick["state"])
    console.print(Text(f"layer {pick['layer']} unit {pick['unit']} ({pick['state']}) on the text:", "dim"))
    console.print(activation_text(text, values, console.width, max_lines=SHOWN_LINES))
    console.print(activation_legend())
    table = Table(title="the unit that tracks each feature best", title_justify="left")
    for col in ("feature", "layer", "unit", "state", "correlation"):
        table.add_column(col, justify="right" if col != "feature" else "left")
    for feature, u in result.best.items():
        table.add_row(feature, str(u["layer"]), str(u["unit"]), u["state"], f"{u['correlation']:+.3f}")
    console.print(table)
    g = result.gradient_through_time
    if g.shape[1]:
        chart, lo, hi = log_rows([(f"layer {l}", list(row)) for l, row in enumerate(g)],
                                 min(console.width, 80))
        console.print(Text(f"gradient through time ‖∂L_t/∂h_(t−k)‖, k = 0 … {g.shape[1] - 1} "
                           f"(log scale ▁ {lo:.1e} … █ {hi:.1e}):", "dim"))
        console.print(chart)
        note = model.cells[0].through_time_note                # what the cell's gradient goes through
        if note:
            console.print(Text(note, "dim"))
    return 0


def cmd_score(args) -> int:
    from rich.text import Text

    from kafkarnn.pictures import surprise_legend, surprise_text
    from kafkarnn.train.scoring import score_text

    text = read_text_file(args.file)
    model, vocab, meta, run = _load(args)
    score = score_text(model, vocab, text)
    if args.json:
        print(json.dumps(score.to_json()))
        return 0
    console = _console()
    console.print(Text.assemble((f"{score.nats_per_char:.4f}", "bold"), " nats/char · ",
                                (f"{score.bits_per_char:.4f}", "bold"), " bits/char · perplexity ",
                                (f"{score.perplexity:.2f}", "bold"),
                                f" · {score.chars:,} characters predicted by run {run.name} "
                                f"(iteration {meta.get('iteration', '?')})"))
    shown = text[:SCORE_SHOWN_CHARS]
    console.print(surprise_text(shown, score.surprise[:len(shown)]))
    if len(text) > len(shown):
        console.print(Text(f"(the first {len(shown):,} of {len(text):,} characters shown)", "dim"))
    console.print(surprise_legend())
    sys.stdout.flush()
    return 0
