"""The sweep's plan and its refusals: the grid, its trials' names, grid files, and bad input
that must be refused in one line (exit 2) before anything starts or anything is damaged."""

import json
import os
import stat
import sys

import pytest

from kafkarnn.errors import KafkarnnError
from kafkarnn.main import main
from kafkarnn.runs.folder import Run
from kafkarnn.sweep.folder import SweepFolder, TrialStatus, list_sweep_runs
from kafkarnn.sweep.plan import Plan, make_plan, parse_list, read_grid_file
from kafkarnn.sweep.table import Row, seconds_left

TINY = ["--hidden", "8", "--batch", "2", "--seq-len", "8"]


def test_the_trials_are_the_product_named_after_what_differs():
    plan = make_plan("cmp", {"model": ["rnn", "lstm"], "hidden": [8, 16], "lr": [0.003],
                             "max_iters": [5]})
    trials = plan.trials()
    assert [t.run for t in trials] == ["cmp-model_rnn-hidden_8", "cmp-model_rnn-hidden_16",
                                       "cmp-model_lstm-hidden_8", "cmp-model_lstm-hidden_16"]
    assert trials[3].settings == {"model": "lstm", "hidden": 16, "lr": 0.003, "max_iters": 5}
    assert trials[3].differs == {"model": "lstm", "hidden": 16}
    assert trials[3].overrides == {"model": "lstm", "hidden": 16, "lr": 0.003}


def test_names_too_long_for_a_run_are_numbered():
    plan = make_plan("x" * 40, {"corpus": ["/tmp/a-rather-long-file-name.txt", "/tmp/b.txt"],
                                "max_iters": [5]})
    assert [t.run for t in plan.trials()] == ["x" * 40 + "-1", "x" * 40 + "-2"]


def test_comma_lists_take_each_options_type():
    assert parse_list("hidden", "8,16") == [8, 16]
    assert parse_list("lr", "1e-3,0.01") == [0.001, 0.01]
    assert parse_list("model", "rnn, gru") == ["rnn", "gru"]
    for key, text, said in [("hidden", "8,x", "not a whole number"), ("hidden", "8.5", "whole"),
                            ("model", "rnn,,gru", "empty item"), ("max_seconds", "0", "positive"),
                            ("lr", "nan", "finite")]:
        with pytest.raises(KafkarnnError, match=said):
            parse_list(key, text)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is Python 3.11's")
def test_a_grid_file_in_json_or_toml(tmp_path):
    j = tmp_path / "grid.json"
    j.write_text(json.dumps({"model": ["rnn", "gru"], "seq-len": 16, "max_seconds": 2}))
    t = tmp_path / "grid.toml"
    t.write_text('model = ["rnn", "gru"]\nseq_len = 16\nmax_seconds = 2\n')
    assert read_grid_file(str(j)) == read_grid_file(str(t)) == {
        "model": ["rnn", "gru"], "seq_len": [16], "max_seconds": [2.0]}
    t.write_text("model = [")
    with pytest.raises(KafkarnnError, match="not valid toml"):
        read_grid_file(str(t))
    j.write_text('{"colour": ["red"]}')
    with pytest.raises(KafkarnnError, match="cannot vary 'colour'"):
        read_grid_file(str(j))


def test_a_plan_survives_its_file_and_lists_its_runs(tmp_path):
    plan = make_plan("cmp", {"model": ["rnn", "gru"], "max_iters": [5]})
    folder = SweepFolder(tmp_path, "cmp")
    folder.write_plan(plan)
    assert Plan.from_json(folder.plan_path.read_bytes(), "x") == plan
    assert list_sweep_runs(tmp_path, "cmp") == ["cmp-model_rnn", "cmp-model_gru"]
    assert stat.S_IMODE(os.stat(folder.plan_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(folder.path).st_mode) == 0o700
    folder.plan_path.write_text('{"name": "cmp", "grid": {"model": []}}')
    with pytest.raises(KafkarnnError, match="damaged"):
        folder.read_plan()


def test_time_left_shares_the_trials_over_the_slots():
    trials = make_plan("s", {"model": ["rnn", "gru", "lstm"], "max_seconds": [10]}).trials()
    table = [Row(trials[0], TrialStatus.DONE, 50, train_s=10.0),
             Row(trials[1], TrialStatus.RUNNING, 20, train_s=4.0),
             Row(trials[2], TrialStatus.WAITING)]
    assert seconds_left(table, slots=2) == pytest.approx((6.0 + 10.0) / 2)
    assert seconds_left(table, slots=1) == pytest.approx(16.0)


def refused(capsys, *argv) -> str:
    assert main(["sweep", *map(str, argv)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kafkarnn: error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def files_of(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_bad_grids_are_refused_before_anything_starts(home, book, capsys):
    assert "grid is empty" in refused(capsys, "s")
    assert "needs a limit" in refused(capsys, "s", "--model", "rnn,gru")
    err = refused(capsys, "s", "--corpus", book, "--model", "rnn,gru", "--hidden", "8,0",
                  "--batch", "2", "--seq-len", "8", "--max-iters", "5")
    assert "trial s-model_rnn-hidden_0: --hidden must be a whole number" in err
    assert "too short" in refused(capsys, "s", "--corpus", book, "--batch", "64", "--seq-len",
                                  "64", "--max-iters", "5")
    assert "unknown preset" in refused(capsys, "s", "--preset", "small,huge", "--max-iters", "5")
    assert "lists a value twice" in refused(capsys, "s", "--model", "rnn,rnn", "--max-iters", "5")
    assert not (home / "runs").exists() and not (home / "sweeps").exists()


def test_a_name_with_another_grid_or_a_stranger_run_is_refused_and_left_alone(home, book, capsys):
    folder = SweepFolder(home, "s")
    folder.write_plan(make_plan("s", {"corpus": [str(book)], "model": ["rnn", "gru"], "max_iters": [5]}))
    folder.write_state({"trials": {"s-model_rnn": {"status": "done"}}})
    before = files_of(home)
    err = refused(capsys, "s", "--corpus", book, "--model", "rnn,lstm", "--max-iters", "5")
    assert "exists with another grid" in err and "--model rnn,gru" in err
    assert files_of(home) == before
    Run(home, "t-model_gru").create()
    (Run(home, "t-model_gru").path / "config.json").write_text("{}")
    before = files_of(home)
    assert "not this sweep's" in refused(capsys, "t", "--corpus", book, *TINY, "--model",
                                         "rnn,gru", "--max-iters", "5")
    assert files_of(home) == before


def test_without_ray_installed_ray_is_refused(home, book, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)               # as if Ray were not installed
    assert 'pip install "kafkarnn[ray]"' in refused(capsys, "s", "--corpus", book, *TINY,
                                                    "--max-iters", "5", "--ray", "127.0.0.1:1")
    assert not (home / "sweeps").exists() and not (home / "runs").exists()


def test_an_unreachable_ray_address_is_refused(home, book, capsys):
    pytest.importorskip("ray")
    grid = ["--corpus", book, *TINY, "--model", "rnn,gru", "--max-iters", "5"]
    assert "cannot reach the Ray cluster at 127.0.0.1:1" in refused(capsys, "s", *grid, "--ray",
                                                                      "127.0.0.1:1")
    assert "HOST:PORT" in refused(capsys, "s", *grid, "--ray", "nowhere")
    assert not (home / "sweeps").exists() and not (home / "runs").exists()


def test_the_sweep_package_imports_no_ui_and_no_ray():
    import subprocess
    from pathlib import Path
    code = ("import sys, kafkarnn.sweep.plan, kafkarnn.sweep.folder, kafkarnn.sweep.coordinator, "
            "kafkarnn.sweep.table, kafkarnn.sweep.ray_tasks, kafkarnn.cli.sweep; "
            "bad = [m for m in ('textual', 'rich', 'ray') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_a_resumed_sweep_runs_as_it_was_started_unless_told_otherwise(tmp_path):
    import argparse
    from kafkarnn.cli.sweep import remember_how
    folder = SweepFolder(tmp_path, "s")
    folder.create()
    folder.write_state({"threads": 2, "parallel": None, "ray": "head:6379", "trials": {}})
    args = argparse.Namespace(threads=None, parallel=3, ray=None)
    remember_how(folder, args)
    assert (args.threads, args.parallel, args.ray) == (2, 3, "head:6379")
