"""The benchmark scripts still run and still check what they claim to check, on a text from
sample_texts/ (a clone has no ../shared corpora). `--quick` runs: seconds each, figures meaningless;
what is asserted is that the scripts work, not how fast anything is."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from kafkarnn.train.config import PRESETS

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "sample_texts" / "the_petition.txt"


def run_benchmark(name: str, tmp_path, *args: str, threads: str | None = "1") -> dict:
    out = tmp_path / f"{name}.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / f"{name}.py"),
                           *(["--threads", threads] if threads else []), "--quick", "--out", str(out), *args],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(out.read_text())


@pytest.mark.slow          # 4-8 s each: the default suite stays under 5 minutes
def test_throughput_checks_the_seed_maths_and_bounds_each_config(tmp_path):
    r = run_benchmark("throughput", tmp_path, "--no-torch", "--corpus", str(CORPUS),
                      "--check-points", "20")
    maths = r["seed"]["maths"]
    assert maths["passed"] and maths["same_start"] and maths["points"] == 20
    assert maths["max_rel_err"] < 1e-9
    assert r["seed"]["ratio"] > 0
    rows = {row["config"]: row for row in r["configs"]}
    assert set(rows) == {"rnn100", "lstm256", "lstm512", "default"}
    default = rows.pop("default")          # the preset as users train it, at its best thread count
    assert default["threads"] == 1 and default["per_threads"] == {"1": default["chars_per_s"]}
    assert default["chars_per_s"] > 0 and (default["cell"], default["layers"]) == ("gru", 2)
    for row in rows.values():
        alone = row["products_alone"]
        # The step and the products alone are timed at different moments, so a load burst can
        # put either ahead: only what follows from the arithmetic of the report is asserted.
        assert row["chars_per_s"] > 0 and alone["chars_per_s"] > 0
        products_s = [us / 1e6 for us in alone["per_product_us"].values()]
        assert min(products_s) > 0 and alone["step_s"] == pytest.approx(sum(products_s))
        assert alone["chars_per_s"] * alone["step_s"] == pytest.approx(row["batch"] * row["seq_len"])
        assert 0 < alone["uncounted_s"] < alone["step_s"]      # some of those products, not all
        assert row["pct_products_alone"] == pytest.approx(100 * row["chars_per_s"] / alone["chars_per_s"])
        assert row["pct_ceiling"] > 0 and row["ceiling_gflops"] > 0


@pytest.mark.slow          # 4-8 s each: the default suite stays under 5 minutes
def test_quality_trains_on_each_corpus_below_a_uniform_guess(tmp_path):
    r = run_benchmark("quality", tmp_path, "--corpus", str(CORPUS), "--corpus", str(CORPUS.parent),
                      "--presets", "small", "--marks", "1")
    assert [(Path(run["corpus"]).name, run["preset"]) for run in r["runs"]] == [
        (CORPUS.name, "small"), ("sample_texts", "small")]
    vocab = len(set(CORPUS.read_text(encoding="utf-8")))
    for run in r["runs"][:1]:
        assert run["failed"] is None
        assert run["best_val"] < math.log(vocab)         # learnt something in a second or two
        assert run["best_val_bits"] == pytest.approx(run["best_val"] / math.log(2))
        assert run["marks"]["3"] == run["best_val"] and run["validations"] >= 1
        assert run["marks"]["1"] is None or run["marks"]["1"] >= run["best_val"]
        assert 0 < run["not_training"] < 1 and run["train_s"] < run["wall_s"]
        assert len(run["sample"]) == 200


def test_sampling_and_corpus_scaling_report_their_targets(tmp_path):
    s = run_benchmark("sampling", tmp_path, "--corpus", str(CORPUS))
    assert s["length"] == 200 and s["rows"]
    for row in s["rows"]:          # timed at other moments than the samples: no order between them
        assert row["products_alone_ms"] > 0 and len(row["times_ms"]) == s["repeats"]
        assert 0 < row["min_ms"] <= row["median_ms"] <= row["max_ms"]
        assert row["us_per_char"] == pytest.approx(1000 * row["median_ms"] / s["length"])
    c = run_benchmark("corpus_scaling", tmp_path)
    for row in c["rows"]:
        assert row["chars"] == row["bytes"] and row["load_s"] > 0 and row["ratio"] > 0


@pytest.mark.slow          # ~25 s of real hand-offs: the default suite stays under 5 minutes
def test_handoff_and_validation_cost_measure_a_real_run(tmp_path):
    h = run_benchmark("handoff", tmp_path, "--corpus", str(CORPUS))
    assert len(h["take_over_pause_s"]) == len(h["detach_pause_s"]) == h["rounds"] == 1
    assert all(0 < p < 60 for p in h["take_over_pause_s"] + h["detach_pause_s"])
    v = run_benchmark("validation_cost", tmp_path, "--corpus", str(CORPUS))
    (row,) = v["rows"]
    assert row["validations"] >= 1 and 0 < row["train_s"] < row["wall_s"]
    assert row["not_training"] == pytest.approx(1 - row["train_s"] / row["wall_s"])


@pytest.mark.slow          # 4-8 s each: the default suite stays under 5 minutes
def test_threads_sets_the_tuner_against_each_fixed_count_quiet_and_with_a_neighbour(tmp_path):
    r = run_benchmark("threads", tmp_path, "--corpus", str(CORPUS), threads=None)   # every usable core
    counts = r["candidates"]
    assert counts[0] == 1 and r["presets"] == ["default", "small"] and "quiet" in r["scenarios"]
    for preset in r["presets"]:
        for scenario in r["scenarios"]:
            rows = [row for row in r["rows"] if (row["preset"], row["scenario"]) == (preset, scenario)]
            assert [row["policy"] for row in rows] == ["auto", *map(str, counts)]
            assert all(row["chars_per_s"] > 0 for row in rows)
            assert rows[0]["decisions"][0] and rows[0]["final_threads"] in counts   # the tuner chose
    assert {(s["preset"], s["scenario"]) for s in r["summary"]} == {
        (p, s) for p in r["presets"] for s in r["scenarios"]}
    assert all(s["best_fixed"] in counts and s["ratio"] > 0 for s in r["summary"])


def test_ladder_puts_the_ngram_line_under_every_network(tmp_path):
    r = run_benchmark("ladder", tmp_path, "--corpus", str(CORPUS), "--rungs", "ngram,rnn",
                      "--preset", "small")
    ngram, rnn = r["results"]
    assert (ngram["rung"], rnn["rung"]) == ("ngram", "rnn") and not ngram["failed"] and not rnn["failed"]
    nats = [o["nats_per_char"] for o in ngram["orders"]]
    assert ngram["best_val"] == min(nats) and ngram["label"] == f"{nats.index(min(nats)) + 1}-gram"
    assert rnn["params"] > 0 and rnn["chars_per_s"] > 0 and rnn["iterations"] > 0
    assert rnn["best_val"] == min(v for _, v in rnn["val_history"])
    below = [s for s, v in rnn["val_history"] if v < ngram["best_val"]]
    assert rnn["below_ngram_at_s"] == (below[0] if below else None)


@pytest.mark.slow          # 4-8 s each: the default suite stays under 5 minutes
def test_ladder_starts_a_min_cell_from_its_own_preset_when_asked(tmp_path):
    r = run_benchmark("ladder", tmp_path, "--corpus", str(CORPUS), "--rungs", "rnn,mingru",
                      "--preset", "small", "--cell-presets")
    rnn, mingru = r["results"]
    assert (rnn["preset"], mingru["preset"]) == ("small", "mingru") and r["cell_presets"]
    preset = PRESETS["mingru"]
    assert mingru["label"] == f"mingru {preset.layers}×{preset.hidden}" and not mingru["failed"]


@pytest.mark.slow          # 4-8 s each: the default suite stays under 5 minutes
def test_copying_times_the_index_and_follows_copying_as_training_goes_on(tmp_path):
    r = run_benchmark("copying", tmp_path, "--corpus", str(CORPUS), "--source", str(CORPUS))
    assert r["methods"][-1] == "numpy" and {row["method"] for row in r["build"]} == set(r["methods"])
    for row in r["build"]:
        assert row["build_s"] > 0 and 0 < row["check_ms"] <= row["check_max_ms"]
        assert row["cached_load_ms"] > 0 and row["peak_extra_mib"] >= 0
    over = r["overhead"]
    assert over["step_s_alone"] > 0 and over["step_s_while_building"] > 0
    points = r["growth"]
    assert [p["iter"] for p in points] == sorted(p["iter"] for p in points) and points[0]["iter"] == 0
    for p in points:
        assert p["gap"] == pytest.approx(p["val_loss"] - p["train_loss"])
        assert 0 < p["longest_median"] <= p["longest_max"] <= 200


def test_the_planted_bugs_table_is_not_stale_and_a_snippet_must_occur_once(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "planted.py"), "--list"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr          # every snippet found once, every test file there
    assert len(proc.stdout.splitlines()) >= 20
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import planted
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    (tmp_path / "m.py").write_text("x = 1\nx = 1\ny = 2\n")
    twice = planted.Bug("b", "a", "p", "m.py", "x = 1", "x = 0", ())
    with pytest.raises(ValueError, match="2 times"):
        planted.plant(tmp_path, twice)
    planted.plant(tmp_path, planted.Bug("b", "a", "p", "m.py", "y = 2", "y = 3", ()))
    assert (tmp_path / "m.py").read_text() == "x = 1\nx = 1\ny = 3\n"


@pytest.mark.slow          # 4-8 s each: the default suite stays under 5 minutes
def test_mixing_mixes_the_best_validated_weights_with_each_order(tmp_path):
    r = run_benchmark("mixing", tmp_path, "--corpus", str(CORPUS), "--orders", "3,5")
    assert [m["order"] for m in r["mixes"]] == [3, 5]
    for m in r["mixes"]:
        assert m["network_nats_per_char"] == pytest.approx(r["best_val"], rel=1e-5)  # validation's
        assert m["nats_per_char"] <= min(m["network_nats_per_char"], m["table_nats_per_char"]) + 1e-9
