"""The training corpus: text from a file, a folder, Kafka's Metamorphosis or the bundled samples, as character ids.

`load_corpus(spec)` reads and decodes the text, builds the vocabulary and encodes every character, holding as few
full copies as it can (bytes are dropped once decoded, text once encoded). Anything wrong with the user's input
becomes a one-line `CorpusError` that names the path.
"""

from __future__ import annotations

import codecs
import hashlib
import importlib.resources
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from kafkarnn.engine.vocab import Vocab
from kafkarnn.errors import CorpusError
from kafkarnn.train import gutenberg

SAMPLE_SPEC = "sample-texts"
METAMORPHOSIS_SPEC = "metamorphosis"
SNIFF_BYTES = 8192   # a NUL byte in this many leading bytes means "binary"
READ_TRIES = 3       # reads of a file that changes while it is read, before giving up
MAX_SKIP_LINES = 5   # more skipped files than this are reported as one line with counts


@dataclass(frozen=True, eq=False)
class Corpus:
    """A loaded corpus. `data` is read-only; `fingerprint` identifies the exact text and vocabulary."""

    name: str            # short display name: "metamorphosis", or the file/dir name given
    source: str          # where the text came from: absolute path, URL, or "bundled sample texts"
    vocab: Vocab
    data: np.ndarray     # every character id, dtype vocab.dtype, 1-D
    fingerprint: dict    # {"length": n, "sha256": hex of sha256(vocab.chars utf-8 + data bytes)}
    notice: str | None   # a one-line notice for the user (e.g. offline fallback), else None

    def split(self, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """(train, val) as views: val is the last round(len*val_fraction) chars; val_fraction 0 gives an empty val."""
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        cut = len(self.data) - round(len(self.data) * val_fraction)
        return self.data[:cut], self.data[cut:]


def load_corpus(spec: str | None, *, encoding: str = "utf-8", data_dir: Path | None = None,
                log: Callable[[str], None] | None = None) -> Corpus:
    """Load `spec`: a file, a folder of text files, None/"metamorphosis", or "sample-texts"."""
    log = log or (lambda message: None)
    if spec is None or spec == METAMORPHOSIS_SPEC:
        return _load_metamorphosis(data_dir, log, retry=spec == METAMORPHOSIS_SPEC)
    if spec == SAMPLE_SPEC:
        return _load_bundled(None)
    if not spec.strip():
        raise CorpusError("corpus not found: '' (an empty path)")
    codec = _codec_name(encoding)
    path = Path(os.path.abspath(os.path.expanduser(spec)))
    shown = _show(Path(os.path.expanduser(spec)))
    if path.is_dir():
        text = _read_dir(path, shown, codec, log)
    elif path.exists():
        text = _read_file(path, shown, codec)
    else:
        raise CorpusError(f"corpus not found: {shown}")
    return _build(text, name=path.name or str(path), source=str(path), shown=shown)


def bundled_texts_dir() -> Path:
    """The sample texts: inside the installed package first, else `sample_texts/` of a source checkout."""
    try:
        packaged = importlib.resources.files("kafkarnn") / "sample_texts"
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, OSError, TypeError):
        pass
    return Path(__file__).resolve().parents[2] / "sample_texts"


# --- the special corpora ---------------------------------------------------------------------------------------

def _load_metamorphosis(data_dir: Path | None, log: Callable[[str], None], retry: bool) -> Corpus:
    """The cached book, else a download; a failure falls back to the bundled texts. Without `retry`
    (the default corpus) a download that failed less than a day ago is not tried again."""
    if data_dir is not None:
        cached = gutenberg.cache_path(data_dir)
        if cached.is_file():
            text = _read_file(cached, _show(cached), "utf-8-sig")
            return _build(text, name=METAMORPHOSIS_SPEC, source=os.path.abspath(cached), shown=_show(cached))
        failed = None if retry else gutenberg.recent_failure(data_dir)
        if failed is not None:
            ago, reason = failed
            notice = (f"offline: Metamorphosis could not be downloaded {_ago(ago)} ago ({reason}); training on "
                      f"the bundled sample texts (tried again after a day, or now with --corpus metamorphosis)")
            return _load_bundled(notice, reason=reason)
    try:
        text, url = gutenberg.fetch_metamorphosis(data_dir, log)
    except gutenberg.DownloadFailed as exc:
        if data_dir is not None:
            gutenberg.remember_failure(data_dir, str(exc))
        notice = (f"offline: could not download Metamorphosis ({exc}); "
                  "training on the bundled sample texts instead")
        return _load_bundled(notice, reason=str(exc))
    if data_dir is not None:
        gutenberg.forget_failure(data_dir)
    return _build(text, name=METAMORPHOSIS_SPEC, source=url, shown=url)


def _ago(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def _load_bundled(notice: str | None, reason: str | None = None) -> Corpus:
    folder = bundled_texts_dir()
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix == ".txt" and p.is_file()) if folder.is_dir() else []
    except OSError:
        files = []
    if not files:
        lead = f"could not download Metamorphosis ({reason}) and " if reason else ""
        raise CorpusError(f"{lead}the bundled sample texts are missing (looked in {_show(folder)})")
    pieces = [_ending_in_newline(_read_file(p, _show(p), "utf-8-sig")) for p in files]
    return _build("".join(pieces), name=SAMPLE_SPEC, source="bundled sample texts", shown=_show(folder), notice=notice)


# --- reading files and folders ---------------------------------------------------------------------------------

def _codec_name(encoding: str) -> str:
    """The codec to decode with; "utf-8" becomes "utf-8-sig" so a byte-order mark is dropped."""
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError):
        raise CorpusError(f"unknown encoding {encoding!r}") from None
    if getattr(info, "_is_text_encoding", True) is False:
        raise CorpusError(f"unknown encoding {encoding!r} (it is not a text encoding)")
    return "utf-8-sig" if info.name == "utf-8" else info.name


class _FileError(CorpusError):
    """A CorpusError about one file, with a short reason for the "skipped" line when the file is in a folder."""

    def __init__(self, message: str, short: str):
        super().__init__(message)
        self.short = short


class _Changing(Exception):
    """A regular file changed while it was read, every time it was read."""


def _read_bytes(path: Path) -> bytes:
    """The bytes of one version of the file: a read during which size or times moved is repeated."""
    for _ in range(READ_TRIES):
        with open(path, "rb") as f:
            before = os.fstat(f.fileno())
            raw = f.read()
            after = os.fstat(f.fileno())
        if not stat.S_ISREG(after.st_mode) or (
                len(raw) == after.st_size and
                (before.st_size, before.st_mtime_ns, before.st_ctime_ns) ==
                (after.st_size, after.st_mtime_ns, after.st_ctime_ns)):
            return raw
    raise _Changing()


def _read_file(path: Path, shown: str, codec: str) -> str:
    """Decoded text of one file with "\\n" newlines. Raises CorpusError (binary, undecodable, unreadable)."""
    try:
        raw = _read_bytes(path)
    except OSError as exc:
        raise _FileError(f"cannot read {shown}: {_os_reason(exc)}", _os_reason(exc)) from None
    except _Changing:
        raise _FileError(f"{shown} kept changing while it was read; try again once it is complete",
                         "changing while read") from None
    # UTF-16/32 text is full of NUL bytes, so the binary sniff only applies to other encodings.
    if not codec.startswith(("utf-16", "utf-32")) and b"\0" in raw[:SNIFF_BYTES]:
        raise _FileError(f"{shown} looks binary (it contains NUL bytes), not text", "binary")
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as exc:
        # utf-8-sig counts offsets after the byte-order mark; report them from the start of the file.
        skipped = len(codecs.BOM_UTF8) if codec == "utf-8-sig" and raw.startswith(codecs.BOM_UTF8) else 0
        byte = raw[skipped + exc.start]
        label = "UTF-8" if codec == "utf-8-sig" else codec
        hint = "" if codec == "iso8859-1" else "; try --encoding latin-1"
        offset = skipped + exc.start
        raise _FileError(f"{shown} is not valid {label} (byte 0x{byte:02x} at offset {offset}){hint}",
                         f"not valid {label}") from None
    except UnicodeError as exc:            # a codec that fails without an offset (e.g. "undefined")
        raise _FileError(f"{shown} cannot be decoded as {codec} ({_one_line(str(exc))})",
                         f"not valid {codec}") from None
    del raw
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")   # like Python's text mode
    return text


def _read_dir(root: Path, shown: str, codec: str, log: Callable[[str], None]) -> str:
    """Every text file below `root`, in sorted relative-path order, each ending in "\\n"; skips are logged."""
    root_errors: list[OSError] = []
    skipped: list[tuple[str, str]] = []   # (relative path, reason)

    def on_error(exc: OSError) -> None:
        if os.path.abspath(exc.filename or "") == str(root):
            root_errors.append(exc)
        else:
            skipped.append((os.path.relpath(exc.filename or "?", root), "unreadable folder"))

    relpaths = []
    for folder, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = Path(folder).relative_to(root)
        relpaths += [rel / f for f in filenames if not f.startswith(".")]
    if root_errors:
        raise CorpusError(f"cannot read {shown}: {_os_reason(root_errors[0])}")
    relpaths.sort(key=lambda p: p.parts)

    pieces = []
    for rel in relpaths:
        path = root / rel
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                skipped.append((str(rel), "not a regular file"))   # fifos and devices would block or never end
                continue
            text = _read_file(path, str(rel), codec)
        except OSError as exc:   # e.g. a broken symlink or a symlink loop
            skipped.append((str(rel), _os_reason(exc)))
            continue
        except _FileError as exc:
            skipped.append((str(rel), exc.short))
            continue
        if text:
            pieces.append(text)
            if not text.endswith("\n"):
                pieces.append("\n")
    _log_skipped(skipped, shown, log)
    if not pieces:
        raise CorpusError(f"no text files found under {shown}")
    return "".join(pieces)


def _log_skipped(skipped: list[tuple[str, str]], shown: str, log: Callable[[str], None]) -> None:
    if len(skipped) <= MAX_SKIP_LINES:
        for rel, reason in skipped:
            log(f"skipped {_show(rel)} ({reason})")
        return
    counts: dict[str, int] = {}
    for _, reason in skipped:
        counts[reason] = counts.get(reason, 0) + 1
    summary = ", ".join(f"{n} {reason}" for reason, n in counts.items())
    examples = ", ".join(_show(rel) for rel, _ in skipped[:3])
    log(f"skipped {len(skipped)} files under {shown}: {summary} (e.g. {examples})")


# --- from text to ids ------------------------------------------------------------------------------------------

def _build(text: str, *, name: str, source: str, shown: str, notice: str | None = None) -> Corpus:
    """Vocabulary, ids and fingerprint of `text`; the ids are the only copy of the text this adds."""
    if not text:
        raise CorpusError(f"{shown} is empty")
    vocab = Vocab.from_text(text)
    if len(vocab) < 2:
        raise CorpusError(f"{shown} has only one distinct character ({vocab.chars!r}); a model needs at least 2")
    try:
        chars_utf8 = vocab.chars.encode("utf-8")
    except UnicodeEncodeError:
        raise CorpusError(f"{shown} decodes to invalid characters (lone surrogates)") from None
    data = vocab.encode(text)
    data.flags.writeable = False   # the fingerprint stays true to the data
    digest = hashlib.sha256(chars_utf8)
    digest.update(memoryview(data).cast("B"))   # the ids' bytes, without a copy
    fingerprint = {"length": int(len(data)), "sha256": digest.hexdigest()}
    return Corpus(name=name, source=source, vocab=vocab, data=data, fingerprint=fingerprint, notice=notice)


def _ending_in_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    return _one_line(exc.strerror or str(exc) or type(exc).__name__).lower()


def _show(path: Path | str) -> str:
    """A path as one printable line (odd characters, newlines included, are escaped)."""
    text = str(path)
    return text if text.isprintable() else repr(text)


def _one_line(text: str) -> str:
    return " ".join(text.split())
