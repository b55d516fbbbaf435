"""Gradient through time: how strongly the loss at step s still depends on the state k steps back.

For every layer l and every k = 0 … T−1 the mean, over streams b and loss steps s with s−k ≥ 0,
of the norm of the gradient of that step's own loss with respect to the state k steps before:

    GTT^l[k] = mean_{b, s ≥ k} ‖∂L_s/∂h^l_{s−k}‖₂,     L_s = −log p_s[target_s]  (one character)

It is the picture of vanishing gradients: in a vanilla rnn the norm falls off geometrically with
k; an LSTM's cell and a GRU's update gate carry it much further. Evaluation mode: no dropout and
no DropConnect. For an LSTM, ∂/∂h holds the cell c fixed (the state is the pair (h, c)).
In blocks (engine/blocks.py), h^l is still the cell's state; within a step the gradient also
goes through each block's MLP, norms and residual paths (blocks.BlockBack), every layer's output
reaching the top directly along the residual stream.

How: one forward pass (the model's own), then one backward pass in which every (source step s,
stream b) pair is its own column: its gradient enters at the top layer at step s,
∂L_s/∂h^top_s = Whyᵀ(p_s − onehot(target_s)), and is carried back through the recurrences by
each cell's own `back` (its backward written out again for a set of columns, in the cell's
module; training's own loops are left as they are; finite-difference tests hold these to the
maths). Going back from s = T−1, a column
joins when the pass reaches its source step, so at step t only the sources s ≥ t are carried:
T(T+1)/2 columns·steps per stream, not T². The columns are rows here, (sources, streams,
features), so the live ones are a contiguous prefix. Choosing m evenly spaced source steps
(`sources`) brings the cost down to about m/T of that. In float32 the norms fall below the
smallest number long before k = T−1 in an rnn; `rescale` keeps them exact by powers of two.

API
    source_steps(T, sources=None) -> the source steps, descending (m,)
    gradient_through_time(model, inputs, targets, state=None, sources=None) -> (L, T) float64
    state_gradients(model, inputs, targets, state=None, sources=None)
        -> (grads (L, m, T, B, H), steps (m,)): grads[l, j, t, b] = ∂L_{steps[j]}/∂h^l_t of
           stream b, zero where t > steps[j]; every vector itself, for small models and tests
"""

from __future__ import annotations

import numpy as np

from kafkarnn.engine.model import CharModel, log_softmax_nll
from kafkarnn.engine.probe import run


def source_steps(T: int, sources=None) -> np.ndarray:
    """The loss steps whose gradients are followed back, in descending order: all T (None), m
    evenly spaced ones ending at T-1 (an int m), or the given steps (a sequence)."""
    if sources is None or (isinstance(sources, (int, np.integer)) and sources >= T):
        return np.arange(T - 1, -1, -1)
    if isinstance(sources, (int, np.integer)):
        m = max(int(sources), 1)
        return T - 1 - (np.arange(m) * T) // m              # T-1, then every T/m steps back
    steps = np.unique(np.asarray(sources, dtype=int))[::-1]
    if len(steps) and (steps[0] >= T or steps[-1] < 0):
        raise ValueError(f"source steps must lie in 0 … {T - 1}")
    return steps


RESCALE_EVERY = 4              # steps between checks of each column's magnitude
RESCALE_BITS = 64             # a column is scaled by 2^±64 once its largest entry passes 2^∓64


def rescale(arrays: list[np.ndarray], exps: np.ndarray) -> None:
    """Keep every column's numbers far from float32's underflow (and overflow): a column whose
    largest entry, over all layers, falls below 2^-64 is multiplied by 2^64 (above 2^64, by
    2^-64), exactly, since a power of two, and exps (live, B) counts it: stored = true · 2^exps.
    Vanishing gradients would otherwise turn denormal, then zero, long before k = T-1."""
    peak = np.max([np.abs(a).max(axis=2) for a in arrays], axis=0)       # (live, B)
    up = (peak < 2.0 ** -RESCALE_BITS) & (peak > 0)
    down = peak > 2.0 ** RESCALE_BITS
    if up.any() or down.any():
        e = RESCALE_BITS * (up.astype(np.int64) - down)
        factor = np.ldexp(1.0, e)[..., None].astype(arrays[0].dtype)
        for a in arrays:
            a *= factor
        exps += e


def backward_through_time(model: CharModel, inputs, targets, state, steps, visit) -> None:
    """The pass in the module docstring. visit(l, t, dh, exps) sees, at every step t from steps[0]
    down to 0 and every layer from the top down, dh (live, B, H) = ∂L_{steps[j]}/∂h^l_t · 2^exps[j, b]
    for j < live, the sources s ≥ t (views, valid during the call; exps (live, B) is mostly 0,
    see `rescale`)."""
    inputs, targets = np.asarray(inputs, dtype=np.intp), np.asarray(targets, dtype=np.intp)
    T, B = inputs.shape
    state = model.zero_state(B) if state is None else state
    m, top = len(steps), len(model.cells) - 1
    if m == 0:
        return
    logits, recs, _ = run(model, inputs, state)
    e, norm, _, picks = log_softmax_nll(logits, targets.reshape(-1),
                                        np.ones(len(logits), model.dtype))
    dy = e / norm
    dy.reshape(-1)[picks] -= 1.0                             # ∂L_s/∂y_s = p_s - onehot(target_s)
    enter = (dy.T @ model.params["Why"]).reshape(T, B, -1)   # ∂L_s/∂h^top_s, (T, B, H)
    if model.blocks:                                         # ∂L_s/∂v^top_s, through the last norm
        spare = np.empty((2, model.spec.hidden), model.dtype)
        enter = model.top_norm.backward(enter.reshape(T * B, -1).T, model.params["gamma"], *spare)
        enter = enter.T.reshape(T, B, -1).copy()
        blocks = [b.back(model.layer_params[l], B) for l, b in enumerate(model.blocks)]
    backs = [cell.back(model.layer_params[l], rec, m)
             for l, (cell, rec) in enumerate(zip(model.cells, recs))]
    dh = [np.zeros((m, B, model.spec.hidden), model.dtype) for _ in model.cells]
    dv = [np.zeros_like(d) for d in dh] if model.blocks else []    # ∂L/∂v^l_t, within step t
    exps = np.zeros((m, B), dtype=np.int64)
    live = 0                                                 # sources joined so far
    for t in range(steps[0], -1, -1):
        if dv:
            dv[top][:live] = 0.0                             # the top's output feeds no later step
        if live < m and steps[live] == t:
            (dv or dh)[top][live] = enter[t]                 # the column of source t joins
            live += 1
        if (steps[0] - t) % RESCALE_EVERY == RESCALE_EVERY - 1:
            rescale([a[:live] for a in dh + dv + [c for b in backs for c in b.carried]], exps[:live])
        for l in range(top, -1, -1):
            if dv:                                           # through the block: h^l_t feeds v^l_t
                dr = blocks[l].output(t, dv[l][:live])
                dh[l][:live] += dr
            visit(l, t, dh[l][:live], exps[:live])
            dx = backs[l].step(t, dh[l][:live])
            if l > 0:                                        # into the layer below, at step t
                Wx = model.layer_params[l][model.cells[l].input_keys[0]]
                da = (dx.reshape(-1, dx.shape[2]) @ Wx).reshape(live, B, -1)
                if dv:                                       # v^(l−1)_t = u^l_t: its norm, its residual
                    dv[l - 1][:live] = blocks[l].input(t, da, dr)
                else:
                    dh[l - 1][:live] += da


def gradient_through_time(model: CharModel, inputs, targets, state=None, sources=None) -> np.ndarray:
    """GTT^l[k] of the module docstring for inputs and targets (T, B): (L, T) float64. With
    `sources` (see source_steps) the mean is over those loss steps only."""
    T, B = np.shape(inputs)
    steps = source_steps(T, sources)
    total = np.zeros((len(model.cells), T))

    def visit(l, t, dh, exps):
        norms = np.sqrt(np.einsum("nbh,nbh->nb", dh, dh, dtype=np.float64))   # (live, B)
        total[l, steps[:len(dh)] - t] += np.ldexp(norms, -exps).sum(axis=1)   # one k per source

    backward_through_time(model, inputs, targets, state, steps, visit)
    count = B * (steps[:, None] >= np.arange(T)).sum(axis=0)     # pairs (s, b) with s - k ≥ 0
    return total / np.maximum(count, 1)


def state_gradients(model: CharModel, inputs, targets, state=None, sources=None):
    """Every ∂L_s/∂h^l_t itself (module docstring): for small models and for tests."""
    T, B = np.shape(inputs)
    steps = source_steps(T, sources)
    out = np.zeros((len(model.cells), len(steps), T, B, model.spec.hidden))

    def visit(l, t, dh, exps):
        out[l, :len(dh), t] = np.ldexp(dh.astype(np.float64), -exps[..., None])

    backward_through_time(model, inputs, targets, state, steps, visit)
    return out, steps
