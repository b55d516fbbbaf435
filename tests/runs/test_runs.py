"""Tests for kafkarnn.runs.folder: data folder, run names, config and metrics files, locking and listing."""

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kafkarnn.errors import KafkarnnError
from kafkarnn.runs import folder as runs
from kafkarnn.runs.checkpoint import save_checkpoint
from kafkarnn.runs.listing import list_runs
from kafkarnn.runs.folder import Run, next_free_name, resolve_data_dir, valid_run_name
from kafkarnn.runs.lock import Holder
from kafkarnn.seam import Role

REPO = Path(__file__).resolve().parents[2]

CONFIG = {"model": "lstm", "hidden": 128, "layers": 2, "corpus": {"name": "kafka-metamorphosis"}}


# ---- data folder ----------------------------------------------------------------------------------

def test_data_dir_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("KAFKARNN_HOME", str(tmp_path / "env"))
    assert resolve_data_dir(str(tmp_path / "cli")) == tmp_path / "cli"  # the option wins
    assert resolve_data_dir(None) == tmp_path / "env"  # then the environment
    monkeypatch.delenv("KAFKARNN_HOME")
    monkeypatch.setattr(runs.platformdirs, "user_data_path", lambda app: tmp_path / "platform" / app)
    assert resolve_data_dir(None) == tmp_path / "platform" / "kafkarnn"  # then the platform default
    monkeypatch.setenv("KAFKARNN_HOME", "")
    assert resolve_data_dir(None) == tmp_path / "platform" / "kafkarnn"  # an empty variable counts as unset
    assert not (tmp_path / "platform").exists()  # nothing is created


def test_data_dir_is_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_data_dir("rel/dir") == tmp_path / "rel" / "dir"
    assert resolve_data_dir("~/x") == tmp_path / "home" / "x"
    monkeypatch.setenv("KAFKARNN_HOME", "envrel")
    assert resolve_data_dir(None) == tmp_path / "envrel"


# ---- names -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["a", "kafka", "run-2", "my_run.v1", "A9", "-x", "x" * 64])
def test_valid_names(name):
    assert valid_run_name(name) == name
    assert Run("/tmp/d", name).name == name


@pytest.mark.parametrize("name", ["", ".", "..", ".hidden", "a/b", "a b", "x" * 65, "a\n", "é", "../up", "a\\b"])
def test_invalid_names(name):
    with pytest.raises(KafkarnnError) as info:
        valid_run_name(name)
    assert str(info.value) == f"invalid run name {name!r}: use letters, digits, - _ ."
    with pytest.raises(KafkarnnError):
        Run("/tmp/d", name)


def test_next_free_name(tmp_path):
    assert next_free_name(tmp_path, "kafka") == "kafka"  # no runs folder yet
    Run(tmp_path, "kafka").create()
    assert next_free_name(tmp_path, "kafka") == "kafka-2"
    Run(tmp_path, "kafka-2").create()
    (tmp_path / "runs" / "kafka-3").write_text("a file, not a run, still taken")
    assert next_free_name(tmp_path, "kafka") == "kafka-4"
    assert next_free_name(tmp_path, "other") == "other"
    long = "y" * 64
    Run(tmp_path, long).create()
    assert next_free_name(tmp_path, long) == "y" * 62 + "-2"  # stays within 64 characters
    with pytest.raises(KafkarnnError):
        next_free_name(tmp_path, "bad name")


# ---- paths, config -----------------------------------------------------------------------------

def test_paths_and_create(tmp_path):
    run = Run(tmp_path, "r1")
    assert run.path == tmp_path / "runs" / "r1"
    assert run.checkpoint_path == run.path / "checkpoint.npz"
    assert run.best_path == run.path / "best.npz"
    assert run.metrics_path == run.path / "metrics.jsonl"
    assert run.samples_path == run.path / "samples.txt"
    assert run.config_path == run.path / "config.json"
    assert not run.path.exists()  # constructing touches nothing
    run.create()
    assert run.path.is_dir() and not run.exists()
    run.write_config(CONFIG)
    assert run.exists()
    assert run.read_config() == CONFIG
    assert run.config_path.read_text().startswith('{\n  "model"')  # indent 2
    assert [p.name for p in run.path.iterdir()] == ["config.json"]  # no temp file left


def test_corrupt_or_missing_config_is_one_line_error(tmp_path):
    run = Run(tmp_path, "r1")
    with pytest.raises(KafkarnnError, match="config"):
        run.read_config()
    run.create()
    for bad in [b'{"model": "lstm", "hid', b"\xff\xfe\x00", b"[1, 2]"]:
        run.config_path.write_bytes(bad)
        with pytest.raises(KafkarnnError) as info:
            run.read_config()
        assert str(run.config_path) in str(info.value) and "\n" not in str(info.value)


def test_write_config_refuses_unencodable_and_keeps_old(tmp_path):
    run = Run(tmp_path, "r1")
    run.create()
    run.write_config(CONFIG)
    with pytest.raises(TypeError):
        run.write_config({"x": object()})
    assert run.read_config() == CONFIG


# ---- metrics and samples ------------------------------------------------------------------------

def test_metrics_round_trip_and_torn_last_line(tmp_path):
    run = Run(tmp_path, "r1")
    run.create()
    assert run.read_metrics() == []
    records = [{"iter": i, "loss": 2.0 - i / 10} for i in range(5)]
    for rec in records:
        run.append_metrics(rec)
    assert run.read_metrics() == records
    with open(run.metrics_path, "ab") as f:
        f.write(b'{"iter": 5, "loss": 1.4')  # a kill in the middle of a line
    assert run.read_metrics() == records
    run.append_metrics({"iter": 6, "loss": 1.3})  # the next record starts on its own line
    assert run.read_metrics() == records + [{"iter": 6, "loss": 1.3}]


def test_metrics_skip_garbage_lines(tmp_path):
    run = Run(tmp_path, "r1")
    run.create()
    run.metrics_path.write_bytes(b'{"iter": 1}\nnot json\n\n[1, 2]\n\xff\xfe\n{"iter": 2}\n{"iter"')
    assert run.read_metrics() == [{"iter": 1}, {"iter": 2}]


def test_append_sample(tmp_path):
    run = Run(tmp_path, "r1")
    run.create()
    run.append_sample(100, "Als Gregor Samsa")
    run.append_sample(200, "eines Morgens\naus unruhigen Träumen")
    assert run.samples_path.read_text(encoding="utf-8") == (
        "--- iter 100 ---\nAls Gregor Samsa\n--- iter 200 ---\neines Morgens\naus unruhigen Träumen\n"
    )


# ---- locking ------------------------------------------------------------------------------------

HOLD_LOCK = """
import sys, time
from kafkarnn.runs.folder import Run
lock = Run(sys.argv[1], sys.argv[2]).lock()
print("locked", flush=True)
time.sleep(60)
"""


def start_holder(data_dir: Path, name: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(data_dir), name], stdout=subprocess.PIPE, env=env)
    assert child.stdout.readline().strip() == b"locked"
    return child


def stop(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()


def test_lock_in_one_process(tmp_path):
    run = Run(tmp_path, "r1")
    with run.lock() as lock:
        assert lock.locked
        assert (run.path / "lock").read_text() == f"{os.getpid()} headless\n"
        assert run.holder() == Holder(os.getpid(), Role.HEADLESS)
        with pytest.raises(KafkarnnError, match=f"^run r1 is in use by process {os.getpid()}$"):
            run.lock()  # a second lock, even from this process, is refused
    assert not lock.locked and run.holder() is None
    run.lock().unlock()  # free again after release
    lock.unlock()  # releasing twice is harmless


def test_lock_held_by_another_process(tmp_path):
    child = start_holder(tmp_path, "r1")
    try:
        with pytest.raises(KafkarnnError) as info:
            Run(tmp_path, "r1").lock()
        assert str(info.value) == f"run r1 is in use by process {child.pid}"
        Run(tmp_path, "r2").lock().unlock()  # other runs are not affected
        assert Run(tmp_path, "r1").read_metrics() == []  # readers never lock
    finally:
        stop(child)


def test_lock_of_killed_process_does_not_block(tmp_path):
    child = start_holder(tmp_path, "r1")
    stop(child)  # SIGKILL: no cleanup ran, the lock file still holds its PID
    assert (tmp_path / "runs" / "r1" / "lock").read_text().split()[0] == str(child.pid)
    assert Run(tmp_path, "r1").holder() is None        # the kernel let go of it at the kill
    with Run(tmp_path, "r1").lock() as lock:
        assert (tmp_path / "runs" / "r1" / "lock").read_text().split()[0] == str(os.getpid())
        assert lock.recovered == Holder(child.pid, Role.HEADLESS)   # ... and it says so


def test_lock_removes_temp_files_left_by_a_killed_save(tmp_path):
    run = Run(tmp_path, "r1")
    run.create()
    (run.path / ".checkpoint.npz.tmp-99999").write_bytes(b"PK\x03\x04partial")
    (run.path / "checkpoint.npz").write_bytes(b"keep")
    with run.lock():
        assert sorted(p.name for p in run.path.iterdir()) == ["checkpoint.npz", "lock"]


# ---- listing ------------------------------------------------------------------------------------

def make_run(data_dir: Path, name: str, config=CONFIG, metrics=(), checkpoint=True) -> Run:
    run = Run(data_dir, name)
    run.create()
    if config is not None:
        run.write_config(config)
    for rec in metrics:
        run.append_metrics(rec)
    if checkpoint:
        save_checkpoint(run.checkpoint_path, {"w": np.zeros(2)}, {})
    return run


def test_list_runs(tmp_path):
    assert list_runs(tmp_path) == []  # no runs folder yet
    b_run = make_run(tmp_path, "b-run", metrics=[
        {"iter": 100, "loss": 2.1, "val_loss": 2.3},
        {"iter": 200, "loss": 1.9, "val_loss": 1.7},
        {"iter": 300, "loss": 1.8, "val_loss": float("nan")},  # a diverged eval is not "best"
        {"iter": 350, "loss": 1.7},
    ])
    make_run(tmp_path, "a-run", config={"model": "gru", "hidden": 64, "corpus": {"name": "trial"}}, checkpoint=False)
    listed = list_runs(tmp_path)
    assert [r["name"] for r in listed] == ["a-run", "b-run"]
    a, b = listed
    assert b["corpus"] == "kafka-metamorphosis" and b["model"] == "lstm 2x128"
    assert b["iter"] == 350 and b["best_val_loss"] == 1.7
    assert b["path"] == str(tmp_path / "runs" / "b-run")
    saved = dt.datetime.fromisoformat(b["last_saved"])  # ISO date-time of checkpoint.npz, with its offset
    assert abs(saved.timestamp() - b_run.checkpoint_path.stat().st_mtime) < 1
    assert a["model"] == "gru 1x64" and a["corpus"] == "trial"
    assert a["iter"] is None and a["best_val_loss"] is None and a["last_saved"] is None
    assert set(a) == {"name", "corpus", "model", "iter", "best_val_loss", "last_saved", "path",
                      "training", "pid", "where", "ngram_order", "ngram_loss"}
    assert a["ngram_order"] is None and a["ngram_loss"] is None     # nothing cached, nothing counted
    assert a["training"] is False and a["pid"] is None and a["where"] is None
    json.dumps(listed)  # plain values only


def test_list_runs_survives_broken_folders(tmp_path):
    make_run(tmp_path, "good", metrics=[{"iter": 10, "val_loss": 3.0}])
    broken = make_run(tmp_path, "broken", config=None)
    broken.config_path.write_bytes(b"\x00\xffgarbage{")
    broken.metrics_path.write_bytes(b"\xff\xfe not json at all\n{\"iter\": ")
    broken.checkpoint_path.write_bytes(b"not a zip")
    odd = make_run(tmp_path, "odd", config={"hidden": "x", "corpus": 7}, checkpoint=False)
    odd.metrics_path.mkdir()  # a folder where a file should be: unreadable
    (tmp_path / "runs" / "empty").mkdir()
    (tmp_path / "runs" / "stray.txt").write_text("not a folder")
    (tmp_path / "runs" / ".hidden").mkdir()
    listed = {r["name"]: r for r in list_runs(tmp_path)}
    assert sorted(listed) == ["broken", "empty", "good", "odd"]
    assert listed["good"]["iter"] == 10 and listed["good"]["best_val_loss"] == 3.0
    for name in ("broken", "empty"):
        assert listed[name]["corpus"] == "?" and listed[name]["model"] == "?"
        assert listed[name]["iter"] is None and listed[name]["best_val_loss"] is None
    assert listed["broken"]["last_saved"] is not None  # list_runs does not open checkpoints
    assert listed["odd"]["model"] == "?" and listed["odd"]["corpus"] == "7" and listed["odd"]["iter"] is None
