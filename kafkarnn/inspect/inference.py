"""Using a trained model without its corpus: load a run's checkpoint and generate text."""

from __future__ import annotations

import numpy as np

from kafkarnn.engine.model import CharModel
from kafkarnn.engine.vocab import Vocab
from kafkarnn.errors import KafkarnnError
from kafkarnn.runs.checkpoint import load_checkpoint
from kafkarnn.train.config import Config, check
from kafkarnn.train.generation import generate
from kafkarnn.runs.listing import list_runs
from kafkarnn.runs.folder import Run
from kafkarnn.train.trainer import build_model


class Sampler:
    """A model and its vocabulary, read from a checkpoint, and the first stream's saved state."""

    def __init__(self, model: CharModel, vocab: Vocab, meta: dict, state=None):
        self.model, self.vocab, self.meta = model, vocab, meta
        # the checkpoint does not hold the text, so the stream's next character is unknown: a
        # space (or the first symbol) stands in for it
        start = vocab.index.get(" ", 0)
        self.stream = None if state is None else (state, int(start))

    @property
    def weights(self) -> str:
        """", the EMA 0.99 weights" and the like: what a message adds when the checkpoint's
        parameters are an average (or schedule-free's x), not the weights as trained."""
        name = Config.from_dict(self.meta.get("config", {})).weights()
        return "" if name == "as trained" else f", the {name} weights"

    def generate(self, prompt, length, rng, temperature=1.0, top_k=None):
        return generate(self.model, self.vocab, prompt, length, rng, temperature, top_k, self.stream)


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
    run = pick_run(data_dir, name)
    return load_sampler(run, best), run


def load_sampler(run: Run, best: bool = False) -> Sampler:
    """The run's checkpoint.npz (best: best.npz) as a Sampler; KafkarnnError if missing or damaged."""
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
    state = []
    for l, zero in enumerate(model.zero_state(1)):          # the first stream's hidden state
        a = arrays.get(f"state/l{l}")
        ok = a is not None and a.ndim == 3 and a.shape[:2] == zero.shape[:2] and a.shape[2] >= 1
        if not ok or a.dtype.kind != "f" or not np.isfinite(a[:, :, :1]).all():
            state = None                                     # then samples start from zeros
            break
        state.append(a[:, :, :1].astype(model.dtype))
    return Sampler(model, vocab, meta, state)
