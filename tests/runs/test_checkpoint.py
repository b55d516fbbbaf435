"""Tests for kafkarnn.runs.checkpoint: round trips, atomic saves, and corrupt files that must fail cleanly."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from kafkarnn.errors import CheckpointError
from kafkarnn.runs.checkpoint import FORMAT_VERSION, load_checkpoint, require, save_checkpoint

REPO = Path(__file__).resolve().parents[2]


def sample_arrays(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "param/Wxh": rng.standard_normal((7, 5)).astype(np.float32),
        "param/bh": rng.standard_normal(7),  # float64
        "opt/m/Wxh": rng.standard_normal((7, 5)),
        "state/h0": np.zeros((2, 7)),
        "rng/state": rng.integers(-(2**62), 2**62, size=4, dtype=np.int64),
        "vocab/ids": np.arange(12, dtype=np.uint8),
        "scalar": np.array(3.5),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "flag": np.array([True, False]),
    }


META = {"iter": 1200, "vocab": "abc äß\n\t\"", "config": {"model": "lstm", "hidden": 7}, "loss": float("nan")}


def assert_same(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert a[name].shape == b[name].shape, name
        np.testing.assert_array_equal(a[name], b[name])


def write_raw_npz(path: Path, members: dict) -> None:
    """An .npz written by plain np.savez (no kafkarnn checks, pickles allowed), for hand-made bad files."""
    with open(path, "wb") as f:
        np.savez(f, **members)


def meta_bytes(meta: dict) -> np.ndarray:
    return np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)


def load_error(path: Path) -> str:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


# ---- round trip -------------------------------------------------------------------------------

def test_round_trip_arrays_and_meta(tmp_path):
    arrays = sample_arrays()
    meta = dict(META)
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, arrays, meta)
    loaded, loaded_meta = load_checkpoint(path)
    assert_same(arrays, loaded)
    assert loaded_meta["format_version"] == FORMAT_VERSION
    assert loaded_meta["vocab"] == META["vocab"]
    assert loaded_meta["config"] == META["config"]
    assert np.isnan(loaded_meta["loss"])
    assert "format_version" not in meta  # the caller's dict is not changed
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temp file left


def test_file_is_a_plain_uncompressed_npz(tmp_path):
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, sample_arrays(), {"iter": 5, "format_version": 99})
    with zipfile.ZipFile(path) as zf:
        assert all(info.compress_type == zipfile.ZIP_STORED for info in zf.infolist())
    with np.load(path, allow_pickle=False) as npz:
        assert set(npz.files) == set(sample_arrays()) | {"__meta__"}
        raw = npz["__meta__"]
    assert raw.dtype == np.uint8
    stored = json.loads(raw.tobytes().decode("utf-8"))
    assert set(stored.pop("__crc32__")) == set(sample_arrays())   # one CRC per array, by name
    assert stored == {"iter": 5, "format_version": FORMAT_VERSION}  # save sets the version


def test_loads_a_file_written_by_np_savez(tmp_path):
    path = tmp_path / "c.npz"
    write_raw_npz(path, {"param/W": np.ones(3), "__meta__": meta_bytes({"format_version": FORMAT_VERSION, "a": 1})})
    arrays, meta = load_checkpoint(path)
    np.testing.assert_array_equal(arrays["param/W"], np.ones(3))
    assert meta == {"format_version": FORMAT_VERSION, "a": 1}


@pytest.mark.parametrize("bad", [
    {"obj": np.array([{"a": 1}], dtype=object)},
    {"text": np.array(["abc"])},
    {"__meta__": np.zeros(3)},
    {"__mine": np.zeros(3)},
    {"": np.zeros(3)},
])
def test_save_refuses_bad_arrays_and_writes_nothing(tmp_path, bad):
    path = tmp_path / "checkpoint.npz"
    with pytest.raises(ValueError):
        save_checkpoint(path, {"ok": np.zeros(2), **bad}, {})
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_meta_json_cannot_encode(tmp_path):
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / "c.npz", {"a": np.zeros(2)}, {"x": object()})
    assert list(tmp_path.iterdir()) == []


# ---- atomic save --------------------------------------------------------------------------------

@pytest.mark.parametrize("failing", ["replace", "fsync", "write"])
def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch, failing):
    path = tmp_path / "checkpoint.npz"
    old = sample_arrays(1)
    save_checkpoint(path, old, {"iter": 1})

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if failing == "write":  # fail after part of the new file is written
        real = np.lib.format.write_array
        calls = []

        def write_some(fp, arr, *args, **kwargs):
            calls.append(1)
            if len(calls) == 3:
                disk_full()
            return real(fp, arr, *args, **kwargs)

        monkeypatch.setattr(np.lib.format, "write_array", write_some)
    else:
        monkeypatch.setattr(os, failing, disk_full)
    with pytest.raises(OSError) as info:
        save_checkpoint(path, sample_arrays(2), {"iter": 2})
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    arrays, meta = load_checkpoint(path)
    assert_same(old, arrays)
    assert meta["iter"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]


def test_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "checkpoint.npz", sample_arrays(), {})
    assert list(tmp_path.iterdir()) == []


def test_in_the_middle_of_a_save_the_checkpoint_is_still_the_previous_one(tmp_path, monkeypatch):
    # what a kill mid-save would leave: looked at after each array the save writes, the
    # checkpoint loads whole as the old version, and the new one grows in a temp file beside it
    path = tmp_path / "checkpoint.npz"
    old, new = sample_arrays(1), sample_arrays(2)
    save_checkpoint(path, old, {"iter": 1})
    real, seen = np.lib.format.write_array, []

    def write_then_look(fp, arr, *args, **kwargs):
        real(fp, arr, *args, **kwargs)
        arrays, meta = load_checkpoint(path)
        assert_same(old, arrays)
        assert meta["iter"] == 1
        seen.append(sorted(p.name for p in tmp_path.iterdir()))

    monkeypatch.setattr(np.lib.format, "write_array", write_then_look)
    save_checkpoint(path, new, {"iter": 2})
    monkeypatch.undo()
    assert len(seen) == len(new) + 1                       # after every array and the metadata
    for names in seen:
        assert len(names) == 2 and names[1] == "checkpoint.npz" and names[0].startswith(".checkpoint.npz.tmp")
    assert_same(new, load_checkpoint(path)[0])
    # a killed save's partial temp file does not block the next save, and is gone after it
    (tmp_path / seen[0][0]).write_bytes(b"PK\x03\x04 half a zip")
    save_checkpoint(path, old, {"iter": 3})
    assert_same(old, load_checkpoint(path)[0])
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]


SAVE_LOOP = """
import sys, numpy as np
from kafkarnn.runs.checkpoint import save_checkpoint
path = sys.argv[1]
print("ready", flush=True)
i = 0
while True:
    i += 1
    save_checkpoint(path, {"w": np.full(20000, float(i)), "i": np.array(i)}, {"iter": i})
"""


def test_sigkill_during_save_loop_leaves_a_whole_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, {"w": np.full(20000, 0.0), "i": np.array(0)}, {"iter": 0})
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rng = np.random.default_rng(3)
    for delay in rng.uniform(0.01, 0.1, size=3):
        child = subprocess.Popen([sys.executable, "-c", SAVE_LOOP, str(path)], stdout=subprocess.PIPE, env=env)
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        arrays, meta = load_checkpoint(path)  # always one whole version, never a mix or a torn file
        assert int(arrays["i"]) == meta["iter"]
        np.testing.assert_array_equal(arrays["w"], np.full(20000, float(meta["iter"])))


# ---- corrupt files ------------------------------------------------------------------------------

@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.npz"
    save_checkpoint(path, sample_arrays(), META)
    return path


def test_truncation_at_many_offsets_is_detected(tmp_path, good):
    data = good.read_bytes()
    bad = tmp_path / "checkpoint.npz"
    for cut in np.linspace(0, len(data) - 1, 30).astype(int):
        bad.write_bytes(data[:cut])
        message = load_error(bad)
        assert "corrupt" in message or "not an .npz" in message


def test_random_byte_flips_load_identically_or_fail_cleanly(tmp_path, good):
    data = good.read_bytes()
    original = load_checkpoint(good)
    bad = tmp_path / "checkpoint.npz"
    rng = np.random.default_rng(12345)
    failures = 0
    for _ in range(50):
        flipped = bytearray(data)
        flipped[rng.integers(len(data))] ^= int(rng.integers(1, 256))
        bad.write_bytes(bytes(flipped))
        try:
            arrays, meta = load_checkpoint(bad)
        except CheckpointError as e:
            assert "\n" not in str(e)
            failures += 1
            continue
        assert_same(original[0], arrays)  # a flip in a field the reader ignores (e.g. a timestamp)
        assert json.dumps(meta) == json.dumps(original[1])
    assert failures > 25  # most flips hit data or headers and must be caught


def test_data_flip_is_caught_by_crc(tmp_path):
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, {"w": np.arange(1000, dtype=np.float64)}, {})
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # lands inside the float data
    path.write_bytes(bytes(data))
    assert "corrupt" in load_error(path)


def test_header_flip_that_shortens_an_array_is_caught(tmp_path):
    # "(1000,)" -> "(0000,)" makes numpy read 0 bytes, so only a CRC check over the whole member sees it
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, {"w": np.arange(1000, dtype=np.float64)}, {})
    data = path.read_bytes()
    assert data.count(b"(1000,)") == 1
    path.write_bytes(data.replace(b"(1000,)", b"(0000,)"))
    assert "corrupt" in load_error(path)


def test_pickled_object_array_is_refused(tmp_path):
    path = tmp_path / "checkpoint.npz"
    members = {"evil": np.array([{"a": 1}], dtype=object), "__meta__": meta_bytes({"format_version": FORMAT_VERSION})}
    write_raw_npz(path, members)
    assert "pickled" in load_error(path)


def test_future_format_version_is_refused(tmp_path):
    path = tmp_path / "checkpoint.npz"
    write_raw_npz(path, {"w": np.ones(2), "__meta__": meta_bytes({"format_version": FORMAT_VERSION + 1})})
    assert "newer" in load_error(path)


def test_format_1_row_form_checkpoint_is_refused_not_misread(tmp_path):
    path = tmp_path / "checkpoint.npz"
    write_raw_npz(path, {"w": np.ones(2), "__meta__": meta_bytes({"format_version": 1})})
    before = path.read_bytes()
    message = load_error(path)
    assert "earlier kafkarnn" in message and "--new" in message
    assert path.read_bytes() == before


@pytest.mark.parametrize("meta", [
    None,                                       # no __meta__ at all
    np.frombuffer(b"{not json", dtype=np.uint8),
    np.frombuffer(b"\xff\xfe", dtype=np.uint8),  # not UTF-8
    meta_bytes([1, 2]),                         # JSON, but not an object
    meta_bytes({"iter": 3}),                    # no format_version
    meta_bytes({"format_version": "1"}),
    np.zeros(3, dtype=np.float32),              # not bytes
])
def test_bad_or_missing_meta_is_refused(tmp_path, meta):
    path = tmp_path / "checkpoint.npz"
    members = {"w": np.ones(2)}
    if meta is not None:
        members["__meta__"] = meta
    write_raw_npz(path, members)
    load_error(path)


@pytest.mark.parametrize("array", [np.array(["text"]), np.zeros(2, dtype=[("a", "f4"), ("b", "i4")])])
def test_non_numeric_arrays_are_refused(tmp_path, array):
    path = tmp_path / "checkpoint.npz"
    write_raw_npz(path, {"w": array, "__meta__": meta_bytes({"format_version": FORMAT_VERSION})})
    assert "dtype" in load_error(path)


@pytest.mark.parametrize("content", [b"", b"hello, this is plain text\n" * 20, b"PK\x03\x04 not really a zip"])
def test_not_a_checkpoint_at_all(tmp_path, content):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(content)
    load_error(path)


def test_plain_npy_file_is_refused(tmp_path):
    path = tmp_path / "checkpoint.npz"
    with open(path, "wb") as f:
        np.save(f, np.ones(3))
    load_error(path)


def test_missing_file_and_folder(tmp_path):
    assert "does not exist" in load_error(tmp_path / "nope.npz")
    load_error(tmp_path)  # a folder, not a file


# ---- require ------------------------------------------------------------------------------------

def test_require_checks_shape_and_kind():
    arrays = {"W": np.zeros((4, 3)), "ids": np.zeros(5, dtype=np.int64)}
    assert require(arrays, "W", (4, 3), path="/x/c.npz").shape == (4, 3)
    assert require(arrays, "W", (None, 3)).shape == (4, 3)
    assert require(arrays, "ids", (5,), dtype_kind="iu") is arrays["ids"]
    with pytest.raises(CheckpointError, match=r"^checkpoint /x/c.npz: array W has shape \(4, 3\), expected \(4, 2\)$"):
        require(arrays, "W", (4, 2), path="/x/c.npz")
    with pytest.raises(CheckpointError, match="shape"):
        require(arrays, "W", (4, 3, 1))
    with pytest.raises(CheckpointError, match="missing"):
        require(arrays, "Whh", (4, 4), path="/x/c.npz")
    with pytest.raises(CheckpointError, match="dtype"):
        require(arrays, "ids", (5,))
