"""Tests for kafkarnn.train.corpus and kafkarnn.train.gutenberg: reading, decoding, errors, splitting, downloading."""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from kafkarnn.errors import CorpusError
from kafkarnn.train import corpus as corpus_mod
from kafkarnn.train import gutenberg
from kafkarnn.train.corpus import Corpus, bundled_texts_dir, load_corpus

FAKE_BOOK = (
    "\ufeffThe Project Gutenberg eBook of Metamorphosis\r\n"
    "This eBook is for the use of anyone anywhere.\r\n"
    "\r\n"
    "*** START OF THE PROJECT GUTENBERG EBOOK METAMORPHOSIS ***\r\n"
    "\r\n"
    "\r\n"
    "One morning, when Gregor Samsa woke from troubled dreams,\r\n"
    "he found himself transformed in his bed into a horrible vermin.\r\n"
    "\r\n"
    "*** END OF THE PROJECT GUTENBERG EBOOK METAMORPHOSIS ***\r\n"
    "Section 1. General Terms of Use and Redistributing\r\n"
)
FAKE_BODY = ("One morning, when Gregor Samsa woke from troubled dreams,\n"
             "he found himself transformed in his bed into a horrible vermin.\n")


def text_of(c: Corpus) -> str:
    return c.vocab.decode(c.data)


def error_of(spec, **kwargs) -> str:
    with pytest.raises(CorpusError) as info:
        load_corpus(str(spec), **kwargs)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    return message


@pytest.fixture
def samples(tmp_path, monkeypatch) -> Path:
    """A stand-in for the bundled sample texts, so tests do not depend on the real ones."""
    folder = tmp_path / "samples"
    folder.mkdir()
    (folder / "b.txt").write_text("second sample", encoding="utf-8")
    (folder / "a.txt").write_text("first sample\n", encoding="utf-8")
    (folder / "README.md").write_text("not part of the corpus", encoding="utf-8")
    monkeypatch.setattr(corpus_mod, "bundled_texts_dir", lambda: folder)
    return folder


# --- files ------------------------------------------------------------------------------------------------------

def test_file_round_trip(tmp_path):
    text = "Als Gregor Samsa eines Morgens aus unruhigen Träumen erwachte…\nzweite Zeile"
    path = tmp_path / "kafka.txt"
    path.write_text(text, encoding="utf-8")
    c = load_corpus(str(path))
    assert text_of(c) == text
    assert c.name == "kafka.txt"
    assert c.source == str(path.resolve())
    assert c.notice is None
    assert c.data.ndim == 1 and c.data.dtype == c.vocab.dtype == np.uint8
    assert c.vocab.chars == "".join(sorted(set(text)))


def test_bom_is_dropped(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfhello")
    assert text_of(load_corpus(str(path))) == "hello"


def test_crlf_and_lone_cr_become_newlines(tmp_path):
    path = tmp_path / "dos.txt"
    path.write_bytes(b"one\r\ntwo\rthree\n")
    assert text_of(load_corpus(str(path))) == "one\ntwo\nthree\n"


def test_latin1_needs_the_encoding(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("Käfer über".encode("latin-1"))
    message = error_of(path)
    assert str(path) in message and "not valid UTF-8" in message
    assert "byte 0xe4 at offset 1" in message and "--encoding latin-1" in message
    assert text_of(load_corpus(str(path), encoding="latin-1")) == "Käfer über"


def test_undecodable_offset_counts_the_bom(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"\xef\xbb\xbfab\xff")
    assert "byte 0xff at offset 5" in error_of(path)


def test_utf16_is_not_mistaken_for_binary(tmp_path):
    path = tmp_path / "wide.txt"
    path.write_bytes("wide text".encode("utf-16"))
    assert text_of(load_corpus(str(path), encoding="utf-16")) == "wide text"


def test_many_distinct_characters_use_uint16(tmp_path):
    text = "".join(chr(0x400 + i) for i in range(300))
    path = tmp_path / "wide.txt"
    path.write_text(text, encoding="utf-8")
    c = load_corpus(str(path))
    assert len(c.vocab) == 300 and c.data.dtype == np.uint16
    assert text_of(c) == text


# --- errors -----------------------------------------------------------------------------------------------------

def test_missing_path(tmp_path):
    path = tmp_path / "nope.txt"
    assert error_of(path) == f"corpus not found: {path}"


def test_binary_file(tmp_path):
    path = tmp_path / "image.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert error_of(path) == f"{path} looks binary (it contains NUL bytes), not text"


def test_empty_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    assert error_of(path) == f"{path} is empty"


def test_one_distinct_character(tmp_path):
    path = tmp_path / "aaa.txt"
    path.write_text("aaaaaaaa")
    message = error_of(path)
    assert str(path) in message and "at least 2" in message


def test_empty_directory(tmp_path):
    folder = tmp_path / "nothing"
    folder.mkdir()
    (folder / ".hidden.txt").write_text("hidden text")
    assert error_of(folder) == f"no text files found under {folder}"


def test_unknown_encoding(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("ab")
    assert error_of(path, encoding="xyz") == "unknown encoding 'xyz'"


def make_unreadable(path: Path, monkeypatch) -> None:
    """chmod 000, and for root (who can read anything) make the read itself fail."""
    path.chmod(0)
    if os.access(path, os.R_OK):
        real = corpus_mod._read_bytes

        def deny(p):
            if Path(p) == path:
                raise PermissionError(13, "Permission denied", str(p))
            return real(p)
        monkeypatch.setattr(corpus_mod, "_read_bytes", deny)


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "secret.txt"
    path.write_text("top secret")
    make_unreadable(path, monkeypatch)
    try:
        assert error_of(path) == f"cannot read {path}: permission denied"
    finally:
        path.chmod(0o644)


def test_path_with_newline_stays_one_line(tmp_path):
    message = error_of(tmp_path / "two\nlines.txt")
    assert message.startswith("corpus not found: ")


# --- directories ------------------------------------------------------------------------------------------------

def test_directory_order_and_skips(tmp_path, monkeypatch):
    root = tmp_path / "books"
    (root / "b").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "a.txt").write_text("A")                     # no final newline: one is added
    (root / "b" / "c.txt").write_text("C\n")
    (root / "b" / "d.bin").write_bytes(b"D\x00\x01")      # binary: skipped
    (root / "b" / "e.txt").write_bytes(b"\xff\xfe bad")   # not UTF-8: skipped
    (root / "b" / "f.txt").write_text("F\n")
    (root / "empty.txt").write_text("")
    (root / "z.txt").write_text("Z")
    (root / ".hidden.txt").write_text("hidden")
    (root / ".git" / "config").write_text("git")
    (root / "locked.txt").write_text("L")
    make_unreadable(root / "locked.txt", monkeypatch)
    logged = []
    try:
        c = load_corpus(str(root), log=logged.append)
    finally:
        (root / "locked.txt").chmod(0o644)
    assert text_of(c) == "A\nC\nF\nZ\n"
    assert c.name == "books" and c.source == str(root.resolve())
    assert len(logged) == 3
    assert any("d.bin" in line and "binary" in line for line in logged)
    assert any("e.txt" in line and "UTF-8" in line for line in logged)
    assert any("locked.txt" in line and "permission denied" in line for line in logged)
    assert not any("hidden" in line or ".git" in line for line in logged)


def test_many_skips_collapse_to_one_line(tmp_path):
    for i in range(8):
        (tmp_path / f"junk{i}.bin").write_bytes(b"\x00junk")
    (tmp_path / "real.txt").write_text("real text")
    logged = []
    assert text_of(load_corpus(str(tmp_path), log=logged.append)) == "real text\n"
    assert len(logged) == 1 and "8" in logged[0] and "binary" in logged[0]


def test_only_binary_files_in_directory(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"\x00\x01")
    assert error_of(tmp_path) == f"no text files found under {tmp_path}"


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_symlink_loops_do_not_hang(tmp_path):
    root = tmp_path / "loopy"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "text.txt").write_text("loop free")
    (root / "sub" / "up").symlink_to(root, target_is_directory=True)   # a folder loop
    (root / "self").symlink_to(root / "self")                          # a link to itself
    (root / "dangling.txt").symlink_to(root / "missing.txt")
    started = time.monotonic()
    c = load_corpus(str(root), log=lambda line: None)
    assert time.monotonic() - started < 5
    assert text_of(c) == "loop free\n"


# --- split and fingerprint ----------------------------------------------------------------------------------------

def test_split_sizes(tmp_path):
    path = tmp_path / "ten.txt"
    path.write_text("abcdefghij" * 10)
    c = load_corpus(str(path))
    train, val = c.split(0.1)
    assert len(train) == 90 and len(val) == 10
    assert np.shares_memory(train, c.data) and np.shares_memory(val, c.data)
    assert text_of(c)[-10:] == c.vocab.decode(val)
    train, val = c.split(0.0)
    assert len(train) == 100 and len(val) == 0
    assert len(c.split(0.333)[1]) == 33
    with pytest.raises(ValueError):
        c.split(1.0)


def test_fingerprint(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("the quick brown fox")
    b.write_text("the quick brown fix")
    ca, cb = load_corpus(str(a)), load_corpus(str(b))
    expected = hashlib.sha256(ca.vocab.chars.encode("utf-8") + ca.data.tobytes()).hexdigest()
    assert ca.fingerprint == {"length": 19, "sha256": expected}
    assert ca.fingerprint["sha256"] != cb.fingerprint["sha256"]
    assert load_corpus(str(a)).fingerprint == ca.fingerprint


# --- bundled texts and Metamorphosis ------------------------------------------------------------------------------

def test_bundled_texts_dir_is_a_path():
    assert bundled_texts_dir().name == "sample_texts"


def test_sample_texts_spec(samples):
    c = load_corpus("sample-texts")
    assert text_of(c) == "first sample\nsecond sample\n"   # README.md ignored, sorted, newline-terminated
    assert c.name == "sample-texts" and c.source == "bundled sample texts" and c.notice is None


class _BookHandler(http.server.BaseHTTPRequestHandler):
    body = FAKE_BOOK.encode("utf-8")

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def book_server():
    server = http.server.HTTPServer(("127.0.0.1", 0), _BookHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/pg5200.txt"
    server.shutdown()
    server.server_close()


def test_metamorphosis_downloads_strips_and_caches(tmp_path, monkeypatch, book_server, samples):
    monkeypatch.setenv(gutenberg.URL_ENV, book_server)
    logged = []
    c = load_corpus(None, data_dir=tmp_path / "data", log=logged.append)
    assert text_of(c) == FAKE_BODY
    assert c.name == "metamorphosis" and c.source == book_server and c.notice is None
    assert logged and all("\n" not in line for line in logged)
    assert any("downloading Metamorphosis" in line for line in logged)
    cached = tmp_path / "data" / "corpora" / "metamorphosis.txt"
    assert cached.read_text(encoding="utf-8") == FAKE_BODY
    assert [p.name for p in cached.parent.iterdir()] == ["metamorphosis.txt"]   # no temporary files left

    # The second load reads the cache: the server's address no longer answers.
    monkeypatch.setenv(gutenberg.URL_ENV, "http://127.0.0.1:9/x")
    again = load_corpus("metamorphosis", data_dir=tmp_path / "data")
    assert again.source == str(cached) and again.notice is None
    assert again.fingerprint == c.fingerprint


def test_metamorphosis_without_data_dir_does_not_cache(tmp_path, monkeypatch, book_server, samples):
    monkeypatch.setenv(gutenberg.URL_ENV, book_server)
    assert text_of(load_corpus(None)) == FAKE_BODY


def test_offline_falls_back_to_sample_texts(tmp_path, monkeypatch, samples):
    monkeypatch.setenv(gutenberg.URL_ENV, "http://127.0.0.1:9/x")   # the discard port: nothing listens
    started = time.monotonic()
    c = load_corpus(None, data_dir=tmp_path / "data")
    assert time.monotonic() - started < 5
    assert c.name == "sample-texts" and c.source == "bundled sample texts"
    assert c.notice.startswith("offline: could not download Metamorphosis (")
    assert c.notice.endswith("); training on the bundled sample texts instead")
    assert "\n" not in c.notice
    assert text_of(c) == "first sample\nsecond sample\n"
    assert not (tmp_path / "data" / "corpora" / "metamorphosis.txt").exists()


def test_download_without_markers_counts_as_failed(tmp_path, monkeypatch, book_server, samples):
    monkeypatch.setattr(_BookHandler, "body", b"<html>Access denied</html>")
    monkeypatch.setenv(gutenberg.URL_ENV, book_server)
    c = load_corpus(None, data_dir=tmp_path)
    assert c.name == "sample-texts" and "START marker" in c.notice
    assert not (tmp_path / "corpora" / "metamorphosis.txt").exists()


def test_a_silent_server_times_out(tmp_path, monkeypatch, samples):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)   # connections complete, but nothing is ever sent back
    monkeypatch.setattr(gutenberg, "TIMEOUT_S", 0.2)
    monkeypatch.setenv(gutenberg.URL_ENV, f"http://127.0.0.1:{silent.getsockname()[1]}/x")
    try:
        c = load_corpus(None, data_dir=tmp_path)
    finally:
        silent.close()
    assert c.name == "sample-texts" and "(timed out)" in c.notice


def test_strip_gutenberg_accepts_the_older_this_marker():
    text = ("header\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\n\nbody\n\n"
            "*** END OF THIS PROJECT GUTENBERG EBOOK X ***\nlicence\n")
    assert gutenberg.strip_gutenberg(text) == "body\n"


@pytest.mark.slow
def test_100_mb_loads_fast_and_lean(tmp_path):
    path = tmp_path / "big.txt"
    rng = np.random.default_rng(0)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz .,\n", dtype=np.uint8)
    with open(path, "wb") as f:
        for _ in range(10):
            f.write(letters[rng.integers(0, len(letters), 10_000_000)].tobytes())
    # A fresh process with tracemalloc (numpy reports its buffers to it) measures this load's peak alone.
    code = ("import sys, time, tracemalloc; from kafkarnn.train.corpus import load_corpus; "
            "tracemalloc.start(); t = time.monotonic(); c = load_corpus(sys.argv[1]); "
            "print(time.monotonic() - t, tracemalloc.get_traced_memory()[1], len(c.data))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout.split()
    seconds, peak, length = float(out[0]), int(out[1]), int(out[2])
    assert length == 100_000_000
    assert seconds < 20
    assert peak < 4 * 100_000_000


def test_a_failed_download_is_remembered_for_a_day(tmp_path, monkeypatch, book_server, samples):
    data = tmp_path / "data"
    monkeypatch.setenv(gutenberg.URL_ENV, "http://127.0.0.1:9/x")   # nothing listens: it fails
    first = []
    load_corpus(None, data_dir=data, log=first.append)
    assert any("downloading Metamorphosis" in line for line in first)
    marker = gutenberg.failure_path(data)
    assert marker.is_file() and marker.stat().st_mode & 0o077 == 0

    # the server answers now, but the default corpus does not ask within the day
    monkeypatch.setenv(gutenberg.URL_ENV, book_server)
    again = []
    c = load_corpus(None, data_dir=data, log=again.append)
    assert again == [] and c.name == "sample-texts"
    assert c.notice.startswith("offline: Metamorphosis could not be downloaded 0 min ago (")
    assert "--corpus metamorphosis" in c.notice and "\n" not in c.notice

    # a day later it tries again, and a success forgets the failure
    day_ago = marker.stat().st_mtime - gutenberg.RETRY_AFTER_S - 1
    os.utime(marker, (day_ago, day_ago))
    assert text_of(load_corpus(None, data_dir=data)) == FAKE_BODY
    assert not marker.exists()


def test_asking_for_metamorphosis_by_name_tries_at_once(tmp_path, monkeypatch, book_server, samples):
    data = tmp_path / "data"
    gutenberg.remember_failure(data, "timed out")
    assert gutenberg.recent_failure(data)[1] == "timed out"
    monkeypatch.setenv(gutenberg.URL_ENV, book_server)
    assert load_corpus(None, data_dir=data).name == "sample-texts"
    assert text_of(load_corpus("metamorphosis", data_dir=data)) == FAKE_BODY
