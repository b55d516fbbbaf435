"""Damaged and strange corpora: random bytes in many encodings, NUL bytes, huge lines, unreadable
files, loops and FIFOs in a folder, a file that changes while it is read. Each loads exactly
the text it holds, or fails in one line.
"""

import codecs
import hashlib
import json
import os
import re
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from faultkit import cli, error_line, deadline

from kafkarnn.engine.vocab import Vocab
from kafkarnn.main import main
import kafkarnn.train.corpus as corpus_mod

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals, flock and rlimits")


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
