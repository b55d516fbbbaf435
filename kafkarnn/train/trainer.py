"""The trainer: one model, its optimizer and B streams through the training text.

`step()` is one truncated-BPTT update. Everything a step depends on (parameters, optimizer
moments, each stream's hidden state and position, the RNG, the iteration) is exported by
`state_arrays()` / `state_meta()` and restored by `restore()`, so a resumed run continues
bit for bit.

The weights a run is known by are the validated ones (`validated_weights`): the training weights
themselves, or with `average = "ema"`/`"tail"` their average, or with the schedule-free optimizer
its average x. Validation, samples, best.npz, the checkpoint's `param/*` and everything that
reads a saved model use those; the weights the gradient is taken at are kept as `train/params`.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from kafkarnn.engine.model import CharModel, ModelSpec, ParamDict
from kafkarnn.engine.optim import OPTIMIZERS, TailAverage, WeightAverage
from kafkarnn.engine.streams import StreamGroups, groups_for
from kafkarnn.engine.vocab import Vocab
from kafkarnn.errors import KafkarnnError
from kafkarnn.train.clipping import ClipStats, Clipping, clip  # noqa: F401  (ClipStats: re-exported)
from kafkarnn.train.config import Config
from kafkarnn.train.generation import generate
from kafkarnn.train.meta_check import checked_meta
from kafkarnn.train.schedule import dropout_rates, learning_rate, restarting, teacher_alpha
from kafkarnn.train.scoring import validation_loss
from kafkarnn.train.teacher import teacher_for
from kafkarnn.train.threads import one_blas_thread, usable_cores

MAX_BAD_STEPS = 5             # consecutive non-finite steps before training stops


class TrainingDiverged(KafkarnnError):
    """The loss or gradients stayed NaN/inf: training cannot go on from here."""


def build_model(cfg: Config, vocab_size: int) -> CharModel:
    return CharModel(ModelSpec(vocab_size=vocab_size, hidden=cfg.hidden, layers=cfg.layers,
                               cell=cfg.model, dropout=cfg.dropout, weight_drop=cfg.weight_drop,
                               dtype=cfg.dtype, block=cfg.block, mlp_ratio=cfg.mlp_ratio))


def make_optimizer(cfg: Config, model: CharModel):
    if cfg.optimizer in ("adam", "sfadamw"):
        mask = model.matrix_mask() if cfg.weight_decay else None
        return OPTIMIZERS[cfg.optimizer](model.params.flat, weight_decay=cfg.weight_decay,
                                         decay_mask=mask)
    return OPTIMIZERS["adagrad"](model.params.flat)


class Trainer:
    def __init__(self, cfg: Config, vocab: Vocab, train: np.ndarray, val: np.ndarray, teacher_cache=None):
        self.cfg, self.vocab, self.train, self.val = cfg, vocab, train, val
        B, T = cfg.batch, cfg.seq_len
        self.region = len(train) // B             # stream b reads train[b·region : (b+1)·region]
        if self.region < T + 2:
            raise KafkarnnError(
                f"the training text ({len(train)} characters) is too short for --batch {B} "
                f"--seq-len {T}: it needs at least {B * (T + 2)}; use a smaller batch or seq-len")
        self.model = build_model(cfg, len(vocab))
        self.rng = np.random.default_rng(cfg.seed)     # initial weights, then dropout masks
        self.model.init(self.rng, cfg.init, cfg.embed_init)
        one_blas_thread()       # threads share stream groups instead: the bits never depend on them
        self.groups = StreamGroups(self.model, cfg.groups or groups_for(B, cfg.hidden, usable_cores()))
        self.opt = make_optimizer(cfg, self.model)
        self.teacher = teacher_for(cfg, train, len(vocab), self.region, teacher_cache)   # None: the text alone
        self.average = (WeightAverage(self.learned_weights(), cfg.ema_beta) if cfg.average == "ema" else
                        TailAverage(self.learned_weights(), cfg.tail_eta) if cfg.average == "tail" else None)
        self.state = self.model.zero_state(B)
        self.position = 0                              # offset of every stream within its region
        self.iteration = 0
        self.chars = 0                                 # training characters consumed
        self.smooth_loss = math.log(len(vocab))        # the seed's starting guess, per character
        self.bad_steps = 0                             # consecutive non-finite steps
        self.decay: tuple[int, int] | None = None      # a timed budget's decay, once it began,
        self.cooling = False                           # or a --cooldown's (schedule.cooldown)
        # column b of the grid is stream b's region, so its next T+1 characters are
        # grid[position : position+T+1, b]: a view, no index arithmetic per step
        self.grid = train[:B * self.region].reshape(B, self.region).T
        self._ones = np.ones(self.model.size, dtype=self.model.dtype)
        self._grads = self.model.new_grads(zero=False)  # written over by every step
        self.clipping = Clipping()                     # this process's steps, not checkpointed

    # -- one update ---------------------------------------------------------------------------

    def lr_at(self, it: int) -> float:
        return learning_rate(self.cfg, it, self.decay)

    def teacher_at(self, it: int) -> float:       # schedule.teacher_alpha with the run's decay
        return teacher_alpha(self.cfg, it, self.decay)

    def dropout_at(self, it: int) -> tuple[float, float]:     # schedule.dropout_rates
        return dropout_rates(self.cfg, it)

    def shown_dropout(self) -> tuple[str, int]:
        """The regulariser shown (dropout, or DropConnect when alone) and its place in `dropout_at`."""
        return ("dropout", 0) if self.cfg.dropout > 0 or not self.cfg.weight_drop else ("DropConnect", 1)

    def rising_dropout(self) -> tuple[str, float, float] | None:
        """(its name, the next step's rate, the run's) of the shown regulariser while it rises."""
        name, k = self.shown_dropout()
        now, rate = self.dropout_at(self.iteration)[k], (self.cfg.dropout, self.cfg.weight_drop)[k]
        return (name, now, rate) if now < rate else None

    def begin_cooldown(self, decay: tuple[int, int]) -> int:
        """Decay from here as a cooldown (schedule.cooldown's (start, steps)), marked so that
        every checkpoint from now on keeps it; returns the iteration it ends at."""
        self.decay, self.cooling = decay, True
        return sum(decay)

    def next_batch(self):
        """Inputs and targets (T, B). All streams move together, so they all reach their regions'
        end at once, and restart at 0 with h = 0."""
        T, p = self.cfg.seq_len, self.position
        if self._wraps():
            p = 0
            for s in self.state:
                s[...] = 0.0
        restart = restarting(self.cfg, self.iteration)
        if restart:                                # no fancy-index writes on steps without one
            for s in self.state:
                s[:, :, restart] = 0.0
        ids = self.grid[p:p + T + 1].astype(np.intp)    # (T+1, B)
        self.position = p + T
        return ids[:-1], ids[1:]                   # targets are the inputs one character on

    def _wraps(self) -> bool:
        """Whether the next step starts the streams over: the seed's `p+seq_length+1 >= len(data)`."""
        return self.position >= self.region - self.cfg.seq_len - 1

    def upcoming_batch(self, streams: int | None = None):
        """The inputs and targets (T, S) and the state the next step will read, for S of the B
        streams spread evenly (all if None), as copies; the step is not taken."""
        B, T = self.cfg.batch, self.cfg.seq_len
        cols = np.unique(np.linspace(0, B - 1, min(streams or B, B)).round().astype(int))
        wraps = self._wraps()
        p = 0 if wraps else self.position
        ids = self.grid[p:p + T + 1, cols].astype(np.intp)
        state = [np.zeros_like(s[:, :, cols]) if wraps else s[:, :, cols] for s in self.state]
        restart = np.isin(cols, restarting(self.cfg, self.iteration))
        for s in state:
            s[:, :, restart] = 0.0
        return ids[:-1], ids[1:], state                # fancy indexing made copies

    def _finite(self, v: np.ndarray) -> bool:
        """No NaN or inf in v: one sum (a product with ones, faster than np.sum at batch 1) sees any."""
        return math.isfinite(float(np.dot(v, self._ones)))

    def step(self) -> float:
        """One truncated-BPTT update. Returns the loss in nats per character (NaN if skipped)."""
        c = self.cfg
        inputs, targets = self.next_batch()
        if self.iteration <= c.dropout_ramp:           # a function of the iteration: resumes exactly
            self.groups.set_dropout(*self.dropout_at(self.iteration))   # (after it: the built rates)
        rng = self.rng if c.dropout > 0 or c.weight_drop > 0 else None
        teacher = self.teacher and (self.teacher_at(self.iteration),     # (α, q) this step
                                    self.teacher.batch(self.position - c.seq_len, c.seq_len))
        loss, grads, new_state = self.groups.loss_and_grads(inputs, targets, self.state, rng,
                                                            c.reduction, self._grads, teacher)
        if not (math.isfinite(loss) and self._finite(grads.flat)):
            self.bad_steps += 1                        # skip: never let a NaN reach the weights
            self.state = self.model.zero_state(c.batch)
            if self.bad_steps >= MAX_BAD_STEPS:
                raise TrainingDiverged(
                    f"training diverged: the loss was not finite for {self.bad_steps} steps in a row "
                    f"at iteration {self.iteration}; try a lower --lr (the last good checkpoint is kept)")
            return float("nan")
        self.bad_steps = 0
        self._clip(grads.flat)
        self.opt.step(self.model.params.flat, grads.flat, self.lr_at(self.iteration))
        if not self._finite(self.model.params.flat):        # finite gradients, yet the
            self.bad_steps = MAX_BAD_STEPS                  # update overflowed: nothing to go on from
            raise TrainingDiverged(
                f"training diverged: the parameters overflowed to inf or NaN at iteration "
                f"{self.iteration}; try a lower --lr or --weight-decay (the last good checkpoint is kept)")
        if self.average is not None:
            self.average.update(self.learned_weights())
        self.state = new_state
        self.iteration += 1
        n = c.batch * c.seq_len
        self.chars += n
        keep = 0.999 ** (n / 25)                   # the seed's 0.999 per 25 characters
        self.smooth_loss = keep * self.smooth_loss + (1 - keep) * loss
        return loss

    def _clip(self, g: np.ndarray) -> None:
        clip(g, self.cfg.clip, self.cfg.clip_norm, self.clipping)

    def clip_stats(self) -> ClipStats:
        """This process's gradient norms and clipping, frozen (between steps, from its thread)."""
        return self.clipping.stats()

    # -- the validated weights ----------------------------------------------------------------

    def learned_weights(self) -> np.ndarray:
        """What the optimizer learned: schedule-free's average x, else the parameters."""
        return getattr(self.opt, "validated", self.model.params.flat)

    def validated_weights(self) -> np.ndarray:
        """The weights validated, saved as best and sampled from (a live vector, not a copy)."""
        return self.average.validated if self.average is not None else self.learned_weights()

    def weights_name(self) -> str:
        """Which weights those are, in a few words (the monitor and the progress line say it)."""
        return self.cfg.weights()

    @contextlib.contextmanager
    def validated(self):
        """Within the block the model holds the validated weights; after it, the training ones
        again, bit for bit (call it between steps, from the thread that trains)."""
        weights, params = self.validated_weights(), self.model.params.flat
        if weights is params:
            yield self.model
            return
        kept = params.copy()
        params[...] = weights
        try:
            yield self.model
        finally:
            params[...] = kept

    # -- evaluation and sampling --------------------------------------------------------------

    def evaluate(self, subset: bool = True, chunk: int = 256) -> float | None:
        """Mean nats per character of the validated weights over the validation split from zero
        states: its fixed subset when the split is big, else all of it (scoring.validation_loss)."""
        with self.validated():
            return validation_loss(self.groups, self.val, subset, chunk)

    def generate(self, prompt: str, length: int, rng, temperature=1.0, top_k=None):
        """Continue `prompt` from the validated weights; without a prompt, go on from where the
        first stream is in the text. Returns (text, per-character probabilities)."""
        i = min(self.position, len(self.train) - 1)
        stream = ([s[:, :, :1].copy() for s in self.state], int(self.train[i]))
        with self.validated() as model:
            return generate(model, self.vocab, prompt, length, rng, temperature, top_k, stream)

    # -- checkpoint state ---------------------------------------------------------------------

    def _states(self) -> dict[str, dict]:
        """The optimizer's and the average's state by prefix, less the validated vector (it is
        saved once, as `param/*`)."""
        held = self.validated_weights()
        parts = {"opt": self.opt.state, "avg": self.average.state if self.average else {}}
        return {p: {k: v for k, v in s.items() if v is not held} for p, s in parts.items()}

    def state_arrays(self) -> dict[str, np.ndarray]:
        held = self.validated_weights()
        out = {f"param/{k}": v for k, v in ParamDict(self.model.layout, held).items()}
        if held is not self.model.params.flat:
            out["train/params"] = self.model.params.flat
        for prefix, state in self._states().items():
            out.update({f"{prefix}/{k}": np.asarray(v) for k, v in state.items()})
        out.update({f"state/l{l}": s for l, s in enumerate(self.state)})
        out["positions"] = np.full(self.cfg.batch, self.position, dtype=np.int64)   # one per stream
        return out

    def state_meta(self) -> dict:
        return {"iteration": self.iteration, "chars": self.chars, "smooth_loss": self.smooth_loss,
                "rng": self.rng.bit_generator.state, "bad_steps": self.bad_steps,
                **({"decay": list(self.decay)} if self.decay else {}),
                **({"cooldown": True} if self.cooling else {})}

    def restore(self, arrays: dict[str, np.ndarray], meta: dict, where: str) -> None:
        """Load a checkpoint's arrays into this trainer, checking every shape and dtype first."""
        expected = {k: (v.shape, v.dtype) for k, v in self.state_arrays().items()}
        missing = sorted(set(expected) - set(arrays))
        if missing:
            raise KafkarnnError(f"checkpoint {where} lacks {', '.join(missing[:3])}: it does not "
                                "match this run's configuration")
        for k, (shape, dtype) in expected.items():
            a = arrays[k]
            if a.shape != shape or a.dtype != dtype:
                raise KafkarnnError(f"checkpoint {where}: {k} is {a.dtype}{list(a.shape)}, expected "
                                    f"{dtype}{list(shape)} for this run's configuration")
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise KafkarnnError(f"checkpoint {where}: {k} holds NaN or inf values")
        pos = arrays["positions"]                   # shape (B,), checked above
        if (pos < 0).any() or (pos >= self.region).any() or (pos != pos[0]).any():
            raise KafkarnnError(f"checkpoint {where} has out-of-range or unequal stream positions")
        iteration, chars, smooth, bad_steps, rng, decay, cooling = checked_meta(
            self.cfg, self.vocab, arrays, meta, where, MAX_BAD_STEPS)
        held = self.validated_weights()
        for k, v in ParamDict(self.model.layout, held).items():
            v[...] = arrays[f"param/{k}"]
        if held is not self.model.params.flat:
            self.model.params.flat[...] = arrays["train/params"]
        for prefix, state in self._states().items():
            for k in state:
                state[k][...] = arrays[f"{prefix}/{k}"]
        self.state = [arrays[f"state/l{l}"].copy() for l in range(len(self.state))]
        self.position = int(pos[0])
        self.iteration, self.chars, self.smooth_loss = iteration, chars, smooth
        self.bad_steps = bad_steps
        self.rng, self.decay, self.cooling = rng, decay, cooling
