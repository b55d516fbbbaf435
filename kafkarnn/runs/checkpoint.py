"""Checkpoint files: named NumPy arrays plus JSON metadata in one uncompressed .npz, written atomically.

Layout: one `.npy` member per array under its own name ("param/Wxh", "opt/m/Wxh", "state/h0", ...)
and one member `__meta__`, the UTF-8 bytes of `json.dumps(meta)` as a uint8 array. Names starting
with "__" are reserved. No pickles: saving refuses object arrays, loading uses `allow_pickle=False`.
The metadata also records each array's CRC-32 under its name (`__crc32__`), so an array stored
under another name (two same-shaped matrices swapped, say) is caught, not loaded as the other one.

Saving goes to a temporary file in the same folder, is flushed and fsynced, then moved over the
target with `os.replace`, so a crash or a full disk leaves the previous checkpoint as it was.
Loading reads and CRC-checks every byte up front, and turns any problem into one `CheckpointError`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from kafkarnn.errors import CheckpointError

FORMAT_VERSION = 2       # 2: weights in column form, (out, in), as min-char-rnn keeps them
OLDEST_READABLE = 2      # format 1 (row form, h·W) cannot be read as format 2
META_NAME = "__meta__"
CRC_KEY = "__crc32__"    # in the metadata: {array name: CRC-32 of its bytes in C order}
ALLOWED_KINDS = "biufc"  # bool, int, uint, float, complex: plain numbers only
HINT = "; the run folder is untouched — pass --new to start a fresh run"
PRIVATE_FILE = 0o600     # what a run writes is its owner's alone (a model can reveal its text)
PRIVATE_DIR = 0o700      # and so are the data folder's folders (runs, caches)


# ---- atomic writes ----------------------------------------------------------------------------

def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call `write(f)` on a temporary file beside `path`, fsync it, and move it over `path`.

    On any exception the temporary file is removed, `path` keeps its old contents, and the
    exception propagates unchanged (an OSError such as ENOSPC for disk problems).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE), "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def kept_array(path: Path, fits: Callable[[np.ndarray], bool]) -> np.ndarray | None:
    """The array at `path`, memory-mapped, when one is there that reads and `fits`; else None."""
    with contextlib.suppress(OSError, ValueError):
        a = np.load(path, mmap_mode="r", allow_pickle=False)
        if fits(a):
            return a
    return None


def cached_array(path: Path, fits: Callable[[np.ndarray], bool],
                 compute: Callable[[], np.ndarray]) -> tuple[np.ndarray, bool]:
    """An array kept in the data folder between processes: memory-mapped from `path` when a sound
    one is there (`kept_array`), else `compute()`d and written there atomically, the owner's
    alone (a write that fails leaves it in memory only). Returns (array, computed)."""
    a = kept_array(path, fits)
    if a is not None:
        return a, False
    a = compute()
    with contextlib.suppress(OSError):
        path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        atomic_write(path, lambda f: np.save(f, a, allow_pickle=False))
    return a, True


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable. Some filesystems refuse fsync on a folder; the file is in place anyway."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---- save -------------------------------------------------------------------------------------

def save_checkpoint(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write `arrays` and `meta` (plus "format_version") to `path` atomically.

    Raises ValueError for a bad name or a non-numeric (object, str, void) array, TypeError for
    metadata JSON cannot encode (both before anything is written), and OSError for disk problems.
    """
    checked: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"checkpoint array name must be a non-empty string, got {name!r}")
        if name.startswith("__"):
            raise ValueError(f"checkpoint array name {name!r} is reserved (starts with '__')")
        arr = np.asarray(value)
        if arr.dtype.kind not in ALLOWED_KINDS:
            raise ValueError(f"checkpoint array {name!r} has dtype {arr.dtype}; only numeric arrays can be saved")
        checked[name] = arr
    stored_meta = {**meta, "format_version": FORMAT_VERSION,
                   CRC_KEY: {name: _crc32(arr) for name, arr in checked.items()}}
    meta_bytes = np.frombuffer(json.dumps(stored_meta).encode("utf-8"), dtype=np.uint8)

    def write(f: BinaryIO) -> None:
        # the same members np.savez writes: uncompressed, zip64 so large arrays are fine
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, arr in [*checked.items(), (META_NAME, meta_bytes)]:
                with zf.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, arr, allow_pickle=False)

    atomic_write(Path(path), write)


# ---- load -------------------------------------------------------------------------------------

def load_checkpoint(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read every array and the metadata from `path`. Any problem raises a one-line CheckpointError."""
    path = Path(path)
    try:
        return _load(path)
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except (zipfile.BadZipFile, EOFError, zlib.error, struct.error, KeyError) as e:
        raise _corrupt(path, "truncated or damaged zip", e) from None
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise CheckpointError(f"checkpoint {path} holds pickled objects, which kafkarnn never writes{HINT}") from None
        raise _corrupt(path, "damaged array data", e) from None
    except (PermissionError, IsADirectoryError) as e:
        raise CheckpointError(f"checkpoint {path} cannot be read ({_one_line(e.strerror or e)})") from None
    except OSError as e:  # e.g. EINVAL from a seek to a damaged offset
        if e.errno == errno.EIO:
            raise CheckpointError(f"checkpoint {path} cannot be read (I/O error from the disk)") from None
        raise _corrupt(path, "damaged zip offsets", e) from None
    except Exception as e:  # last resort: numpy or zipfile failing in a way not listed above
        raise _corrupt(path, "unreadable", e) from None


def _load(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":
        raise CheckpointError(f"checkpoint {path} is not an .npz archive (damaged, or not a checkpoint){HINT}")
    with np.load(path, allow_pickle=False) as npz:
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise CheckpointError(f"checkpoint {path} is not an .npz archive{HINT}")
        # 1) read every member through zipfile's CRC check, so a flipped byte anywhere is caught
        bad = npz.zip.testzip()
        if bad is not None:
            raise CheckpointError(f"checkpoint {path} is corrupt (member {bad!r} fails its CRC or header check){HINT}")
        # 2) parse every array now, so truncation or damage shows here and not mid-training
        arrays = {}
        for name in npz.files:
            arr = npz[name]
            if not isinstance(arr, np.ndarray):
                raise CheckpointError(f"checkpoint {path} is corrupt (member {name!r} is not a .npy array){HINT}")
            arrays[name] = arr
    if META_NAME not in arrays:
        raise CheckpointError(f"checkpoint {path} has no {META_NAME} record (not a kafkarnn checkpoint){HINT}")
    meta = _parse_meta(path, arrays.pop(META_NAME))
    for name, arr in arrays.items():
        if arr.dtype.kind not in ALLOWED_KINDS:
            raise CheckpointError(f"checkpoint {path}: array {name!r} has unsupported dtype {arr.dtype}{HINT}")
    _check_crcs(path, arrays, meta.pop(CRC_KEY, None))
    return arrays, meta


def _crc32(arr: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(arr).reshape(-1).view(np.uint8))


def _check_crcs(path: Path, arrays: dict[str, np.ndarray], crcs: object) -> None:
    """Each array must be the one saved under its name (files without the record predate it)."""
    if crcs is None:
        return
    if not isinstance(crcs, dict) or set(crcs) != set(arrays):
        raise CheckpointError(f"checkpoint {path} is corrupt (its arrays do not match the saved list){HINT}")
    for name, arr in arrays.items():
        if crcs[name] != _crc32(arr):
            raise CheckpointError(f"checkpoint {path} is corrupt (array {name!r} is not the one saved "
                                  f"under that name: damaged, or swapped with another){HINT}")


def _parse_meta(path: Path, raw: np.ndarray) -> dict:
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(f"checkpoint {path} is corrupt (metadata is not a byte array){HINT}")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CheckpointError(f"checkpoint {path} is corrupt (metadata is not valid JSON){HINT}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {path} is corrupt (metadata is not a JSON object){HINT}")
    version = meta.get("format_version")
    if version is None:
        raise CheckpointError(f"checkpoint {path} has no format_version (not a kafkarnn checkpoint){HINT}")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"checkpoint {path} has an invalid format_version {version!r}{HINT}")
    if version < OLDEST_READABLE:
        raise CheckpointError(
            f"checkpoint {path} has format version {version}, written by an earlier kafkarnn whose "
            f"weights were laid out differently; pass --new to start a fresh run (this one is left as it is)"
        )
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {version}, newer than this kafkarnn reads "
            f"({FORMAT_VERSION}); upgrade kafkarnn, or pass --new to start a fresh run"
        )
    return meta


def _one_line(e: object, limit: int = 160) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _corrupt(path: Path, what: str, e: BaseException) -> CheckpointError:
    detail = _one_line(e)
    reason = f"{what}: {type(e).__name__}: {detail}" if detail else f"{what}: {type(e).__name__}"
    return CheckpointError(f"checkpoint {path} is corrupt ({reason}){HINT}")


# ---- checks for callers -----------------------------------------------------------------------

def require(
    arrays: dict[str, np.ndarray],
    name: str,
    shape: tuple,
    dtype_kind: str | None = "f",
    path: Path | str | None = None,
) -> np.ndarray:
    """Return `arrays[name]` after checking its shape (None in `shape` matches any size) and dtype kind.

    `dtype_kind` is one or more numpy kind letters ("f", "iu", ...), or None to skip the check.
    Raises CheckpointError("checkpoint PATH: array NAME has shape X, expected Y") on a mismatch.
    """
    where = f"checkpoint {path}" if path is not None else "checkpoint"
    if name not in arrays:
        raise CheckpointError(f"{where}: array {name} is missing")
    arr = arrays[name]
    expected = tuple(shape)
    if arr.ndim != len(expected) or any(want is not None and got != want for got, want in zip(arr.shape, expected)):
        raise CheckpointError(f"{where}: array {name} has shape {tuple(arr.shape)}, expected {expected}")
    if dtype_kind is not None and arr.dtype.kind not in dtype_kind:
        raise CheckpointError(f"{where}: array {name} has dtype {arr.dtype}, expected kind '{dtype_kind}'")
    return arr
