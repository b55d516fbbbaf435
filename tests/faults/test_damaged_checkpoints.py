"""Damaged checkpoints and configs, through the resume path: every flipped bit, cut file and
swapped array either resumes exactly or fails in one line, the files untouched.

`pytest -m slow tests/faults/test_damaged_checkpoints.py` runs many more flips.
"""

import copy
import io
import json
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY
from faultkit import error_line, deadline, RUN

from kafkarnn.errors import KafkarnnError
from kafkarnn.main import main
from kafkarnn.runs.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint
from kafkarnn.train.launch import prepare
from kafkarnn.train.cadence import Cadence, Limits
from kafkarnn.train.session import Session

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals, flock and rlimits")


FUZZ_TEXT = "kafka sat on the mat; a hat fell.\n" * 40
FUZZ_V = len(set(FUZZ_TEXT))        # hidden = vocabulary size, so many arrays share a shape and can swap


def fuzz_overrides(cell: str, layers: int) -> dict:
    return {"model": cell, "layers": layers, "hidden": FUZZ_V, "batch": 2, "seq_len": 6,
            "dropout": 0.1, "optimizer": "adagrad" if cell == "rnn" else "adam"}


@pytest.fixture(scope="module")
def fuzz_runs(tmp_path_factory):
    """A trained run of each cell and depth, made once: {(cell, layers): data dir}."""
    base = tmp_path_factory.mktemp("fuzz")
    corpus = base / "kafka.txt"
    corpus.write_text(FUZZ_TEXT)
    made = {}

    def make(cell, layers):
        if (cell, layers) not in made:
            data_dir = base / f"{cell}{layers}"
            lh = prepare(data_dir=data_dir, corpus_spec=str(corpus), encoding=None, run_name="r",
                         new=False, preset=None, overrides=fuzz_overrides(cell, layers))
            try:
                s = Session(lh, Limits(max_iters=7), Cadence(eval_every=0.0, save_every=1e9))
                assert s.run() == "FINISHED"
            finally:
                lh.lock.unlock()
            made[cell, layers] = data_dir
        return made[cell, layers]
    return make


def resume(data_dir: Path):
    """prepare() as `kafkarnn --run r` does it: the state it restored, or the error's message."""
    try:
        lh = prepare(data_dir=data_dir, corpus_spec=None, encoding=None, run_name="r", new=False,
                     preset=None, overrides={})
    except KafkarnnError as e:
        return str(e)
    try:
        t = lh.trainer
        return ({k: v.copy() for k, v in t.state_arrays().items()}, json.dumps(t.state_meta()),
                lh.elapsed_s, lh.best_val_loss, lh.resumed)
    finally:
        lh.lock.unlock()


def same_state(a, b) -> bool:
    arrays_a, meta_a, *rest_a = a
    arrays_b, meta_b, *rest_b = b
    return (set(arrays_a) == set(arrays_b) and meta_a == meta_b and rest_a == rest_b and
            all(arrays_a[k].dtype == arrays_b[k].dtype and np.array_equal(arrays_a[k], arrays_b[k])
                for k in arrays_a))


def npz_bytes(members: dict, meta, pickle: bool = False) -> bytes:
    """An .npz written member by member with no checks, for hand-damaged files (meta: dict or None)."""
    buf = io.BytesIO()
    if meta is not None:
        members = {**members, "__meta__": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, arr in members.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(arr), allow_pickle=pickle)
    return buf.getvalue()


def resaved(scratch: Path, arrays: dict, meta: dict) -> bytes:
    """A well-formed checkpoint (fresh CRCs) of the given contents: only the meaning is wrong."""
    path = scratch / "resaved.npz"
    save_checkpoint(path, arrays, meta)
    return path.read_bytes()


def checkpoint_cases(path: Path, scratch: Path, rng, flips: int, cuts: int):
    """(label, file bytes, must_fail) for every kind of damage, starting from one good checkpoint."""
    good = path.read_bytes()
    arrays, meta = load_checkpoint(path)
    with np.load(path) as npz:
        stored_meta = json.loads(npz["__meta__"].tobytes())         # as stored: with the CRC record
    cases = []
    add = cases.append

    def meta_with(label, change, must_fail=True):
        m = copy.deepcopy(meta)
        change(m)
        add((label, resaved(scratch, arrays, m), must_fail))

    def array_as(name, value, label):
        add((f"{name} {label}", resaved(scratch, {**arrays, name: value}, meta), True))

    for cut in sorted(set(np.linspace(0, len(good) - 1, cuts).astype(int).tolist())):
        add((f"truncated to {cut} bytes", good[:cut], True))
    for _ in range(flips):
        damaged = bytearray(good)
        at = int(rng.integers(len(good)))
        damaged[at] ^= int(rng.integers(1, 256))
        add((f"byte {at} flipped", bytes(damaged), False))
    names = sorted(arrays)
    for i, a in enumerate(names):                                     # swapped arrays
        for b in names[i + 1:]:
            x, y = arrays[a], arrays[b]
            if x.shape == y.shape and x.dtype == y.dtype:
                if not np.array_equal(x, y):
                    add((f"{a} and {b} swapped", npz_bytes({**arrays, a: y, b: x}, stored_meta), True))
            elif a.startswith("param/") and b.startswith("param/"):
                add((f"{a} and {b} swapped, fresh CRCs",
                     resaved(scratch, {**arrays, a: y, b: x}, meta), True))
    why = arrays["param/Why"]
    rest = {k: v for k, v in arrays.items() if k != "param/Why"}
    add(("param/Why stored as param/Why.old", npz_bytes({**rest, "param/Why.old": why}, stored_meta), True))
    add(("param/Why stored as param/Why.old, fresh CRCs",
         resaved(scratch, {**rest, "param/Why.old": why}, meta), True))
    for name in names:                                                # wrong shapes and dtypes
        a = arrays[name]
        if a.ndim:
            array_as(name, a[..., :-1], "one column short")
            array_as(name, a[None], "with an extra axis")
        if a.ndim > 1:
            array_as(name, a.reshape(-1), "flattened")
        if a.dtype.kind == "f":
            array_as(name, a.astype(np.float64 if a.dtype == np.float32 else np.float32), "in another float type")
            array_as(name, a.astype(a.dtype.newbyteorder(">")), "big-endian")
            array_as(name, a.astype(np.int32), "as integers")
        add((f"{name} missing", resaved(scratch, {k: v for k, v in arrays.items() if k != name}, meta), True))
    add(("no metadata", npz_bytes(arrays, None), True))
    for version in (FORMAT_VERSION - 1, FORMAT_VERSION + 1, 99, "1", 0, None, True):
        add((f"format_version {version!r}", npz_bytes(arrays, {**stored_meta, "format_version": version}), True))
    obj = np.empty(1, dtype=object)
    obj[0] = {"evil": "pickle"}
    add(("param/Why as an object array", npz_bytes({**arrays, "param/Why": obj}, stored_meta, pickle=True), True))
    add(("an extra object array", npz_bytes({**arrays, "notes": obj}, stored_meta, pickle=True), True))
    for name, value in (("param/Why", np.nan), ("param/by", np.inf), ("state/l0", np.nan),
                        (sorted(k for k in names if k.startswith("opt/") and arrays[k].dtype.kind == "f")[0], -np.inf)):
        a = arrays[name].copy()
        a.flat[0] = value
        array_as(name, a, f"holding {value}")
    region = (len(FUZZ_TEXT) - round(len(FUZZ_TEXT) * 0.1)) // 2
    for label, value in (("-6", -6), ("at the region's end", region), ("10**12", 10 ** 12)):
        p = arrays["positions"].copy()
        p[0] = value
        array_as("positions", p, label)
    array_as("positions", arrays["positions"].astype(np.float64), "as floats")
    for key, values in (("iteration", [-1, 2 ** 70, 7.5, "7", True, None, float("inf"), float("nan"),
                                       meta["iteration"] + 1]),
                        ("chars", [-12, "84", 1e300, meta["chars"] + 1]),
                        ("smooth_loss", [float("nan"), float("inf"), -1.0, "2.5", None]),
                        ("bad_steps", [-1, 99, "0", 0.5]),
                        ("elapsed_s", ["soon", float("nan"), -5.0, [1]]),
                        ("best_val_loss", ["low", float("nan"), True, {"v": 1}]),
                        ("vocab", [FUZZ_TEXT[:5], 7, None]),
                        ("config", ["lstm", [1], {**meta["config"], "hidden": FUZZ_V + 1}])):
        for value in values:
            meta_with(f"{key} = {value!r}", lambda m, k=key, v=value: m.__setitem__(k, v))
        meta_with(f"{key} missing", lambda m, k=key: m.pop(k),
                  must_fail=key in ("iteration", "chars", "smooth_loss", "elapsed_s"))
    state = meta["rng"]["state"]
    for label, rng_value in (("missing", None), ("a string", "PCG64"), ("another generator",
                             {**meta["rng"], "bit_generator": "MT19937"}),
                             ("state not a dict", {**meta["rng"], "state": [1, 2]}),
                             ("negative", {**meta["rng"], "state": {**state, "state": -1}}),
                             ("2**200", {**meta["rng"], "state": {**state, "state": 2 ** 200}}),
                             ("a float", {**meta["rng"], "state": {**state, "state": 1.5}}),
                             ("a string state", {**meta["rng"], "state": {**state, "inc": "12"}}),
                             ("has_uint32 'x'", {**meta["rng"], "has_uint32": "x"})):
        meta_with(f"rng {label}", lambda m, v=rng_value: m.__setitem__("rng", v))
    meta_with("empty metadata", lambda m: m.clear())
    meta_with("saved_at changed", lambda m: m.__setitem__("saved_at", 0.0), must_fail=False)
    add(("an extra unknown array", resaved(scratch, {**arrays, "notes/x": np.ones(3)}, meta), False))
    return cases


def fuzz_checkpoints(fuzz_runs, tmp_path, capsys, cell, layers, flips, cuts, seed, cli_every=1):
    """Every case through the resume path; every `cli_every`-th refused one through the CLI too
    (training and sampling), whose one error handler the other cases would only repeat."""
    data_dir = tmp_path / "home"
    shutil.copytree(fuzz_runs(cell, layers), data_dir)
    ckpt = data_dir / "runs" / "r" / "checkpoint.npz"
    original = resume(data_dir)
    assert not isinstance(original, str), original
    assert original[4] and json.loads(original[1])["iteration"] == 7
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    cases = checkpoint_cases(ckpt, scratch, np.random.default_rng(seed), flips, cuts)
    refused = 0
    for label, content, must_fail in cases:
        ckpt.write_bytes(content)
        with deadline(30):
            outcome = resume(data_dir)
            if isinstance(outcome, str):
                refused += 1
                assert "\n" not in outcome, label
                if refused % cli_every == 0:                          # say it the same way on the CLI
                    rc = main(["--headless", "--data-dir", str(data_dir), "--run", "r", "--max-iters", "1"])
                    err = capsys.readouterr().err
                    assert rc == 2, (label, err)
                    assert err.splitlines() == [f"kafkarnn: error: {' '.join(outcome.split())}"], label
                    rc = main(["sample", "--data-dir", str(data_dir), "--run", "r", "--length", "3", "--seed", "0"])
                    err = capsys.readouterr().err
                    assert rc in (0, 2) and (rc == 0 or error_line(err)), (label, err)
            else:
                assert not must_fail, f"{label}: loaded, but must be refused"
                assert same_state(outcome, original), f"{label}: loaded a different model"
        assert ckpt.read_bytes() == content, f"{label}: the damaged file was changed"
    return len(cases), refused


# Each cell and both layer counts by default; the other three pairs with the slow trials.
@pytest.mark.parametrize("cell,layers", [
    (c, n) if (c, n) in (("rnn", 1), ("lstm", 2), ("gru", 2))
    else pytest.param(c, n, marks=pytest.mark.slow) for c in ("rnn", "lstm", "gru") for n in (1, 2)])
def test_damaged_checkpoints_resume_exactly_or_fail_in_one_line(fuzz_runs, tmp_path, capsys, cell, layers):
    n, refused = fuzz_checkpoints(fuzz_runs, tmp_path, capsys, cell, layers, flips=16, cuts=10, seed=layers,
                                  cli_every=1 if cell == "gru" else 4)     # the default's cell: all
    assert n > 100 and refused > 0.8 * n


@pytest.mark.slow
@pytest.mark.parametrize("cell,layers", [(c, n) for c in ("rnn", "lstm", "gru") for n in (1, 2)])
def test_damaged_checkpoints_many_flips(fuzz_runs, tmp_path, capsys, cell, layers):
    fuzz_checkpoints(fuzz_runs, tmp_path, capsys, cell, layers, flips=400, cuts=60, seed=100 + layers)


@pytest.mark.parametrize("change", [
    lambda c: "not json {",
    lambda c: json.dumps([c]),
    lambda c: json.dumps({**c, "hidden": "16"}),
    lambda c: json.dumps({**c, "lr": None}),
    lambda c: json.dumps({**c, "dropout": "none"}),
    lambda c: json.dumps({**c, "corpus": "porter.txt"}),
    lambda c: json.dumps({**c, "corpus": {**c["corpus"], "spec": 5}}),
    lambda c: json.dumps({**c, "corpus": {**c["corpus"], "fingerprint": [1]}}),
    lambda c: json.dumps({**c, "corpus": {**c["corpus"], "vocab": 3}}),
    lambda c: json.dumps({k: v for k, v in c.items() if k != "hidden"}),
])
def test_damaged_config_is_one_line(home, book, capsys, change):
    assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "3"]) == 0
    config = home / "runs" / RUN / "config.json"
    config.write_text(change(json.loads(config.read_text())))
    damaged = config.read_bytes()
    capsys.readouterr()
    for args in (["--headless", "--run", RUN, "--max-iters", "5"],
                 ["--headless", "--corpus", str(book), *TINY, "--max-iters", "5"]):
        assert main(args) == 2
        assert error_line(capsys.readouterr().err)
    assert config.read_bytes() == damaged
