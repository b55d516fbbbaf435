"""Using a trained model without its corpus: load a run's checkpoint and generate text."""

from __future__ import annotations

import numpy as np

from kafkarnn.engine.model import CharModel
from kafkarnn.engine.sampling import sample
from kafkarnn.engine.vocab import Vocab
from kafkarnn.errors import KafkarnnError
from kafkarnn.train.checkpoint import load_checkpoint
from kafkarnn.train.config import Config, check
from kafkarnn.train.runs import Run, list_runs


def unknown_chars_message(chars: list[str]) -> str:
    shown = ", ".join(repr(c) for c in chars[:10]) + (" …" if len(chars) > 10 else "")
    return f"the prompt has characters the model never saw: {shown}"


def generate(model: CharModel, vocab: Vocab, prompt: str, length: int, rng,
             temperature: float = 1.0, top_k: int | None = None):
    """Continue `prompt`. Returns (text, per-character probabilities); unknown characters are refused."""
    unknown = vocab.unknown(prompt)
    if unknown:
        raise KafkarnnError(unknown_chars_message(unknown))
    ids, probs = sample(model, vocab.encode(prompt), length, rng, temperature, top_k)
    return vocab.decode(ids), probs


class Sampler:
    """A model and its vocabulary, read from a checkpoint."""

    def __init__(self, model: CharModel, vocab: Vocab, meta: dict):
        self.model, self.vocab, self.meta = model, vocab, meta

    def generate(self, prompt, length, rng, temperature=1.0, top_k=None):
        return generate(self.model, self.vocab, prompt, length, rng, temperature, top_k)


def pick_run(data_dir, name: str | None) -> Run:
    if name is not None:
        run = Run(data_dir, name)
        if not run.path.is_dir():
            raise KafkarnnError(f"no run named {name} in {data_dir} (see `kafkarnn runs`)")
        return run
    runs = [r for r in list_runs(data_dir) if r.get("last_saved")]
    if not runs:
        raise KafkarnnError(f"no saved runs in {data_dir}: train one first with `kafkarnn`")
    latest = max(runs, key=lambda r: r["last_saved"])
    return Run(data_dir, latest["name"])


def load_for_sampling(data_dir, name: str | None, best: bool = False) -> tuple[Sampler, Run]:
    from kafkarnn.train.trainer import build_model
    run = pick_run(data_dir, name)
    path = run.best_path if best else run.checkpoint_path
    if not path.exists():
        what = "best.npz (no validation has finished yet)" if best else "checkpoint.npz"
        raise KafkarnnError(f"run {run.name} has no {what} in {run.path}")
    arrays, meta = load_checkpoint(path)
    try:
        cfg = check(Config.from_dict(meta["config"]))
        vocab = Vocab(meta["vocab"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:   # e.g. "config" not an object
        raise KafkarnnError(f"checkpoint {path} has damaged metadata ({e})") from None
    model = build_model(cfg, len(vocab))
    for k, shape in model.shapes().items():
        a = arrays.get(f"param/{k}")
        if a is None or a.shape != shape or a.dtype.kind != "f" or not np.isfinite(a).all():
            raise KafkarnnError(f"checkpoint {path}: parameter {k} is missing or does not match "
                                f"{cfg.describe()} with {len(vocab)} symbols")
        model.params[k][...] = a
    return Sampler(model, vocab, meta), run
