"""`kafkarnn inspect` and `kafkarnn score`: looking inside a saved model from the shell.

- inspect: which units track which features of a text (the run's validation text, or --text
  FILE), one unit's activation shaded on the text, and the gradient through time per layer
  (train/inside.py on a model loaded like `sample` loads it); --json prints `Inside.to_json()`;
- score: how well the model predicts a file (train/scoring.py, validation's computation), and
  the text shaded by the model's surprise at each character; --json the numbers; --vs-ngram
  shades by the network's advantage over the n-gram baseline of its text (train/baseline.py).

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
    return sampler.model, sampler.vocab, dict(sampler.meta, weights=sampler.weights), run


def _console():
    from rich.console import Console
    return Console(highlight=False)


def cmd_inspect(args) -> int:
    from kafkarnn.inspect import inside
    from kafkarnn.inspect.features import FEATURES

    if args.feature is not None and args.feature not in FEATURES:
        raise KafkarnnError(f"unknown feature {args.feature!r}: choose from {', '.join(FEATURES)}")
    chosen = parse_unit(args.unit) if args.unit is not None else None
    model, vocab, meta, run = _load(args)
    if chosen is not None:
        layer, unit = chosen
        if not (layer < len(model.cells) and unit < model.spec.hidden):
            raise KafkarnnError(f"--unit {args.unit}: run {run.name} has layers 0–{len(model.cells) - 1} "
                                f"of units 0–{model.spec.hidden - 1}")
    text, where = _inspected_text(args, run)
    result = inside.look(inside.probe_text(model, vocab, text, int(meta["config"]["seq_len"])))
    pick = _pick(args, result, chosen, where)
    if args.json:
        print(json.dumps(dict(result.to_json(), run=run.name, iteration=meta.get("iteration"),
                              shown={k: pick[k] for k in ("layer", "unit", "state")}), indent=1))
        return 0
    _print_inspection(f"run {run.name} · iteration {meta.get('iteration', '?')}{meta['weights']} · "
                      f"{model.spec.cell} · {len(text):,} characters of {where}", text, result, pick,
                      model.cells[0].through_time_note)
    return 0


def _inspected_text(args, run) -> tuple[str, str]:
    """`--text FILE`, else the start of the run's validation text; and where it comes from."""
    from kafkarnn.inspect import inside
    from kafkarnn.train.matching import validation_text

    if args.text is not None:
        text, where = read_text_file(args.text)[:INSPECT_MAX_CHARS], args.text
    else:
        full = validation_text(run)
        start = full.find("\n", 0, 200) + 1                  # from a line's start, as the monitor
        text, where = full[start:start + inside.PASSAGE_CHARS], f"run {run.name}'s validation text"
    if len(text) < 2:
        raise KafkarnnError(f"{where} is too short to inspect: it needs at least two characters")
    return text, where


def _pick(args, result, chosen, where) -> dict:
    """The unit to shade the text by: the feature's best, the one asked for, else the first."""
    if args.feature is not None:
        if args.feature not in result.best:
            raise KafkarnnError(f"feature {args.feature} does not vary on {where}: no unit can track it")
        return result.best[args.feature]
    if chosen is not None:
        return {"layer": chosen[0], "unit": chosen[1], "state": "h"}
    return result.units[0] if result.units else {"layer": 0, "unit": 0, "state": "h"}


def _print_inspection(title: str, text: str, result, pick: dict, note: str = "") -> None:
    """The shaded text, the table of features and their units, the gradient through time."""
    from rich.table import Table
    from rich.text import Text

    from kafkarnn.inspect import inside
    from kafkarnn.pictures.text import activation_legend, activation_text, log_rows

    console = _console()
    console.print(Text(title, "bold"))
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
        if note:                                           # what the cell's gradient goes through
            console.print(Text(note, "dim"))


def _versus_ngram(run, vocab, text: str, network):
    """({order, nats_per_char, network_better}, n-gram nats − network nats per character): the
    run's text's n-gram baseline against the network on `text`, where the network predicted."""
    import numpy as np

    from kafkarnn.train import baseline
    from kafkarnn.train.matching import run_corpus
    corpus, cfg = run_corpus(run)
    found = baseline.surprise(run.data_dir, corpus, cfg.val_fraction, vocab.encode(text))
    if found is None:
        raise KafkarnnError(f"run {run.name}'s text is too short for an n-gram baseline")
    base, counted = found
    predicted = np.isfinite(network)                     # the network's first characters are not
    advantage = np.where(predicted, counted - network, np.nan)
    return {"order": base.order, "nats_per_char": float(counted[predicted].mean()),
            "network_better": float((advantage[predicted] > 0).mean())}, advantage


def cmd_score(args) -> int:
    from rich.text import Text

    from kafkarnn.pictures.text import surprise_legend, surprise_text, versus_legend, versus_text
    from kafkarnn.train.scoring import score_text

    text = read_text_file(args.file)
    model, vocab, meta, run = _load(args)
    score = score_text(model, vocab, text)
    versus = _versus_ngram(run, vocab, text, score.surprise) if args.vs_ngram else None
    if args.json:
        print(json.dumps(dict(score.to_json(), **({"ngram": versus[0]} if versus else {}))))
        return 0
    console = _console()
    console.print(Text.assemble((f"{score.nats_per_char:.4f}", "bold"), " nats/char · ",
                                (f"{score.bits_per_char:.4f}", "bold"), " bits/char · perplexity ",
                                (f"{score.perplexity:.2f}", "bold"),
                                f" · {score.chars:,} characters predicted by run {run.name} "
                                f"(iteration {meta.get('iteration', '?')}{meta['weights']})"))
    shown = text[:SCORE_SHOWN_CHARS]
    if versus is not None:
        summary, advantage = versus
        console.print(Text.assemble(f"the {summary['order']}-gram table of its text: ",
                                    (f"{summary['nats_per_char']:.4f}", "bold"), " nats/char; the "
                                    "network predicts better at ", (f"{summary['network_better']:.0%}",
                                                                    "bold"), " of the characters"))
        console.print(versus_text(shown, advantage[:len(shown)]))
    else:
        console.print(surprise_text(shown, score.surprise[:len(shown)]))
    if len(text) > len(shown):
        console.print(Text(f"(the first {len(shown):,} of {len(text):,} characters shown)", "dim"))
    console.print(versus_legend(f"{versus[0]['order']}-gram") if versus else surprise_legend())
    sys.stdout.flush()
    return 0
