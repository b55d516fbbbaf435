"""The network and counting together: what the n-gram table still adds to a trained network.

On the characters the run's validation predicts, the two models' probabilities are mixed,

    p(c) = λ · p_network(c) + (1 − λ) · p_table(c)

with λ the weight that predicts those characters best, found by EM: each step sets λ to the
mean, over the characters, of the share λ·p_network(c) / p(c) the network had in predicting c.
A weight fitted on the text it is then scored on flatters a little, so it is also fitted on each
half of validation and scored on the other ("cross-fitted"). A mix far below both models says
they err on different characters: the table holds long exact repeats the network has not
learnt, the network what no count can hold.

Read only: nothing here changes a run, and a run's own figures (validation, best.npz, samples)
stay the network's alone.

API
    fit_weight(network_nats, table_nats) -> λ in (0, 1)
    mixed_nats(network_nats, table_nats, λ) -> mean nats per character of the mix
    mix(network_nats, table_nats, order) -> Mixture       (per-character nats, the same characters)
    validation_characters(model, val) -> (network nats (K, L), windows (K, L + 1))
    of_run(run, corpus, val_fraction, baseline, best=True)
        -> (Mixture, checkpoint meta, "best.npz" | "checkpoint.npz")
        (KafkarnnError: no checkpoint, a damaged checkpoint)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kafkarnn.errors import KafkarnnError
from kafkarnn.inspect.inference import load_sampler
from kafkarnn.train import baseline
from kafkarnn.train.scoring import validation_cross_entropy, validation_streams

EM_STEPS = 500          # EM's most steps; it stops sooner once λ moves by less than EM_TOL
EM_TOL = 1e-9


def _log_mix(network_nats: np.ndarray, table_nats: np.ndarray, weight: float) -> np.ndarray:
    """log p(c) of the mix at every character, in log space (a tiny probability stays finite)."""
    return np.logaddexp(np.log(weight) - network_nats, np.log1p(-weight) - table_nats)


def fit_weight(network_nats: np.ndarray, table_nats: np.ndarray) -> float:
    """The λ in (0, 1) that gives the characters the highest mixed probability (EM from ½)."""
    a = np.asarray(network_nats, dtype=np.float64)
    b = np.asarray(table_nats, dtype=np.float64)
    weight = 0.5
    for _ in range(EM_STEPS):
        share = np.exp(np.log(weight) - a - _log_mix(a, b, weight))    # the network's part of p(c)
        new = float(np.clip(share.mean(), 1e-12, 1 - 1e-12))
        if abs(new - weight) < EM_TOL:
            return new
        weight = new
    return weight


def mixed_nats(network_nats: np.ndarray, table_nats: np.ndarray, weight: float) -> float:
    a = np.asarray(network_nats, dtype=np.float64)
    b = np.asarray(table_nats, dtype=np.float64)
    return float(-_log_mix(a, b, weight).mean())


@dataclass(frozen=True)
class Mixture:
    order: int                  # the table's order (the baseline's)
    chars: int                  # characters scored
    network: float              # nats per character of the network alone
    table: float                # … of the table alone
    weight: float               # λ: the network's share of the mix, fitted on all the characters
    nats: float                 # the mix with that λ
    cross_fitted: float         # the mix with λ fitted on the other half, on each half

    def to_json(self) -> dict:
        return {"order": self.order, "chars": self.chars, "network_nats_per_char": self.network,
                "table_nats_per_char": self.table, "weight": self.weight,
                "nats_per_char": self.nats, "cross_fitted_nats_per_char": self.cross_fitted}


def mix(network_nats: np.ndarray, table_nats: np.ndarray, order: int) -> Mixture:
    """The mixture of two models' per-character nats on the same characters (at least two)."""
    a = np.asarray(network_nats, dtype=np.float64).ravel()
    b = np.asarray(table_nats, dtype=np.float64).ravel()
    if a.shape != b.shape or len(a) < 2:
        raise ValueError("mix needs the two models' nats on the same two or more characters")
    weight = fit_weight(a, b)
    h = len(a) // 2
    first, second = fit_weight(a[:h], b[:h]), fit_weight(a[h:], b[h:])
    crossed = (mixed_nats(a[:h], b[:h], second) * h
               + mixed_nats(a[h:], b[h:], first) * (len(a) - h)) / len(a)
    return Mixture(order, len(a), float(a.mean()), float(b.mean()), weight,
                   mixed_nats(a, b, weight), crossed)


def validation_characters(model, val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The network's nats at the characters validation predicts (K, L), and the windows (K, L + 1)
    they are read from, each from its start: a table's nats there are table.nll(windows, n)[:, 1:]."""
    starts, L = validation_streams(len(val))
    predicted = starts[:, None] + 1 + np.arange(L)                    # (K, L): validation's characters
    network = validation_cross_entropy(model, val, per_char=True).surprise[predicted]
    return network, val[starts[:, None] + np.arange(L + 1)]


def of_run(run, corpus, val_fraction: float, base, best: bool = True):
    """The run's network (best.npz, or checkpoint.npz when best is False or there is no best.npz
    yet) mixed with `base`'s table of its `corpus` (the run's, checked by the caller), on the
    characters its validation predicts: (Mixture, the checkpoint's metadata, which checkpoint)."""
    if not run.best_path.exists() and not run.checkpoint_path.exists():
        raise KafkarnnError(f"run {run.name} has no saved network yet to mix with the table")
    best = best and run.best_path.exists()
    sampler = load_sampler(run, best)
    if corpus.vocab != sampler.vocab:
        raise KafkarnnError(f"run {run.name}'s checkpoint has another vocabulary than its text")
    _, val = corpus.split(val_fraction)
    network, windows = validation_characters(sampler.model, val)
    table = baseline.fit(corpus, val_fraction, base.order).nll(windows, base.order)[:, 1:]
    return mix(network, table, base.order), sampler.meta, "best.npz" if best else "checkpoint.npz"
