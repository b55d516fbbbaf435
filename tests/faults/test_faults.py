"""Fault injection: a second writer, damaged checkpoints and corpora, kills at any moment, write
errors and full disks, NaNs.

Each test attacks one promise through the real entry points (`python -m kafkarnn` in a child
process, `main()` in this one, or `prepare()` for the many checkpoint cases) and checks that
nothing is lost and nothing is silently wrong: a run goes on exactly where its last checkpoint
left it, or stops with one line `kafkarnn: error: …` and exit code 2, its files untouched.

The default suite runs a few trials of each; `pytest -m slow tests/faults/test_faults.py` runs many.
"""

import codecs
import contextlib
import copy
import hashlib
import io
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY

import kafkarnn.train.corpus as corpus_mod
from kafkarnn.engine.model import CharModel
from kafkarnn.engine.vocab import Vocab
from kafkarnn.errors import KafkarnnError
from kafkarnn.main import main
from kafkarnn.runs.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint
from kafkarnn.train.launch import prepare
from kafkarnn.runs.folder import Run
from kafkarnn.train.session import SaveNow, Session

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals, flock and rlimits")

RUN = "porter-rnn"


# ---- helpers ------------------------------------------------------------------------------------

def spawn(*args, code: str | None = None, **kw) -> subprocess.Popen:
    """`python -m kafkarnn ARGS` (or `python -c CODE ARGS`) with piped, line-buffered output."""
    cmd = [sys.executable, "-m", "kafkarnn"] if code is None else [sys.executable, "-c", code]
    return subprocess.Popen([*cmd, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def cli(*args, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kafkarnn", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, **kw)


def error_line(stderr: str) -> str:
    """The whole of stderr must be one `kafkarnn: error:` line: no traceback, no warnings."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kafkarnn: error: "), stderr
    return lines[0]


class Watch:
    """Reads a child's stdout and stderr in threads so a test can wait for a line."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.lines, self.cond = proc, [], threading.Condition()
        self.readers = [threading.Thread(target=self._read, args=(s, n), daemon=True)
                        for s, n in ((proc.stdout, "out"), (proc.stderr, "err"))]
        for r in self.readers:
            r.start()

    def _read(self, stream, name):
        for line in stream:
            with self.cond:
                self.lines.append((name, line.rstrip("\n")))
                self.cond.notify_all()

    def wait_for(self, text: str, after: int = 0, timeout: float = 60) -> int:
        """Index of the first line from `after` on that contains `text`."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(after, len(self.lines)):
                    if text in self.lines[i][1]:
                        return i
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not any(r.is_alive() for r in self.readers)):
                    raise AssertionError(f"no line with {text!r}: {self.lines[-20:]}")
                self.cond.wait(min(left, 0.1))

    def line(self, i: int) -> str:
        with self.cond:
            return self.lines[i][1]

    def finish(self, timeout: float = 60) -> int:
        rc = self.proc.wait(timeout)
        for r in self.readers:
            r.join(5)
        return rc

    def text(self, name: str) -> str:
        with self.cond:
            return "\n".join(line for n, line in self.lines if n == name)


@contextlib.contextmanager
def deadline(seconds: float):
    """Turn a hang into a TimeoutError in this (main) thread."""
    def fire(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s: a hang")
    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def iteration_of(path: Path) -> int:
    return load_checkpoint(path)[1]["iteration"]


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp-*"))


def all_finite(path: Path) -> bool:
    arrays, _ = load_checkpoint(path)
    return all(np.isfinite(a).all() for a in arrays.values() if a.dtype.kind == "f")


# ---- 1. one writer per run ------------------------------------------------------------------------

def test_one_writer_per_run_and_readers_meanwhile(home, book):
    run = home / "runs" / RUN
    first = Watch(spawn("--headless", "--corpus", book, *TINY, "--save-every", "0.05"))
    try:
        first.wait_for("saved at")
        pid = first.proc.pid
        busy = f"kafkarnn: error: run {RUN} is in use by process {pid}"
        for args, expected in ((["--headless", "--corpus", book, *TINY, "--max-iters", "3"], busy),
                               (["--corpus", book, *TINY], busy),          # no --headless, no terminal
                               (["--headless", "--run", RUN, "--hidden", "32"],   # a mismatch is
                                f"kafkarnn: error: run {RUN} was created with --hidden 16; pass "   # told first
                                "--new to start a fresh run with --hidden 32, or leave --hidden "
                                "out to continue it")):
            started = time.monotonic()
            second = cli(*args)
            assert time.monotonic() - started < 15                         # at once, not after a wait
            assert second.returncode == 2
            assert error_line(second.stderr) == expected
        sample = cli("sample", "--run", RUN, "--length", "30", "--seed", "1")
        assert sample.returncode == 0, sample.stderr
        assert len(sample.stdout) == 31
        listed = cli("runs", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [r["name"] for r in json.loads(listed.stdout)] == [RUN]
        assert cli("runs").returncode == 0
        assert first.proc.poll() is None                                   # still training
    finally:
        first.proc.kill()
        first.finish()
    assert (run / "lock").read_text().split()[0] == str(pid)              # a dead holder's PID ...
    it = iteration_of(run / "checkpoint.npz")
    again = cli("--headless", "--corpus", book, *TINY, "--max-iters", it + 3)
    assert again.returncode == 0, again.stderr                            # ... does not block
    assert f"resuming at iteration {it:,}" in again.stderr
    assert iteration_of(run / "checkpoint.npz") == it + 3
    assert temp_files(run) == []


# ---- 2. checkpoint fuzzing through the resume path -----------------------------------------------

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
                s = Session(lh.trainer, lh.run, corpus="k", data_dir=str(data_dir), run_meta=lh.run_meta,
                            max_iters=7, eval_every=0.0, save_every=1e9)
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


def fuzz_checkpoints(fuzz_runs, tmp_path, capsys, cell, layers, flips, cuts, seed):
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
            if isinstance(outcome, str):                              # refused: say it the same way on the CLI
                refused += 1
                assert "\n" not in outcome, label
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


@pytest.mark.parametrize("cell,layers", [(c, n) for c in ("rnn", "lstm", "gru") for n in (1, 2)])
def test_damaged_checkpoints_resume_exactly_or_fail_in_one_line(fuzz_runs, tmp_path, capsys, cell, layers):
    n, refused = fuzz_checkpoints(fuzz_runs, tmp_path, capsys, cell, layers, flips=16, cuts=10, seed=layers)
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


# ---- 3. corpus fuzzing ------------------------------------------------------------------------------

def expected_text(raw: bytes, encoding: str) -> str | None:
    """What a correct load of `raw` gives (None: it must be refused), worked out independently."""
    codec = codecs.lookup(encoding).name
    codec = "utf-8-sig" if codec == "utf-8" else codec
    if not codec.startswith(("utf-16", "utf-32")) and b"\0" in raw[:8192]:
        return None                                                   # binary
    try:
        text = raw.decode(codec)
        text.encode("utf-8")                                          # no lone surrogates
    except UnicodeError:
        return None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    train = len(text) - round(len(text) * 0.1)
    if len(set(text)) < 2 or train < 1 * (4 + 2):                    # --batch 1 --seq-len 4
        return None
    return text


def fingerprint(text: str) -> dict:
    vocab = Vocab.from_text(text)
    digest = hashlib.sha256(vocab.chars.encode("utf-8"))
    digest.update(vocab.encode(text).tobytes())
    return {"length": len(text), "sha256": digest.hexdigest()}


def load_by_cli(capsys, data_dir: Path, spec: Path, *extra) -> tuple[int, list[str], dict | None]:
    rc = main(["--headless", "--data-dir", str(data_dir), "--corpus", str(spec), "--run", "c",
               "--model", "rnn", "--hidden", "8", "--batch", "1", "--seq-len", "4", "--max-iters", "1",
               "--save-every", "1000", *extra])
    err = capsys.readouterr().err.splitlines()
    assert not any("Traceback" in line for line in err)
    config = data_dir / "runs" / "c" / "config.json"
    return rc, err, json.loads(config.read_text())["corpus"] if rc == 0 else None


def random_file(rng, kind: int) -> bytes:
    n = int(rng.integers(20, 6000))
    if kind == 0:
        return rng.integers(0, 256, n, dtype=np.uint8).tobytes()                # anything
    if kind == 1:
        return rng.integers(1, 256, n, dtype=np.uint8).tobytes()                # no NUL
    if kind == 2:                                                              # mixed encodings
        parts = ["Gregor Samsa erwachte ", "Käfer, Straße, ", "“so”—‘said’ ", "naïve café\r\n"]
        encs = ["utf-8", "latin-1", "cp1252", "utf-16-le"]
        return b"".join(rng.choice(parts).encode(str(rng.choice(encs)), errors="replace")
                        for _ in range(n // 20 + 1))
    if kind == 3:                                                              # text, then a NUL
        text = ("A quiet text line.\n" * (n // 19 + 500)).encode()
        at = int(rng.integers(0, len(text)))
        return text[:at] + b"\0" + text[at:]
    return "Ünïcödé ☃ text\r\n".encode("utf-16") * (n // 30 + 1)               # UTF-16 with a BOM


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1", "cp1252", "utf-16", "shift_jis",
                                      "unicode_escape", "undefined"])
def test_random_and_mixed_corpora_load_correctly_or_fail_in_one_line(home, tmp_path, capsys, encoding):
    rng = np.random.default_rng(sum(map(ord, encoding)))
    loaded = 0
    for trial in range(10):
        raw = random_file(rng, trial % 5)
        path = tmp_path / f"random{trial}.txt"
        path.write_bytes(raw)
        want = expected_text(raw, encoding)
        with deadline(60):
            rc, err, corpus = load_by_cli(capsys, tmp_path / f"d{trial}", path, "--encoding", encoding)
        if want is None:
            assert rc == 2, (trial, err)
            assert len(err) == 1 and err[0].startswith("kafkarnn: error: "), err
            continue
        assert rc == 0, (trial, err)
        assert corpus["vocab"] == "".join(sorted(set(want)))
        assert corpus["fingerprint"] == fingerprint(want)
        loaded += 1
    assert loaded or encoding not in ("latin-1", "utf-16")              # these load most files


def test_nul_bytes_mixed_encoding_and_a_huge_line(home, tmp_path, capsys):
    early = tmp_path / "early.txt"                                    # NUL in the first 8 KiB
    early.write_bytes(b"text\0more text\n" * 100)
    rc, err, _ = load_by_cli(capsys, tmp_path / "a", early)
    assert rc == 2 and err == [f"kafkarnn: error: {early} looks binary (it contains NUL bytes), not text"]
    late = tmp_path / "late.txt"                                      # a NUL further on is a character
    late.write_bytes(b"x" * 9000 + b"\0" + b"plain text\n" * 10)
    rc, err, corpus = load_by_cli(capsys, tmp_path / "b", late)
    assert rc == 0 and "\0" in corpus["vocab"]
    mixed = tmp_path / "mixed.txt"
    mixed.write_bytes("Straße ".encode() * 10 + "Käfer".encode("latin-1"))
    rc, err, _ = load_by_cli(capsys, tmp_path / "c", mixed)
    assert rc == 2 and err == [f"kafkarnn: error: {mixed} is not valid UTF-8 (byte 0xe4 at offset 81); "
                               "try --encoding latin-1"]
    rc, err, corpus = load_by_cli(capsys, tmp_path / "d", mixed, "--encoding", "latin-1")
    assert rc == 0 and corpus["fingerprint"] == fingerprint(mixed.read_bytes().decode("latin-1"))
    huge = tmp_path / "huge.txt"                                      # 4 MB and not one newline
    words = np.random.default_rng(0).choice(["gregor ", "samsa ", "beetle ", "sister ", "violin "], 600_000)
    line = "".join(words.tolist())
    huge.write_text(line)
    started = time.monotonic()
    rc, err, corpus = load_by_cli(capsys, tmp_path / "e", huge, "--val-fraction", "0.01")
    assert rc == 0, err
    assert corpus["fingerprint"] == fingerprint(line)
    assert time.monotonic() - started < 30


def deny_reads(monkeypatch, *paths: Path) -> None:
    """chmod 000, and where that does not stop us (root) make opening them fail as it would."""
    real_open = open
    for p in paths:
        p.chmod(0)

    def guarded_open(file, *a, **k):
        if Path(file) in paths:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *a, **k)
    monkeypatch.setattr(corpus_mod, "open", guarded_open, raising=False)


def test_folder_with_unreadable_files_loops_and_fifos(home, tmp_path, capsys, monkeypatch):
    root = tmp_path / "books"
    (root / "deep" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_text("first book\n")
    (root / "deep" / "b.txt").write_text("second book\n")
    (root / "deep" / "deeper" / "c.txt").write_text("third book\n")
    (root / "locked.txt").write_text("secret\n")
    (root / "deep" / "up").symlink_to(root, target_is_directory=True)   # a folder loop
    (root / "self.txt").symlink_to(root / "self.txt")                   # a link to itself
    (root / "gone.txt").symlink_to(root / "missing.txt")                 # dangling
    os.mkfifo(root / "pipe.txt")                                         # would block a plain read
    deny_reads(monkeypatch, root / "locked.txt")
    try:
        with deadline(30):
            rc, err, corpus = load_by_cli(capsys, tmp_path / "d", root)
    finally:
        (root / "locked.txt").chmod(0o644)
    assert rc == 0, err
    assert corpus["fingerprint"] == fingerprint("first book\nsecond book\nthird book\n")
    skipped = "\n".join(err)
    for name, why in (("locked.txt", "permission denied"), ("self.txt", "symbolic links"),
                      ("gone.txt", "no such file"), ("pipe.txt", "not a regular file")):
        assert re.search(rf"skipped {name} \(.*{why}", skipped), (name, err)
    for p in (root / "a.txt", root / "deep"):                            # now nothing readable at all
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    deny_reads(monkeypatch, root / "locked.txt")
    try:
        rc, err, _ = load_by_cli(capsys, tmp_path / "e", root)
    finally:
        (root / "locked.txt").chmod(0o644)
    assert rc == 2 and err[-1] == f"kafkarnn: error: no text files found under {root}"


class GrowingFile:
    """An open file whose every read (or only the first) is followed by an append, as if written meanwhile."""

    def __init__(self, f, path: Path, state: dict):
        self.f, self.path, self.state = f, path, state

    def read(self, *a):
        data = self.f.read(*a)
        if self.state["appends"]:
            self.state["appends"] -= 1
            with open(self.path, "ab") as out:
                out.write(b"one more line\n")
        return data

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


@pytest.mark.parametrize("appends", [1, 1000])
def test_a_corpus_that_changes_while_it_is_read(home, tmp_path, capsys, monkeypatch, appends):
    path = tmp_path / "growing.txt"
    path.write_text("a text still being written\n" * 50)
    state = {"appends": appends}
    real_open = open
    monkeypatch.setattr(corpus_mod, "open", lambda f, *a, **k: GrowingFile(real_open(f, *a, **k), path, state),
                        raising=False)
    rc, err, corpus = load_by_cli(capsys, tmp_path / "d", path)
    if appends == 1:                                                    # read again: the whole new version
        assert rc == 0, err
        assert corpus["fingerprint"] == fingerprint(path.read_text())
    else:                                                               # never still: refused
        assert rc == 2 and err == [f"kafkarnn: error: {path} kept changing while it was read; "
                                   "try again once it is complete"]


def test_a_corpus_appended_to_by_another_process_meanwhile(home, tmp_path):
    path = tmp_path / "log.txt"
    path.write_bytes(b"a line of a log that another program keeps writing\n" * 200_000)   # 10 MB
    stop = threading.Event()

    def writer():
        with open(path, "ab", buffering=0) as f:
            while not stop.is_set():
                f.write(b"one more line\n")
                time.sleep(0.0005)
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        r = cli("--headless", "--corpus", path, "--run", "log", "--model", "rnn", "--hidden", "8",
                "--max-iters", "1", "--val-fraction", "0.01")
    finally:
        stop.set()
        thread.join()
    if r.returncode == 2:
        assert error_line(r.stderr).endswith("kept changing while it was read; try again once it is complete")
    else:                                                               # a consistent version: whole lines
        assert r.returncode == 0, r.stderr
        length = json.loads((Path(os.environ["KAFKARNN_HOME"]) / "runs" / "log" / "config.json")
                            .read_text())["corpus"]["fingerprint"]["length"]
        assert path.read_bytes()[length - 1:length] == b"\n"


# ---- 4. kill at any moment ----------------------------------------------------------------------

# The real CLI, with metrics (and so validations, best.npz saves and samples) every 20 ms instead of
# every 2 s, so that random kills land in those writes too; KAFKARNN_TEST_PAUSE stops the process
# at one chosen point (and prints PAUSED) so a kill can land exactly there.
CHILD = r'''
import os, sys, time
import numpy as np
import kafkarnn.main, kafkarnn.runs.folder as runs, kafkarnn.train.session as session
session.Session.__init__.__kwdefaults__["metrics_every"] = 0.02
where, calls = os.environ.get("KAFKARNN_TEST_PAUSE"), {"n": 0}

def pause():
    print("PAUSED in", where, file=sys.stderr, flush=True)
    time.sleep(600)

def counted(limit):
    calls["n"] += 1
    return calls["n"] >= limit

if where == "startup":                         # a fresh run: config.json written, nothing trained
    real_config = runs.Run.write_config
    def write_config(self, config):
        real_config(self, config)
        pause()
    runs.Run.write_config = write_config
elif where == "step":                          # inside a step: positions moved, weights not yet
    from kafkarnn.engine.model import CharModel
    real_loss = CharModel.loss_and_grads
    def loss_and_grads(self, *a, **k):
        out = real_loss(self, *a, **k)
        if counted(30):
            pause()
        return out
    CharModel.loss_and_grads = loss_and_grads
elif where == "save":                          # half-way through writing the third checkpoint
    real_save, real_write = session.save_checkpoint, np.lib.format.write_array
    def save_checkpoint(path, *a, **k):
        calls["saving"] = path.name == "checkpoint.npz" and counted(3)
        return real_save(path, *a, **k)
    def write_array(*a, **k):
        real_write(*a, **k)
        if calls.get("saving"):
            pause()
    session.save_checkpoint, np.lib.format.write_array = save_checkpoint, write_array
elif where == "metrics":                       # half of a metrics line written
    real_append = runs._append
    def append(path, data):
        if path.name == "metrics.jsonl" and counted(3):
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            os.write(fd, data[: len(data) // 2])
            pause()
        real_append(path, data)
    runs._append = append
raise SystemExit(kafkarnn.main.main(sys.argv[1:]))
'''


def check_after_kill(capsys, book: Path, run: Path, at_least: int) -> int:
    """The killed run's checkpoint is whole and not older than before; resuming it works. Returns its iteration."""
    ckpt = run / "checkpoint.npz"
    existed = ckpt.exists()
    it = iteration_of(ckpt) if existed else 0                         # loads, or this raises
    assert it >= at_least
    if existed:
        assert all_finite(ckpt)
    capsys.readouterr()
    assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", str(it + 2),
                 "--save-every", "1000"]) == 0
    err = capsys.readouterr().err
    assert (f"resuming at iteration {it:,}" if existed else "new run") in err, err
    assert iteration_of(ckpt) == it + 2
    assert temp_files(run) == []
    records = Run(run.parent.parent, run.name).read_metrics()           # a torn line is skipped
    assert records and records[-1]["iter"] == it + 2
    return it + 2


@pytest.mark.parametrize("where", ["startup", "step", "save", "metrics"])
def test_kill_at_a_chosen_moment_then_resume(home, book, capsys, where):
    run = home / "runs" / RUN
    if where != "startup":
        assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "5"]) == 0
    before = iteration_of(run / "checkpoint.npz") if where != "startup" else 0
    child = Watch(spawn("--headless", "--corpus", book, *TINY, "--save-every", "0.05",
                        code=CHILD, env=dict(os.environ, KAFKARNN_TEST_PAUSE=where)))
    try:
        child.wait_for(f"PAUSED in {where}")
        if where == "save":
            assert temp_files(run) == [f".checkpoint.npz.tmp-{child.proc.pid}"]   # a half-written file
    finally:
        child.proc.kill()
        child.finish()
    if where == "metrics":
        assert not (run / "metrics.jsonl").read_bytes().endswith(b"\n")   # a torn last line
    if where == "startup":
        assert (run / "config.json").exists() and not (run / "checkpoint.npz").exists()
    check_after_kill(capsys, book, run, before)


def kill_trials(home, book, capsys, trials: int, seed: int) -> dict:
    """Kill a training child at random moments, over and over, resuming the same run each time."""
    rng = np.random.default_rng(seed)
    run = home / "runs" / RUN
    ckpt = run / "checkpoint.npz"
    last = 0
    phases = {"start-up": 0, "save": 0, "metrics write": 0, "steps": 0}
    injected_torn = 0
    metrics = run / "metrics.jsonl"
    for trial in range(trials):
        size = metrics.stat().st_size if metrics.exists() else 0
        child = Watch(spawn("--headless", "--corpus", book, *TINY, "--save-every", "0.05", code=CHILD))
        time.sleep(float(rng.uniform(0.0, 1.5)))
        seen = iteration_of(ckpt) if ckpt.exists() else 0             # any moment: a whole checkpoint
        child.proc.kill()
        child.finish()
        started = [line for line in child.text("err").splitlines() if line.startswith("kafkarnn: run ")]
        if started:
            assert ("new run" if last == 0 else f"resuming at iteration {last:,}") in started[0]
        torn = (metrics.exists() and metrics.stat().st_size != size and
                not metrics.read_bytes().endswith(b"\n"))                 # this kill tore a line
        phase = ("start-up" if not started else "save" if temp_files(run) else
                 "metrics write" if torn else "steps")
        phases[phase] += 1
        now = iteration_of(ckpt) if ckpt.exists() else 0
        assert now >= max(seen, last), (trial, phase)                  # never older than before
        if ckpt.exists():
            assert all_finite(ckpt)
        if rng.random() < 0.3 and metrics.exists():                    # and a torn line by hand
            with open(metrics, "ab") as f:
                f.write(b'{"iter": 99999999, "loss": 1.2')
            injected_torn += 1
        last = now
    final = check_after_kill(capsys, book, run, last)
    garbage = 0
    for line in metrics.read_bytes().split(b"\n"):
        try:
            json.loads(line) if line else None
        except ValueError:
            garbage += 1
    assert garbage <= injected_torn + phases["metrics write"]          # only torn lines, kept apart
    return {"trials": trials, "final_iteration": final, **phases, "torn lines added": injected_torn}


def test_kill_at_random_moments(home, book, capsys):
    kill_trials(home, book, capsys, trials=8, seed=1)


@pytest.mark.slow
def test_kill_at_random_moments_many_trials(home, book, capsys):
    summary = kill_trials(home, book, capsys, trials=200, seed=2)
    with capsys.disabled():
        print(f"\nkill trials: {summary}")


# ---- 5. disk full and write errors ----------------------------------------------------------------

def fsize_limit(limit: int):
    """For preexec_fn: files may not grow past `limit` bytes (the soft limit; the hard one stays)."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # so a write past it fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return apply


def make_read_only(folder: Path):
    """Make `folder` refuse new files, even for root (chattr +i); returns the undo, or None."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        undo = lambda: folder.chmod(0o755)  # noqa: E731
    else:
        if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(folder)],
                                                        capture_output=True).returncode:
            return None
        undo = lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)  # noqa: E731
    try:
        (folder / "probe").touch()
    except OSError:
        return undo
    (folder / "probe").unlink()
    undo()
    return None


@pytest.mark.parametrize("fault", ["file-size limit", "read-only folder"])
def test_failed_saves_are_reported_retried_and_keep_the_checkpoint(home, book, capsys, fault):
    assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "5"]) == 0
    run = home / "runs" / RUN
    good = (run / "checkpoint.npz").read_bytes()
    undo, preexec = None, None
    if fault == "read-only folder":
        undo = make_read_only(run)
        if undo is None:
            pytest.skip("cannot make a folder read-only here")
    else:
        preexec = fsize_limit(len(good) // 2)
    try:
        child = Watch(spawn("--headless", "--corpus", book, *TINY, "--save-every", "0.05",
                            preexec_fn=preexec))
        first = child.wait_for("(checkpoint.npz: ")
        second = child.wait_for("(checkpoint.npz: ", after=first + 1)
        a, b = (int(re.search(r"iteration (\d+)", child.line(i)).group(1)) for i in (first, second))
        assert b > a                                                   # training goes on between tries
        assert any(why in child.line(first) for why in
                   ("File too large", "Operation not permitted", "Permission denied"))
        assert "the previous checkpoint.npz is intact, will retry" in child.line(first)
        assert (run / "checkpoint.npz").read_bytes() == good
        if undo:
            undo()
            undo = None
        else:
            resource.prlimit(child.proc.pid, resource.RLIMIT_FSIZE,
                             (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        child.wait_for("saved at", after=second)                       # the retry works
        child.proc.send_signal(signal.SIGTERM)
        assert child.finish() == 0, child.text("err")
    finally:
        if undo:
            undo()
        if child.proc.poll() is None:
            child.proc.kill()
    assert iteration_of(run / "checkpoint.npz") > b


@pytest.mark.parametrize("ending", ["limit", "SIGTERM"])
def test_a_failed_final_save_is_an_error_not_a_silent_exit(home, book, capsys, ending):
    assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "5"]) == 0
    run = home / "runs" / RUN
    good = (run / "checkpoint.npz").read_bytes()
    args = ["--max-iters", "40"] if ending == "limit" else []
    child = Watch(spawn("--headless", "--corpus", book, *TINY, "--save-every", "1000", *args,
                        preexec_fn=fsize_limit(len(good) // 2)))
    if ending == "SIGTERM":
        child.wait_for("resuming at iteration 5")
        time.sleep(0.5)
        child.proc.send_signal(signal.SIGTERM)
    assert child.finish() == 2
    err = child.text("err").splitlines()
    assert err[0].startswith("kafkarnn: run porter-rnn (resuming at iteration 5)")
    it = 40 if ending == "limit" else int(re.search(r"at iteration (\d+) \(File", err[-1]).group(1))
    assert err[1:] == [f"kafkarnn: error: run {RUN}: checkpoint.npz could not be saved at iteration "
                       f"{it} (File too large); the previous checkpoint is intact and the progress "
                       "since it is lost"]
    assert f"save failed at iteration {it} (checkpoint.npz: File too large)" in child.text("out")
    assert (run / "checkpoint.npz").read_bytes() == good


@pytest.fixture
def small_disk(tmp_path):
    """A 512 KiB tmpfs (root only); unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount") or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


def test_disk_full_then_space_freed(small_disk, book, monkeypatch, capsys):
    home = small_disk / "home"
    monkeypatch.setenv("KAFKARNN_HOME", str(home))
    assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "5"]) == 0
    run = home / "runs" / RUN
    good = (run / "checkpoint.npz").read_bytes()
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as f:                         # fill the disk to the last page
        with contextlib.suppress(OSError):
            while f.write(b"\0" * 4096):
                pass
    child = Watch(spawn("--headless", "--corpus", book, *TINY, "--save-every", "0.05"))
    try:
        first = child.wait_for("save failed at iteration")
        assert "No space left on device" in child.line(first)
        second = child.wait_for("save failed at iteration", after=first + 1)
        assert (run / "checkpoint.npz").read_bytes() == good
        filler.unlink()
        child.wait_for("saved at", after=second)
        child.proc.send_signal(signal.SIGTERM)
        assert child.finish() == 0, child.text("err")
    finally:
        if child.proc.poll() is None:
            child.proc.kill()
            child.finish()
    assert iteration_of(run / "checkpoint.npz") > 5


def test_a_new_run_where_nothing_can_be_written(home, book, capsys):
    home.mkdir(parents=True)
    undo = make_read_only(home)
    if undo is None:
        pytest.skip("cannot make a folder read-only here")
    try:
        assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "3"]) == 2
    finally:
        undo()
    assert error_line(capsys.readouterr().err).startswith(f"kafkarnn: error: cannot open run folder {home}")


def test_a_new_run_on_a_full_disk(small_disk, book, monkeypatch, capsys):
    monkeypatch.setenv("KAFKARNN_HOME", str(small_disk / "home"))
    with open(small_disk / "filler", "wb", buffering=0) as f:
        with contextlib.suppress(OSError):
            while f.write(b"\0" * 4096):
                pass
    assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "3"]) == 2
    line = error_line(capsys.readouterr().err)
    assert line.startswith("kafkarnn: error: cannot ") and "No space left on device" in line
    assert not (small_disk / "home" / "runs" / RUN).exists()          # no half-made run left behind


# ---- 6. numerical faults -------------------------------------------------------------------------

def test_overflowing_weights_never_reach_a_checkpoint(home, book):
    # Adam's decoupled weight decay with lr·wd = 10⁶ multiplies every matrix by -999,999 per step:
    # float32 overflows within a few steps, whatever the gradients say.
    r = cli("--headless", "--corpus", book, *TINY, "--optimizer", "adam", "--lr", "1",
            "--weight-decay", "1e6", "--save-every", "0.0001")
    assert r.returncode == 2
    assert "training diverged: the parameters overflowed" in error_line(r.stderr.split("\n", 1)[1])
    ckpt = home / "runs" / RUN / "checkpoint.npz"
    assert all_finite(ckpt)
    it = iteration_of(ckpt)
    again = cli("--headless", "--run", RUN, "--max-iters", it)          # the last good one resumes
    assert again.returncode == 0, again.stderr
    assert f"resuming at iteration {it:,}" in again.stderr


@pytest.mark.parametrize("fault", ["transient NaN loss", "NaN loss from then on", "inf gradient from then on"])
def test_nan_steps_are_skipped_reported_and_stop_training(home, book, capsys, monkeypatch, fault):
    real = CharModel.loss_and_grads
    calls = {"n": 0}

    def faulty(self, *a, **k):
        loss, grads, state = real(self, *a, **k)
        calls["n"] += 1
        if calls["n"] > 10 and (fault != "transient NaN loss" or calls["n"] <= 12):
            if "inf gradient" in fault:
                grads.flat[3] = np.inf
            else:
                loss = float("nan")
        return loss, grads, state
    monkeypatch.setattr(CharModel, "loss_and_grads", faulty)
    rc = main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "30", "--save-every", "0.0001"])
    out, err = capsys.readouterr()
    ckpt = home / "runs" / RUN / "checkpoint.npz"
    skipped = re.findall(r"skipped a non-finite step at iteration (\d+)", out)
    assert all_finite(ckpt)
    if fault == "transient NaN loss":
        assert rc == 0 and skipped == ["10", "10"]
        assert iteration_of(ckpt) == 30
        return
    assert rc == 2 and skipped == ["10"] * 4
    assert err.splitlines()[-1] == ("kafkarnn: error: training diverged: the loss was not finite for 5 "
                                    "steps in a row at iteration 10; try a lower --lr (the last good "
                                    "checkpoint is kept)")
    assert iteration_of(ckpt) == 10
    monkeypatch.setattr(CharModel, "loss_and_grads", real)
    assert main(["--headless", "--run", RUN, "--max-iters", "12"]) == 0       # it resumes
    assert "resuming at iteration 10" in capsys.readouterr().err


def test_a_non_finite_state_is_never_saved(home, book, capsys):
    assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "5"]) == 0
    ckpt = home / "runs" / RUN / "checkpoint.npz"
    good = ckpt.read_bytes()
    for poison in ("param", "opt"):
        lh = prepare(data_dir=home, corpus_spec=str(book), encoding=None, run_name=RUN, new=False,
                     preset=None, overrides={})
        try:
            t = lh.trainer
            target = t.model.params["Why"] if poison == "param" else next(iter(t.opt.state.values()))
            target.flat[0] = np.nan
            s = Session(t, lh.run, corpus="c", data_dir=str(home), run_meta=lh.run_meta, max_iters=5,
                        save_every=1e9, eval_every=1e9)
            s.send(SaveNow())
            s.run()
        finally:
            lh.lock.unlock()
        failed = [e.text for e in s.events() if e.kind == "save_failed"]
        assert len(failed) >= 2 and all("holds NaN or inf" in f for f in failed)   # SaveNow, the final save
        assert s.snapshot().save_error.startswith("checkpoint.npz could not be saved")
        assert ckpt.read_bytes() == good


# ---- 7. long runs stay bounded (the 20-minute soak is benchmarks/soak.py) ------------------------

def test_undrained_events_and_the_history_stay_bounded(home, book, monkeypatch):
    from kafkarnn.train.session import HISTORY, MAX_EVENTS
    real = CharModel.loss_and_grads
    calls = {"n": 0}

    def every_other_step_nan(self, *a, **k):               # never 5 in a row: training goes on
        loss, grads, state = real(self, *a, **k)
        calls["n"] += 1
        return (float("nan") if calls["n"] % 2 else loss), grads, state
    monkeypatch.setattr(CharModel, "loss_and_grads", every_other_step_nan)
    lh = prepare(data_dir=home, corpus_spec=str(book), encoding=None, run_name=RUN, new=False,
                 preset=None, overrides={"model": "rnn", "hidden": 8, "batch": 1, "seq_len": 4})
    try:
        s = Session(lh.trainer, lh.run, corpus="c", data_dir=str(home), run_meta=lh.run_meta,
                    max_iters=1500, metrics_every=0.0, eval_every=1e9, save_every=1e9)
        assert s.run() == "FINISHED"                        # headless: nobody drains the events
    finally:
        lh.lock.unlock()
    assert len(s.snapshot().history) == HISTORY
    assert len(s.events()) == MAX_EVENTS                     # 1,500 skips and more, the last 1,000 kept
    assert len(lh.run.read_metrics()) >= 1500                # every line readable
