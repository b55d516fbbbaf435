"""The seed algorithm (min-char-rnn) written out plainly, as the baseline kafkarnn is measured against.

One-hot column vectors, column-vector matmuls `np.dot(Wxh, x)`, a Python loop over the timesteps
forward and backward, float64, one stream, the loss summed over the sequence, Adagrad (lr 0.1),
every gradient entry clipped to ±5 outside the loss function, and the smoothed loss:

    h_t = tanh(Wxh·x_t + Whh·h_{t-1} + bh)
    y_t = Why·h_t + by
    p_t = exp(y_t) / Σ exp(y_t)              (the seed's softmax: no max-shift, as the original)
    loss = -Σ_t log p_t[target_t]

Shapes are the seed's: Wxh (H, V), Whh (H, H), Why (V, H), bh (H, 1), by (V, 1), h (H, 1).
Unlike the seed, the text is turned into ids once (not 25 characters per iteration), nothing is
sampled during training, and the loop stops after a time or an iteration count.

Run as a script it trains for --seconds and reports chars/s and the validation loss (the last 10%
of the corpus, the same split kafkarnn uses).
"""

from __future__ import annotations

import sys

from common import early_threads

early_threads(sys.argv)              # before NumPy loads

import argparse                      # noqa: E402
import math                          # noqa: E402
import time                          # noqa: E402
from dataclasses import dataclass    # noqa: E402

import numpy as np                   # noqa: E402

import common                        # noqa: E402

NAMES = ("Wxh", "Whh", "Why", "bh", "by")
HIDDEN, SEQ_LENGTH, LEARNING_RATE, CLIP = 100, 25, 0.1, 5.0   # the seed's hyperparameters


def init_params(vocab_size: int, hidden: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The seed's initial weights: randn·0.01 matrices (drawn in this order), zero biases."""
    return {"Wxh": rng.standard_normal((hidden, vocab_size)) * 0.01,   # input to hidden
            "Whh": rng.standard_normal((hidden, hidden)) * 0.01,       # hidden to hidden
            "Why": rng.standard_normal((vocab_size, hidden)) * 0.01,   # hidden to output
            "bh": np.zeros((hidden, 1)),                               # hidden bias
            "by": np.zeros((vocab_size, 1))}                           # output bias


def loss_fun(inputs, targets, hprev, params):
    """Forward and backward over one sequence.

    inputs, targets: lists of ids; hprev: (H, 1) hidden state before the first input.
    Returns (summed loss in nats, gradients keyed like params, last hidden state (H, 1)).
    """
    Wxh, Whh, Why, bh, by = (params[k] for k in NAMES)
    V, T = Wxh.shape[1], len(inputs)
    xs, hs, ps = [], [hprev], []           # hs[t + 1] is h_t; hs[0] is h_{-1}
    loss = 0.0
    for t in range(T):
        x = np.zeros((V, 1))
        x[inputs[t]] = 1.0                                           # one-hot input
        h = np.tanh(np.dot(Wxh, x) + np.dot(Whh, hs[-1]) + bh)       # hidden state
        y = np.dot(Why, h) + by                                      # unnormalised log-probabilities
        e = np.exp(y)
        p = e / np.sum(e)                                            # softmax
        loss += -math.log(p[targets[t], 0])                          # cross-entropy
        xs.append(x)
        hs.append(h)
        ps.append(p)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    dhnext = np.zeros_like(hprev)
    for t in reversed(range(T)):
        dy = ps[t].copy()
        dy[targets[t]] -= 1.0                                        # softmax + cross-entropy
        grads["Why"] += np.dot(dy, hs[t + 1].T)
        grads["by"] += dy
        dh = np.dot(Why.T, dy) + dhnext                              # backprop into h
        dhraw = (1.0 - hs[t + 1] * hs[t + 1]) * dh                   # backprop through tanh
        grads["bh"] += dhraw
        grads["Wxh"] += np.dot(dhraw, xs[t].T)
        grads["Whh"] += np.dot(dhraw, hs[t].T)
        dhnext = np.dot(Whh.T, dhraw)                                # backprop into h_{t-1}
    return loss, grads, hs[-1]


@dataclass
class SeedState:
    """Everything the training loop carries from one call to the next."""
    params: dict
    mem: dict                 # Adagrad memories
    hprev: np.ndarray         # (H, 1)
    p: int = 0                # data pointer
    n: int = 0                # iterations so far
    smooth_loss: float = 0.0  # per sequence, like the seed
    chars: int = 0            # characters trained on


def new_state(vocab_size: int, hidden: int = HIDDEN, seq_length: int = SEQ_LENGTH,
              seed: int = 0) -> SeedState:
    params = init_params(vocab_size, hidden, np.random.default_rng(seed))
    return SeedState(params=params, mem={k: np.zeros_like(v) for k, v in params.items()},
                     hprev=np.zeros((hidden, 1)), smooth_loss=-math.log(1.0 / vocab_size) * seq_length)


def adagrad_update(params, grads, mem, lr: float = LEARNING_RATE, clip: float = CLIP) -> None:
    """Clip every gradient entry to ±clip, then one Adagrad step, in place."""
    for k in NAMES:
        g = grads[k]
        np.clip(g, -clip, clip, out=g)                               # mitigate exploding gradients
        mem[k] += g * g
        params[k] += -lr * g / np.sqrt(mem[k] + 1e-8)                # adagrad update


def train(state: SeedState, data, *, seq_length: int = SEQ_LENGTH, lr: float = LEARNING_RATE,
          clip: float = CLIP,
          seconds: float | None = None, iters: int | None = None) -> int:
    """The seed's loop, run for `seconds` or `iters` (whichever comes first). Returns characters trained."""
    end = time.perf_counter() + seconds if seconds is not None else math.inf
    done, start_chars = 0, state.chars
    while (iters is None or done < iters) and time.perf_counter() < end:
        if state.p + seq_length + 1 >= len(data) or state.n == 0:
            state.hprev = np.zeros_like(state.hprev)                 # reset memory
            state.p = 0                                              # go from the start of the data
        inputs = data[state.p:state.p + seq_length]
        targets = data[state.p + 1:state.p + seq_length + 1]
        loss, grads, state.hprev = loss_fun(inputs, targets, state.hprev, state.params)
        state.smooth_loss = state.smooth_loss * 0.999 + loss * 0.001
        adagrad_update(state.params, grads, state.mem, lr, clip)
        state.p += seq_length
        state.n += 1
        state.chars += seq_length
        done += 1
    return state.chars - start_chars


def val_loss(params, data) -> float:
    """Mean nats per character over `data` (ids), one pass from h = 0, forward only."""
    Wxh, Whh, Why, bh, by = (params[k] for k in NAMES)
    h = np.zeros((Whh.shape[0], 1))
    total = 0.0
    for t in range(len(data) - 1):
        h = np.tanh(Wxh[:, data[t]:data[t] + 1] + np.dot(Whh, h) + bh)
        y = np.dot(Why, h) + by
        ymax = y.max()
        total += math.log(np.sum(np.exp(y - ymax))) + ymax - y[data[t + 1], 0]
    return total / (len(data) - 1)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_args(ap)
    ap.add_argument("--seconds", type=float, default=300.0, help="training time (default 300)")
    ap.add_argument("--eval-every", type=float, default=15.0, help="seconds of training between validations")
    ap.add_argument("--seed", type=int, default=0, help="initial weights (default 0)")
    args = ap.parse_args(argv)
    if args.quick:
        args.seconds, args.eval_every = 2.0, 1.0
    text = args.corpus.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
    chars = sorted(set(text))
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    ids = [char_to_ix[ch] for ch in text]
    cut = len(ids) - round(len(ids) * 0.1)                            # kafkarnn's split
    train_ids, val_ids = ids[:cut], ids[cut:]
    st = new_state(len(chars), seed=args.seed)
    print(f"seed baseline: {len(text):,} characters, vocabulary {len(chars)}, {common.blas_summary()}")
    rows, best, trained = [], math.inf, 0.0
    print(HEADER)
    while trained < args.seconds - 1e-9:
        span = min(args.eval_every, args.seconds - trained)
        t0 = time.perf_counter()
        n = train(st, train_ids, seconds=span)
        dt = time.perf_counter() - t0
        trained += dt
        v = val_loss(st.params, val_ids)
        best = min(best, v)
        rows.append({"seconds": trained, "iterations": st.n, "chars_per_s": n / dt,
                     "smooth_loss": st.smooth_loss / 25, "val_loss": v, "best_val": best})
        print(LINE.format(**rows[-1]))
    rate = common.median([r["chars_per_s"] for r in rows])
    print(f"\nmedian {rate:,.0f} chars/s; best validation {best:.4f} nats/char "
          f"({best / math.log(2):.4f} bits/char) after {st.n:,} iterations")
    path = common.write_results("seed_baseline", {
        "corpus": str(args.corpus), "seconds": args.seconds, "seed": args.seed,
        "median_chars_per_s": rate, "best_val_nats": best, "best_val_bits": best / math.log(2),
        "iterations": st.n, "history": rows}, args.out)
    print(f"wrote {path}")


HEADER = f"{'train s':>8}  {'iter':>8}  {'chars/s':>9}  {'smooth/char':>11}  {'val nats':>8}  {'best':>8}"
LINE = ("{seconds:8.1f}  {iterations:8,}  {chars_per_s:9,.0f}  {smooth_loss:11.4f}  {val_loss:8.4f}  "
        "{best_val:8.4f}")

if __name__ == "__main__":
    main()
