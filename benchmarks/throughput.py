"""Training throughput: kafkarnn against the seed algorithm, the machine's FLOP ceiling and PyTorch.

(a) seed: the seed baseline (benchmarks/seed_baseline.py) and kafkarnn's `seed` preset on the same
    text, alternating short timed blocks in one process; the median chars/s of each and the ratio.
    Then the maths check: along a `seed`-preset training run, at --check-points points, kafkarnn's
    parameters (the same column layout as the seed's) and hidden state are copied into the baseline,
    and the loss, every gradient, the last hidden state and the Adagrad update must agree to a
    relative 1e-9 (norm-wise: ||a - b|| / max(||a||, ||b||)).
(b) rnn hidden 100, batch 32, seq 25, float32, Adam.
(c) lstm hidden 256 batch 32 seq 64, and lstm hidden 512 batch 32 seq 128, float32, Adam.
    For each: chars/s (median of timed blocks after a warm-up), analytic FLOPs per trained
    character, the float32 GEMM GFLOP/s measured in the same run, the percentage of that ceiling
    reached, and, when torch is importable, the same model in PyTorch and the ratio. Also the
    products-alone bound: the step's matrix products each timed on their own at the engine's
    shapes, summed — the chars/s if nothing else in a step cost anything.
(d) default: the `default` preset as `kafkarnn train` runs it, against the same model as a
    PyTorch user would write it (nn.Embedding 64 → nn.GRU 2×384 with dropout 0.3 → nn.Linear,
    AdamW, clip_grad_norm_ 1); each engine at every thread count from 1 to --threads (default:
    the usable cores), blocks alternating; each at its best count, and the ratio.

`--threads N` sets the BLAS/OpenMP thread count before NumPy loads (compare 1 and 2 threads).
"""

from __future__ import annotations

import sys

from common import early_threads

early_threads(sys.argv)                       # before NumPy loads

import argparse                               # noqa: E402
import os                                     # noqa: E402
import time                                   # noqa: E402

import numpy as np                            # noqa: E402

import common                                 # noqa: E402
import seed_baseline as seed                  # noqa: E402
from kafkarnn.train.config import PRESETS, Config, check  # noqa: E402
from kafkarnn.train.corpus import load_corpus  # noqa: E402
from kafkarnn.train.threads import BlasPool, candidate_counts, usable_cores  # noqa: E402
from kafkarnn.train.trainer import Trainer    # noqa: E402

CONFIGS = {   # name: (cell, hidden, batch, seq_len), all float32 + Adam
    "rnn100": ("rnn", 100, 32, 25),
    "lstm256": ("lstm", 256, 32, 64),
    "lstm512": ("lstm", 512, 32, 128),
}
PRESET_CONFIGS = ("default",)   # whole presets, each engine at its best thread count (d)
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
TOLERANCE = 1e-9


def flops_per_char(cell: str, hidden: int, vocab: int, layers: int = 1) -> int:
    """Matrix-multiply FLOPs to train on one character (elementwise work is not counted).

    forward  = Σ_layers 2·H·(G·H)            recurrence h_{t-1} @ Wh, G gates (rnn 1, gru 3, lstm 4)
             + (layers-1)·2·H·(G·H)          inputs of the layers above the first (layer 0 is a row lookup)
             + 2·H·V                         output projection h @ Why
    training = 3 × forward                   backward does two products per forward product (dW and dx)
    For the rnn: 6H² + 6HV (H 100, V 62: 97,200). For the lstm: 24H² + 6HV (+24H² per extra layer).
    """
    G, H = GATES[cell], hidden
    forward = layers * 2 * H * G * H + (layers - 1) * 2 * H * G * H + 2 * H * vocab
    return 3 * forward


def products_alone(cell: str, H: int, B: int, T: int, V: int, repeats: int = 7) -> dict:
    """The matrix products one training step of this configuration makes, each timed on its own
    at the engine's shapes and operand layouts (engine/model.py, cells.py; median of `repeats`
    samples): what a step would cost if nothing but its products cost anything — the most any
    NumPy engine built on these products could reach. Single-layer rnn or lstm."""
    import numpy as np
    rng = np.random.default_rng(0)
    G, N = GATES[cell] * H, T * B

    def m(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    Wh, WhT, h, d, a, dh = m(G, H), m(H, G), m(H, B), m(G, B), m(G, B), m(H, B)
    Why, WhyT, dy, logits, dtop = m(V, H), m(H, V), m(V, N), m(V, N), m(H, N)
    hs = m(H, N + B)                                  # h_{-1}..h_{T-1}, columns in (t, b) order
    top, prev = hs[:, B:], hs[:, :-B]                 # as Cell.outputs gives them
    dz, onehot, gWh, gWhy, gWx = m(G, N), m(N, V), m(G, H), m(V, H), m(G, V)
    products = [   # (what, call, calls per step, counted in flops_per_char)
        ("recurrence Wh·h", lambda: np.dot(Wh, h, out=a), T, True),
        ("recurrence Whᵀ·dz", lambda: np.dot(WhT, d, out=dh), T, True),
        ("output Why·h", lambda: np.matmul(Why, top, out=logits), 1, True),
        ("output Whyᵀ·dy", lambda: np.matmul(WhyT, dy, out=dtop), 1, True),
        ("dWhy = dy·hᵀ", lambda: np.matmul(dy, top.T, out=gWhy), 1, True),
        ("dWh = dz·hprevᵀ", lambda: np.matmul(dz, prev.T, out=gWh), 1, True),
        ("dWx = dz·onehotᵀ", lambda: np.matmul(dz, onehot, out=gWx), 1, False),
    ]
    seconds = {what: common.median(common.seconds_per_call(call, repeats)) * count
               for what, call, count, _ in products}
    step = sum(seconds.values())
    return {"step_s": step, "chars_per_s": N / step, "per_product_us": {k: v * 1e6 for k, v in seconds.items()},
            "uncounted_s": sum(seconds[w] for w, _, _, counted in products if not counted)}


def rel_err(a, b) -> float:
    """Norm-wise relative error ||a - b|| / max(||a||, ||b||, tiny)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.linalg.norm(a), np.linalg.norm(b), np.finfo(np.float64).tiny)
    return float(np.linalg.norm(a - b) / scale)


# -- (a) the seed ------------------------------------------------------------------------------

def to_seed_layout(params: dict) -> dict:
    """kafkarnn's rnn parameters under the seed's names; both are column form, (out, in), and the
    seed keeps its biases as columns."""
    return {"Wxh": params["l0.Wxh"].copy(), "Whh": params["l0.Whh"].copy(),
            "Why": params["Why"].copy(), "bh": params["l0.bh"][:, None].copy(),
            "by": params["by"][:, None].copy()}


def adagrad_memory(tr: Trainer) -> dict:
    """The Adagrad memory per parameter name: one flat vector laid out like the parameters, or
    one array per parameter ("m/<name>"), whichever the engine keeps."""
    st = tr.opt.state
    if "m" in st:
        return {name: st["m"][a:b].reshape(shape) for name, a, b, shape in tr.model.layout}
    return {k.split("/", 1)[1]: v for k, v in st.items() if k.startswith("m/")}


def maths_check(vocab, train, val, points: int, every: int) -> dict:
    """Compare kafkarnn's seed preset with the baseline at `points` points, `every` steps apart."""
    cfg = PRESETS["seed"]
    tr = Trainer(cfg, vocab, train, val)
    start = seed.init_params(len(vocab), seed.HIDDEN, np.random.default_rng(cfg.seed))
    same_start = all(np.array_equal(start[k], v) for k, v in to_seed_layout(tr.model.params).items())
    worst = dict.fromkeys(("loss", *seed.NAMES, "hlast", "update"), 0.0)
    for _ in range(points):
        # 1) the batch the next step will use, then put the streams back as they were
        position, state = tr.position, [s.copy() for s in tr.state]
        inputs, targets = tr.next_batch()
        hprev = tr.state[0][0].copy()                                 # (H, 1): one stream
        loss_k, grads_k, new_state = tr.model.loss_and_grads(inputs, targets, tr.state, None,
                                                             reduction=cfg.reduction)
        tr.position, tr.state = position, state
        # 2) the baseline from the same parameters, state and characters
        params = to_seed_layout(tr.model.params)
        loss_s, grads_s, hlast = seed.loss_fun(inputs[:, 0].tolist(), targets[:, 0].tolist(),
                                               hprev, params)
        T = len(inputs)
        checks = {"loss": (loss_k * T, loss_s), "hlast": (new_state[0][0], hlast)}
        for k, g in to_seed_layout(grads_k).items():
            checks[k] = (g, grads_s[k])
        # 3) one update each: kafkarnn's step against the seed's clip ±5 + Adagrad lr 0.1
        mem = to_seed_layout(adagrad_memory(tr))
        tr.step()
        seed.adagrad_update(params, {k: g.copy() for k, g in grads_s.items()}, mem)
        after = to_seed_layout(tr.model.params)
        checks["update"] = (np.concatenate([after[k].ravel() for k in seed.NAMES]),
                            np.concatenate([params[k].ravel() for k in seed.NAMES]))
        for k, (a, b) in checks.items():
            worst[k] = max(worst[k], rel_err(a, b))
        for _ in range(every - 1):
            tr.step()
    max_err = max(worst.values())
    return {"points": points, "every": every, "iterations": tr.iteration, "same_start": same_start,
            "max_rel_err": max_err, "rel_err": worst, "tolerance": TOLERANCE,
            "passed": bool(same_start and max_err <= TOLERANCE)}


class SeedBaselineRunner:
    name = "seed baseline"

    def __init__(self, vocab, train):
        self.data = train.tolist()
        self.state = seed.new_state(len(vocab))

    def block(self, seconds):
        t0 = time.perf_counter()
        chars = seed.train(self.state, self.data, seconds=seconds)
        return chars, time.perf_counter() - t0


class KafkarnnRunner:
    name = "kafkarnn"

    def __init__(self, cfg: Config, vocab, train, val):
        self.trainer = Trainer(check(cfg), vocab, train, val)

    def block(self, seconds):
        tr, now = self.trainer, time.perf_counter
        c0, t0 = tr.chars, now()
        end = t0 + seconds
        tr.step()
        while now() < end:
            tr.step()
        return tr.chars - c0, now() - t0


def alternate(runners, rounds: int, seconds: float, warmup: float, settle: float = 0.0):
    """chars/s of each runner per round; the runners take turns, after one warm-up block each.

    `settle` seconds of sleep before each timed block let the other engine's thread pool stop
    spinning (OpenBLAS workers busy-wait for a while after a call, and so do OpenMP's).
    """
    for r in runners:
        r.block(warmup)
    rates = [[] for _ in runners]
    for _ in range(rounds):
        for i, r in enumerate(runners):
            time.sleep(settle)
            chars, dt = r.block(seconds)
            rates[i].append(chars / dt)
    return rates


# -- (b), (c) against the FLOP ceiling and PyTorch -------------------------------------------------

class TorchRunner:
    """The same model in PyTorch: one-hot (or embedding) input, nn.RNN/nn.LSTM/nn.GRU (with the
    config's dropout between layers), a Linear head, cross-entropy, Adam (AdamW with the config's
    weight decay), the config's clip (elementwise, or clip_grad_norm_), B streams carrying their
    state like kafkarnn's."""

    name = "torch"

    def __init__(self, cfg: Config, vocab_size: int, train, input_kind: str, embed: int):
        import torch
        from torch import nn
        self.torch, self.F = torch, torch.nn.functional
        torch.manual_seed(cfg.seed)
        V, H = vocab_size, cfg.hidden
        n_in = V if input_kind == "onehot" else embed
        self.embed = nn.Embedding(V, embed) if input_kind == "embed" else None
        rnn = nn.LSTM if cfg.model == "lstm" else nn.GRU if cfg.model == "gru" else nn.RNN
        self.rnn = rnn(n_in, H, num_layers=cfg.layers,                # (T, B, ·) layout
                       dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.head = nn.Linear(H, V)
        self.params = [*self.rnn.parameters(), *self.head.parameters(),
                       *(self.embed.parameters() if self.embed else [])]
        self.opt = (torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
                    if cfg.weight_decay else torch.optim.Adam(self.params, lr=cfg.lr))
        self.cfg, self.V, self.state = cfg, V, None
        self.train = train.astype(np.int64)
        B, T = cfg.batch, cfg.seq_len
        self.region = len(train) // B
        self.starts = np.arange(B, dtype=np.int64) * self.region
        self.positions = np.zeros(B, dtype=np.int64)
        self.offsets = np.arange(T, dtype=np.int64)[:, None]
        self.chars = 0

    def step(self):
        torch, c = self.torch, self.cfg
        wrap = self.positions + c.seq_len + 1 >= self.region              # as kafkarnn's streams
        if wrap.any():
            self.positions[wrap] = 0
            if self.state is not None:
                for s in (self.state if isinstance(self.state, tuple) else (self.state,)):
                    s[:, torch.from_numpy(wrap)] = 0.0
        idx = self.starts + self.positions + self.offsets                 # (T, B)
        self.positions += c.seq_len
        x = torch.from_numpy(self.train[idx])
        y = torch.from_numpy(self.train[idx + 1])
        x = self.embed(x) if self.embed else self.F.one_hot(x, self.V).to(torch.float32)
        out, state = self.rnn(x, self.state)                             # (T, B, H)
        logits = self.head(out.reshape(-1, c.hidden))                    # (T·B, V)
        loss = self.F.cross_entropy(logits, y.reshape(-1))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if c.clip:
            torch.nn.utils.clip_grad_value_(self.params, c.clip)
        if c.clip_norm:
            torch.nn.utils.clip_grad_norm_(self.params, c.clip_norm)
        self.opt.step()
        self.state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        self.chars += c.batch * c.seq_len

    def block(self, seconds):
        now = time.perf_counter
        c0, t0 = self.chars, now()
        end = t0 + seconds
        self.step()
        while now() < end:
            self.step()
        return self.chars - c0, now() - t0


class AtThreads:
    """A runner whose blocks run at `threads` threads, set by `set_threads` before each block."""

    def __init__(self, runner, threads: int, set_threads):
        self.runner, self.threads, self.set_threads = runner, threads, set_threads
        self.name = f"{runner.name} ×{threads}"

    def block(self, seconds):
        self.set_threads(self.threads)
        return self.runner.block(seconds)


def load_torch(threads: int | None):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads or os.cpu_count() or 1)
    return torch


# -- main ------------------------------------------------------------------------------------------

def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_args(ap)
    ap.add_argument("--rounds", type=int, default=5, help="timed blocks per engine (default 5)")
    ap.add_argument("--block", type=float, default=3.0, help="seconds per timed block (default 3)")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per engine (default 1)")
    ap.add_argument("--settle", type=float, default=0.2,
                    help="seconds of idle before each timed block, so thread pools stop spinning (default 0.2)")
    known = ("seed", *CONFIGS, *PRESET_CONFIGS)
    ap.add_argument("--configs", default=",".join(known),
                    help=f"which to run, comma-separated from {','.join(known)} (default: all)")
    ap.add_argument("--check-points", type=int, default=100, help="maths-check points (default 100)")
    ap.add_argument("--check-every", type=int, default=100, help="training steps between points (default 100)")
    ap.add_argument("--gemm-size", type=int, default=1024,
                    help="N of the square N×N @ N×N float32 GEMM that sets the ceiling (default 1024)")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="torch.set_num_threads for (b, c) (default: --threads, else the core count)")
    ap.add_argument("--torch-input", choices=("onehot", "embed"), default="onehot",
                    help="PyTorch input for (b, c): one-hot (the same model as kafkarnn's) or an embedding")
    ap.add_argument("--torch-embed", type=int, default=64,
                    help="embedding size with --torch-input embed, and for (d) (default 64)")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.block, args.warmup, args.settle = 2, 0.2, 0.05, 0.0
        args.check_every, args.gemm_size = 1, 512
    wanted = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = set(wanted) - set(known)
    if unknown:
        ap.error(f"unknown configs: {', '.join(sorted(unknown))}")

    torch = None if args.no_torch else load_torch(args.torch_threads or args.threads)
    corpus = load_corpus(str(args.corpus))
    train, val = corpus.split(Config().val_fraction)
    V = len(corpus.vocab)
    print(f"corpus {args.corpus} ({len(corpus.data):,} chars, vocabulary {V}); cores {os.cpu_count()}; "
          f"BLAS: {common.blas_summary()}")
    if torch is not None:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    results = {"corpus": str(args.corpus), "vocab_size": V, "rounds": args.rounds,
               "block_seconds": args.block, "quick": args.quick}

    if "seed" in wanted:
        results["seed"] = run_seed(args, corpus.vocab, train, val)
    rows = []
    for name in (w for w in wanted if w in CONFIGS):
        rows += run_config(name, args, corpus.vocab, train, val, torch)
    for name in (w for w in wanted if w in PRESET_CONFIGS):
        rows += run_preset(name, args, corpus.vocab, train, val, torch)
    if rows:
        print("\n(b, c, d) float32, chars/s: median of "
              f"{args.rounds} blocks of {args.block:g} s; ceiling: {args.gemm_size}³ float32 GEMM")
        print(common.table(rows, [
            ("config", "config"), ("engine", "engine"), ("chars_per_s", "chars/s"),
            ("flops_per_char", "FLOP/char"), ("gflops", "GFLOP/s"), ("ceiling_gflops", "ceiling"),
            ("pct_ceiling", "% ceiling"), ("model_gemm_gflops", "shaped GEMM"),
            ("pct_model_gemm", "% shaped"), ("pct_products_alone", "% products-alone"),
            ("threads", "threads"), ("vs_torch", "kafkarnn/torch")]))
        results["configs"] = rows
    results["blas"] = common.blas_threads()
    print(f"\nthreads in use: {common.blas_summary()}")
    path = common.write_results("throughput", results, args.out)
    print(f"wrote {path}")
    seed_result = results.get("seed")
    if seed_result and not seed_result["maths"]["passed"]:
        sys.exit(1)


def run_seed(args, vocab, train, val) -> dict:
    print(f"\n(a) seed baseline vs kafkarnn `seed` preset: {args.rounds} rounds × {args.block:g} s, alternating")
    runners = [SeedBaselineRunner(vocab, train), KafkarnnRunner(PRESETS["seed"], vocab, train, val)]
    rates = alternate(runners, args.rounds, args.block, args.warmup, args.settle)
    med = [common.median(r) for r in rates]
    rows = [{"engine": r.name, "chars_per_s": m, "rounds": " ".join(f"{x:,.0f}" for x in rs)}
            for r, m, rs in zip(runners, med, rates)]
    print(common.table(rows, [("engine", "engine"), ("chars_per_s", "median chars/s"),
                              ("rounds", "per round")]))
    ratio = med[1] / med[0]
    print(f"ratio kafkarnn/baseline: {ratio:.2f}×")
    t0 = time.perf_counter()
    maths = maths_check(vocab, train, val, args.check_points, args.check_every)
    print(f"maths check: {maths['points']} points, {maths['every']} steps apart "
          f"({maths['iterations']:,} iterations, {time.perf_counter() - t0:.1f} s); identical start: "
          f"{maths['same_start']}; max relative error {maths['max_rel_err']:.2e} "
          f"({'PASS' if maths['passed'] else 'FAIL'} at {TOLERANCE:g})")
    print("  " + ", ".join(f"{k} {v:.1e}" for k, v in maths["rel_err"].items()))
    return {"baseline_chars_per_s": med[0], "kafkarnn_chars_per_s": med[1], "ratio": ratio,
            "baseline_rounds": rates[0], "kafkarnn_rounds": rates[1], "maths": maths}


def run_config(name, args, vocab, train, val, torch) -> list[dict]:
    cell, H, B, T = CONFIGS[name]
    cfg = Config(model=cell, hidden=H, batch=B, seq_len=T, optimizer="adam", dtype="float32")
    V, G = len(vocab), GATES[cell]
    flops = flops_per_char(cell, H, V)
    print(f"\n{name}: {cell} hidden {H} batch {B} seq {T}, {flops:,} FLOP/char", flush=True)
    t0 = time.perf_counter()
    ceiling = common.gemm_gflops(args.gemm_size, args.gemm_size, args.gemm_size,
                                 repeats=3 if args.quick else 7)
    shaped = common.gemm_gflops(B * T, H, G * H, repeats=3 if args.quick else 7)
    alone = products_alone(cell, H, B, T, V, repeats=3 if args.quick else 7)
    runners = [KafkarnnRunner(cfg, vocab, train, val)]
    if torch is not None:
        runners.append(TorchRunner(cfg, V, train, args.torch_input, args.torch_embed))
    rates = alternate(runners, args.rounds, args.block, args.warmup, args.settle)
    med = [common.median(r) for r in rates]
    rows = []
    for r, m, rs in zip(runners, med, rates):
        gflops = m * flops / 1e9
        rows.append({"config": name, "engine": r.name, "cell": cell, "hidden": H, "batch": B,
                     "seq_len": T, "chars_per_s": m, "rounds": rs, "flops_per_char": flops,
                     "gflops": gflops, "ceiling_gflops": ceiling,
                     "pct_ceiling": 100 * gflops / ceiling, "model_gemm_shape": [B * T, H, G * H],
                     "model_gemm_gflops": shaped, "pct_model_gemm": 100 * gflops / shaped})
    rows[0]["products_alone"] = alone                  # kafkarnn's row: the bound is NumPy's
    rows[0]["pct_products_alone"] = 100 * med[0] / alone["chars_per_s"]
    if len(med) > 1:
        rows[0]["vs_torch"] = med[0] / med[1]
        rows[1]["torch_input"] = args.torch_input
    bound = alone["chars_per_s"] * flops / 1e9
    print(f"  products alone: {alone['step_s'] * 1e6:,.0f} µs a step -> at most {alone['chars_per_s']:,.0f} "
          f"chars/s = {100 * bound / ceiling:.1f}% of the ceiling (" +
          ", ".join(f"{k} {v:,.0f} µs" for k, v in alone["per_product_us"].items()) + ")")
    for row in rows:
        print(f"  {row['engine']:>8}: {row['chars_per_s']:>10,.0f} chars/s  "
              f"{row['pct_ceiling']:5.1f}% of {ceiling:.0f} GFLOP/s" +
              (f", {row['pct_products_alone']:.0f}% of the products-alone bound" if "products_alone" in row else ""))
    print(f"  ({time.perf_counter() - t0:.1f} s)")
    return rows


def run_preset(name, args, vocab, train, val, torch) -> list[dict]:
    """(d) A preset as users train it against PyTorch's same model, each engine at every thread
    count in turn (kafkarnn's BLAS pool through threadpoolctl, torch.set_num_threads for torch);
    each engine's row is its best count."""
    cfg = check(PRESETS[name].replace(seq_len=16) if args.quick else PRESETS[name])   # quick: 8× shorter steps
    V = len(vocab)
    flops = flops_per_char(cfg.model, cfg.hidden, V, cfg.layers)
    counts = candidate_counts(args.threads or usable_cores())
    print(f"\n{name} preset: {cfg.describe()}, batch {cfg.batch} seq {cfg.seq_len}, {flops:,} FLOP/char; "
          f"threads {counts}", flush=True)
    t0 = time.perf_counter()
    pool = BlasPool()
    before = pool.get()
    engines = [(KafkarnnRunner(cfg, vocab, train, val), pool.set)]
    if torch is not None:
        torch_before = torch.get_num_threads()
        engines.append((TorchRunner(cfg, V, train, "embed", args.torch_embed), torch.set_num_threads))
    runners = [AtThreads(r, n, set_threads) for r, set_threads in engines for n in counts]
    try:
        rates = alternate(runners, args.rounds, args.block, args.warmup, args.settle)
    finally:
        pool.set(before)
        if torch is not None:
            torch.set_num_threads(torch_before)
    rows = []
    for i, (engine, _) in enumerate(engines):
        per = {n: common.median(rates[i * len(counts) + j]) for j, n in enumerate(counts)}
        best = max(counts, key=per.get)
        rows.append({"config": name, "engine": engine.name, "cell": cfg.model, "hidden": cfg.hidden,
                     "layers": cfg.layers, "batch": cfg.batch, "seq_len": cfg.seq_len,
                     "threads": best, "chars_per_s": per[best], "per_threads": per,
                     "rounds": rates[i * len(counts) + counts.index(best)],
                     "flops_per_char": flops, "gflops": per[best] * flops / 1e9})
        print(f"  {engine.name:>8}: " + ", ".join(f"{n} threads {r:,.0f}" for n, r in per.items()) +
              f" chars/s; best {best}")
    if len(rows) > 1:
        rows[0]["vs_torch"] = rows[0]["chars_per_s"] / rows[1]["chars_per_s"]
        rows[1]["torch_input"] = f"embed {args.torch_embed}"
        print(f"  kafkarnn/torch at each one's best count: {rows[0]['vs_torch']:.2f}× (target ≥ 1.5×)")
    print(f"  ({time.perf_counter() - t0:.1f} s)")
    return rows


if __name__ == "__main__":
    main()
