"""Fetching Kafka's Metamorphosis (Project Gutenberg eBook 5200): download, strip the licence header and footer, cache.

Standard library only. Every failure (network, timeout, HTTP status, missing Gutenberg markers) is raised as
`DownloadFailed` with a short one-line reason, so the caller can fall back to the bundled sample texts.
A failure is remembered in the data folder (`remember_failure`) so that the default corpus does not try,
wait and report again at every start: for RETRY_AFTER_S, `recent_failure` says when and why instead.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

DEFAULT_URL = "https://www.gutenberg.org/cache/epub/5200/pg5200.txt"
URL_ENV = "KAFKARNN_METAMORPHOSIS_URL"
TIMEOUT_S = 10.0            # connect timeout, and the longest wait for any one read
DEADLINE_S = 60.0           # the whole download, so a server that drips bytes cannot hold us forever
MAX_BYTES = 20 * 1024 * 1024  # the book is ~140 KB; anything this big is not it
RETRY_AFTER_S = 24 * 3600.0  # after a failed download the default corpus tries again a day later

# Gutenberg wraps each book in "*** START OF THE PROJECT GUTENBERG EBOOK ... ***" / "*** END OF ... ***" lines
# (older files say "THIS" instead of "THE").
_START = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.MULTILINE | re.IGNORECASE)
_END = re.compile(r"^\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG EBOOK", re.MULTILINE | re.IGNORECASE)


class DownloadFailed(Exception):
    """The book could not be fetched; str(exc) is a short reason such as "timed out"."""


def metamorphosis_url() -> str:
    return os.environ.get(URL_ENV) or DEFAULT_URL


def cache_path(data_dir: Path) -> Path:
    return Path(data_dir) / "corpora" / "metamorphosis.txt"


def failure_path(data_dir: Path) -> Path:
    return Path(data_dir) / "corpora" / "metamorphosis.failed"


def remember_failure(data_dir: Path, reason: str) -> None:
    """Note that a download failed now, and why (best effort: a read-only data folder just retries)."""
    try:
        _write_atomic(failure_path(data_dir), _one_line(reason) + "\n")
    except OSError:
        pass


def recent_failure(data_dir: Path) -> tuple[float, str] | None:
    """(seconds ago, reason) of the last failed download if it is under RETRY_AFTER_S old, else None."""
    path = failure_path(data_dir)
    try:
        age = time.time() - path.stat().st_mtime
        reason = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return (max(age, 0.0), reason) if age < RETRY_AFTER_S else None


def forget_failure(data_dir: Path) -> None:
    try:
        failure_path(data_dir).unlink()
    except OSError:
        pass


def strip_gutenberg(text: str) -> str:
    """The book between the START and END marker lines, without leading/trailing blank lines, ending in "\\n".

    Expects "\\n" newlines. Raises DownloadFailed if a marker is missing or nothing lies between them.
    """
    start = _START.search(text)
    if start is None:
        raise DownloadFailed("no Project Gutenberg START marker in the download")
    end = _END.search(text, start.end())
    if end is None:
        raise DownloadFailed("no Project Gutenberg END marker in the download")
    lines = text[start.end():end.start()].split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DownloadFailed("no text between the Project Gutenberg markers")
    return "\n".join(lines) + "\n"


def download(url: str, log: Callable[[str], None]) -> bytes:
    """The raw bytes at `url`, with a start and an end line through `log`. Raises DownloadFailed."""
    log(f"downloading Metamorphosis from {url} …")
    deadline = time.monotonic() + DEADLINE_S
    chunks, size = [], 0
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            while True:
                chunk = response.read(64 * 1024)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_BYTES:
                    raise DownloadFailed(f"the download is larger than {MAX_BYTES // (1024 * 1024)} MB")
                if time.monotonic() > deadline:
                    raise DownloadFailed(f"the download took longer than {DEADLINE_S:.0f} s")
    except urllib.error.HTTPError as exc:
        raise DownloadFailed(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise DownloadFailed("timed out") from None
        raise DownloadFailed(_one_line(getattr(reason, "strerror", None) or str(reason))) from None
    except (socket.timeout, TimeoutError):
        raise DownloadFailed("timed out") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise DownloadFailed(_one_line(str(exc) or type(exc).__name__)) from None
    log(f"downloading Metamorphosis from {url} … {size // 1024} KB done")
    return b"".join(chunks)


def fetch_metamorphosis(data_dir: Path | None, log: Callable[[str], None]) -> tuple[str, str]:
    """(text, url): download and strip the book, caching it under data_dir when one is given. Raises DownloadFailed."""
    url = metamorphosis_url()
    raw = download(url, log)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DownloadFailed("the download is not UTF-8 text") from None
    del raw
    text = strip_gutenberg(text.replace("\r\n", "\n").replace("\r", "\n"))
    if data_dir is not None:
        try:
            _write_atomic(cache_path(data_dir), text)
        except OSError as exc:
            # Not being able to cache is no reason to refuse the book we already have.
            log(f"could not cache Metamorphosis at {cache_path(data_dir)}: {exc.strerror or exc}")
    return text, url


def _write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, then os.replace, so a crash never leaves half a book."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".metamorphosis-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _one_line(text: str) -> str:
    return " ".join(text.split())
