"""`kafkarnn compare` and inspect/compare.py: tiny real runs of different cells and batch sizes,
a run with a damaged and one with an empty metrics file, the JSON, the settings that differ,
the x-axes, and that comparing never changes a run."""

import io
import json
import os

import pytest
from rich.console import Console

from kafkarnn.pictures import comparison as compare_view
from kafkarnn.inspect.compare import Comparison, RunCurves, compare, differing_settings
from kafkarnn.inspect.curves import MetricsTail, Point, point
from kafkarnn.main import main
from kafkarnn.train.cadence import Cadence, Limits
from kafkarnn.train.launch import prepare
from kafkarnn.train.session import Session

TEXT = "The porter said the door was open for you alone; now I shall shut it.\n" * 40


@pytest.fixture
def text(tmp_path):
    p = tmp_path / "porter.txt"
    p.write_text(TEXT)
    return p


def trained(home, corpus, name, iters=24, **overrides):
    """A tiny run, trained to `iters` with a metrics line every step and a few validations."""
    cfg = {"hidden": 8, "layers": 1, "seq_len": 8, "batch": 2, **overrides}
    launch = prepare(data_dir=home, corpus_spec=str(corpus), encoding=None, run_name=name,
                     new=False, preset="small", overrides=cfg)
    try:
        Session(launch, Limits(max_iters=iters), Cadence(eval_every=1e-4, save_every=1e9, metrics_every=0.0)).run()
    finally:
        launch.lock.unlock()
    return home / "runs" / name


def records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def folder_state(home):
    """Every file under home: its bytes, mode and modification time."""
    out = {}
    for root, dirs, files in os.walk(home):
        for name in dirs + files:
            p = os.path.join(root, name)
            st = os.stat(p)
            out[p] = (st.st_mode, st.st_mtime_ns, open(p, "rb").read() if name in files else None)
    return out


@pytest.fixture
def runs(home, text):
    """rnn with batch 2, lstm with batch 4, gru with batch 4; one with metrics damaged
    afterwards, one with them emptied."""
    trained(home, text, "a-rnn", model="rnn")
    trained(home, text, "b-lstm", model="lstm", batch=4)
    trained(home, text, "c-gru", model="gru", batch=4)
    broken = trained(home, text, "d-broken", model="rnn")
    lines = (broken / "metrics.jsonl").read_bytes().splitlines(keepends=True)
    (broken / "metrics.jsonl").write_bytes(b"".join(lines[:2]) + b"{not json\n\x00\xff\n" +
                                           b"".join(lines[2:]))
    empty = trained(home, text, "e-empty", model="rnn")
    (empty / "metrics.jsonl").write_bytes(b"")
    return home


# ---- the x-axes -------------------------------------------------------------------------------

def test_a_record_gives_its_point_on_every_axis_and_chars_from_iterations_when_missing():
    p = point({"iter": 10, "chars": 640, "elapsed_s": 2.5, "val_loss": 3.1}, "val_loss", 99)
    assert (p.x("iters"), p.x("chars"), p.x("seconds"), p.loss) == (10, 640, 2.5, 3.1)
    old = point({"iter": 10, "loss": 3.3}, "loss", 4 * 16)     # no chars, no clock: an older line
    assert (old.x("chars"), old.x("seconds")) == (640, None)
    assert point({"iter": 10, "loss": 3.3}, "loss", None) is None        # chars unknowable
    assert point({"iter": 10, "loss": 3.3}, "val_loss", 64) is None      # no validation in it
    for bad in ({"iter": -1, "loss": 1.0}, {"iter": 1.5, "loss": 1.0}, {"iter": True, "loss": 1.0},
                {"iter": 1, "loss": float("nan")}, {"iter": 1, "loss": "1"}):
        assert point(bad, "loss", 64) is None, bad


def test_the_chart_puts_a_run_by_its_axis_value():
    fast = RunCurves("fast", {}, val=[Point(10, 1000, 1.0, 2.0), Point(20, 2000, 9.0, 1.0)])
    c = Comparison([fast], "chars")
    assert [x for x, _ in compare_view._xy(fast.val, "iters")] == [10, 20]
    assert [x for x, _ in compare_view._xy(fast.val, "seconds")] == [1.0, 9.0]
    lines = compare_view.chart(c, 40, 8).plain.splitlines()
    col = lambda row: lines[row].index("●")                     # noqa: E731
    assert col(-4) > col(0)                  # the lower loss, later: to the right of the first
    assert lines[-2].rstrip().endswith("2k")                    # chars: the last tick
    c.axis = "seconds"
    lines = compare_view.chart(c, 40, 8).plain.splitlines()
    assert lines[-2].rstrip().endswith("9s") and col(0) < 12    # 1 s of 9 s: near the left


# ---- reading metrics ---------------------------------------------------------------------------

def test_the_tail_reads_only_whole_new_lines_and_starts_again_on_a_shorter_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tail = MetricsTail(path)
    assert not tail.read() and tail.problem() == "no metrics yet"
    path.write_bytes(b'{"iter": 1, "loss": 3}\n{"iter": 2, "lo')
    assert tail.read() and [r["iter"] for r in tail.records] == [1]
    with open(path, "ab") as f:
        f.write(b'ss": 2}\n{"iter": 3, "loss": 1}\n')
    assert tail.read() and [r["iter"] for r in tail.records] == [1, 2, 3]
    assert not tail.read()                                       # nothing new
    path.write_bytes(b'{"iter": 7, "loss": 1}\n')                # replaced: shorter
    assert tail.read() and [r["iter"] for r in tail.records] == [7] and tail.problem() == ""


def test_what_is_wrong_with_a_metrics_file_is_said(tmp_path):
    path = tmp_path / "metrics.jsonl"
    for data, problem in [(b"", "no metrics yet"),
                          (b"garbage\n[1, 2]\n", "metrics file is damaged: no readable line"),
                          (b'{"iter": 1, "loss": 2}\nxx\n', "metrics file is damaged: 1 line skipped"),
                          (b'{"iter": 1, "loss": 2}\n', "")]:
        path.write_bytes(data)
        tail = MetricsTail(path)
        tail.read()
        assert tail.problem() == problem, data


# ---- the settings that differ ---------------------------------------------------------------------

def test_only_the_settings_that_differ_are_listed_with_every_runs_value():
    corpus = {"name": "a.txt", "fingerprint": {"sha256": "aa"}}
    a = RunCurves("a", {"model": "rnn", "hidden": 8, "batch": 2, "corpus": corpus, "created": "1"})
    b = RunCurves("b", {"model": "lstm", "hidden": 8, "batch": 4, "corpus": corpus, "created": "2"})
    c = RunCurves("c", {"model": "lstm", "hidden": 8, "batch": 2, "dropout": 0.1, "corpus": corpus})
    unreadable = RunCurves("d", {})
    rows = dict(differing_settings([a, b, c, unreadable]))
    assert list(rows) == ["model", "batch", "dropout"]
    assert rows["model"] == {"a": "rnn", "b": "lstm", "c": "lstm"}
    assert rows["dropout"] == {"a": None, "b": None, "c": 0.1}          # missing: None
    other = RunCurves("e", dict(a.config, corpus={"name": "b.txt", "fingerprint": {"sha256": "bb"}}))
    assert dict(differing_settings([a, other])) == {"corpus": {"a": "a.txt", "e": "b.txt"}}
    assert differing_settings([a, RunCurves("f", dict(a.config))]) == []


# ---- the command --------------------------------------------------------------------------------

def test_compare_json_on_runs_of_different_cells_and_batch_sizes(runs, capsys):
    before = folder_state(runs)
    assert main(["compare", "--json", "--prompt", "The ", "--length", "30"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert folder_state(runs) == before                          # read-only
    by = {r["name"]: r for r in out["runs"]}
    assert list(by) == ["a-rnn", "b-lstm", "c-gru", "d-broken", "e-empty"]
    assert out["axis"] == "chars" and out["baseline"] is None
    for name, batch in (("a-rnn", 2), ("b-lstm", 4), ("c-gru", 4)):
        r, recs = by[name], records(runs / "runs" / name)
        vals = [x for x in recs if "val_loss" in x]
        best = min(vals, key=lambda x: x["val_loss"])
        assert r["problem"] is None and r["best_val_loss"] == best["val_loss"]
        assert r["best_at"] == {"iter": best["iter"], "chars": best["iter"] * batch * 8,
                                "seconds": best["elapsed_s"], "loss": best["val_loss"]}
        assert len(r["val"]) == len(vals) >= 2
        assert r["model"] == f"{name.split('-')[1]} 1×8" and r["params"] > 0
        assert len(r["sample"]) == 30 and r["sample_error"] is None
    assert by["a-rnn"]["params"] < by["c-gru"]["params"] < by["b-lstm"]["params"]
    assert by["d-broken"]["problem"] == "metrics file is damaged: 2 lines skipped"
    assert len(by["d-broken"]["val"]) == len([x for x in records_ok(runs / "runs" / "d-broken")
                                              if "val_loss" in x])
    assert by["e-empty"]["problem"] == "no metrics yet" and by["e-empty"]["val"] == []
    assert out["settings"]["model"] == {"a-rnn": "rnn", "b-lstm": "lstm", "c-gru": "gru",
                                        "d-broken": "rnn", "e-empty": "rnn"}
    assert set(out["settings"]) == {"model", "batch"}
    assert "train" not in by["a-rnn"]
    assert main(["compare", "--json", "--train", "--no-samples", "a-rnn"]) == 0
    one = json.loads(capsys.readouterr().out)["runs"]
    assert len(one) == 1 and len(one[0]["train"]) >= 20 and "sample" not in one[0]


def records_ok(run_dir):
    out = []
    for line in (run_dir / "metrics.jsonl").read_bytes().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def test_the_same_prompt_and_seed_give_each_run_the_same_sample_every_time(runs):
    first = compare(runs, ["a-rnn", "b-lstm"], prompt="the ", length=40, seed=3)
    again = compare(runs, ["a-rnn", "b-lstm"], prompt="the ", length=40, seed=3)
    other = compare(runs, ["a-rnn"], prompt="the ", length=40, seed=4)
    assert first.samples == again.samples
    alone = compare(runs, ["b-lstm"], prompt="the ", length=40, seed=3)
    assert alone.samples["b-lstm"] == first.samples["b-lstm"]     # a fresh draw for each run
    assert first.samples["a-rnn"] != other.samples["a-rnn"]
    unknown = compare(runs, ["a-rnn"], prompt="Ω", length=5).samples["a-rnn"]
    assert unknown.text == "" and "Ω" in unknown.error


def test_the_table_chart_and_settings_print_with_a_marker_per_run(runs, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("NO_COLOR", "1")
    assert main(["compare", "--x", "seconds", "--train"]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out                                  # (not a terminal)
    chart = out.split("x: seconds of training")[0].split("\n", 1)[1]      # after the legend
    for glyph, name in zip("●▲■◆✚", ["a-rnn", "b-lstm", "c-gru", "d-broken", "e-empty"]):
        assert out.count(f"{glyph} {name}") == 4    # legend, table, settings, samples
    drawn = {ch for ch in chart if ch in "●▲■◆✚"}
    assert len(drawn) >= 3 and "✚" not in drawn, chart         # (a-rnn and d-broken may overlap)
    assert "no metrics yet" in out and "metrics file is damaged" in out
    assert "settings that differ" in out and "at (seconds)" in out
    assert "best.npz" in out                                    # the samples' title


def test_the_default_is_the_latest_run_and_the_runs_on_its_text(home, text, tmp_path, capsys):
    other = tmp_path / "other.txt"
    other.write_text(TEXT.upper())
    trained(home, text, "same-1", iters=4)
    trained(home, other, "elsewhere", iters=4)
    trained(home, text, "same-2", iters=4)                        # the latest
    assert main(["compare", "--json", "--no-samples"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)["runs"]] == ["same-1", "same-2"]


def test_bad_input_is_one_line_and_exit_2(runs, capsys):
    for argv, words in ((["compare", "nosuch"], "no run named nosuch"),
                        (["compare", "--x", "minutes"], "invalid choice"),
                        (["compare", "--temperature", "-1"], "--temperature")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("kafkarnn: error: ") and words in err[0], err


def test_nothing_to_compare_in_an_empty_data_folder(home, capsys):
    assert main(["compare"]) == 2
    assert "no saved runs" in capsys.readouterr().err


# ---- the baseline hook ------------------------------------------------------------------------------

def test_a_baseline_is_a_line_on_the_chart_and_a_row_in_the_table():
    run = RunCurves("r", {}, val=[Point(1, 64, 1.0, 3.0), Point(2, 128, 2.0, 2.0)])
    c = Comparison([run], baseline=2.5, baseline_name="3-gram")
    console = Console(width=60, file=io.StringIO(), no_color=True)
    console.print(compare_view.chart(c, 60, 9))
    console.print(compare_view.table(c))
    console.print(compare_view.legend(c))
    out = console.file.getvalue()
    assert "╌" * 20 in out and "3-gram" in out and "2.5000" in out
    assert c.to_json()["baseline"] == 2.5 and c.to_json()["baseline_name"] == "3-gram"


def test_a_run_with_a_corrupt_config_is_shown_as_such_and_the_others_still_are(home, text, capsys):
    good = trained(home, text, "good", iters=6)
    bad = trained(home, text, "bad", iters=6)
    (bad / "config.json").write_text("{ not json")
    assert main(["compare", "--json", "good", "bad"]) == 0
    by = {r["name"]: r for r in json.loads(capsys.readouterr().out)["runs"]}
    assert by["good"]["problem"] is None and by["good"]["best_val_loss"] is not None
    assert by["bad"]["problem"].startswith("config is unreadable") and by["bad"]["model"] == "?"
    assert len(by["bad"]["sample"]) == 200            # best.npz carries its own settings
    assert good.is_dir() and (bad / "config.json").read_text() == "{ not json"


def test_compare_reads_a_run_while_it_trains_and_takes_no_lock(home, text):
    import threading
    import time
    trained(home, text, "done", iters=6)
    launch = prepare(data_dir=home, corpus_spec=str(text), encoding=None, run_name="busy",
                     new=False, preset="small", overrides={"hidden": 8, "batch": 2, "seq_len": 8})
    session = Session(launch, cadence=Cadence(eval_every=1e-4, save_every=1e9, metrics_every=0.0))
    stop = threading.Event()
    worker = threading.Thread(target=session.run, kwargs={"stop": stop.is_set})
    worker.start()
    try:
        seen = []
        deadline = time.monotonic() + 20
        while len(seen) < 3 or seen[-1] <= seen[0]:
            assert time.monotonic() < deadline, seen
            c = compare(home, ["busy", "done"], length=10)
            busy = c.runs[0]
            assert busy.problem in ("", "no metrics yet") and c.samples["done"].text
            seen.append(len(busy.train))
        assert session.snapshot().state.name == "RUNNING"        # never stopped by a reader
    finally:
        stop.set()
        worker.join(30)
        launch.lock.unlock()


def test_the_curves_follow_the_tail_and_start_again_with_it(tmp_path):
    path = tmp_path / "metrics.jsonl"
    line = lambda i, v: json.dumps({"iter": i, "chars": i * 8, "loss": v + 1, "val_loss": v,  # noqa: E731
                                    "chars_per_sec": 100.0 * i, "elapsed_s": i}) + "\n"
    path.write_text(line(1, 3.0) + line(2, 2.0))
    tail, run = MetricsTail(path), RunCurves("r", {"batch": 2, "seq_len": 4})
    tail.read()
    run.take(tail)
    assert [p.loss for p in run.val] == [3.0, 2.0] and run.chars_per_sec == 150.0
    with open(path, "a") as f:
        f.write(line(3, 2.5))
    tail.read()
    run.take(tail)
    assert [p.loss for p in run.val] == [3.0, 2.0, 2.5] and run.best.iters == 2
    assert len(run.train) == 3 and run.chars_per_sec == 200.0
    path.write_text(line(9, 1.0))                         # replaced
    tail.read()
    run.take(tail)
    assert [p.iters for p in run.val] == [9] and run.chars_per_sec == 900.0


def test_the_text_s_cached_ngram_line_joins_the_comparison_only_when_all_runs_share_the_text(
        runs, text, tmp_path, capsys):
    assert compare(runs, ["a-rnn", "b-lstm"], samples=False).baseline is None   # not counted yet
    assert main(["baseline", "--run", "a-rnn", "--data-dir", str(runs), "--json"]) == 0
    counted = json.loads(capsys.readouterr().out)
    c = compare(runs, ["a-rnn", "b-lstm"], samples=False)
    assert c.baseline == pytest.approx(counted["nats_per_char"])
    assert c.baseline_name == f"{counted['best_order']}-gram"
    other = tmp_path / "other.txt"
    other.write_text(TEXT[::-1])
    trained(runs, other, "f-other", iters=2)
    assert compare(runs, ["a-rnn", "f-other"], samples=False).baseline is None  # two texts: no line
