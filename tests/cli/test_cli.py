"""The command line as a user meets it: headless training, resume, sample, runs, and every error."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import TEXT, TINY

from kafkarnn.main import main
from kafkarnn.runs.checkpoint import load_checkpoint


def train(book, *extra):
    return main(["--headless", "--corpus", str(book), *TINY, *extra])


def error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("kafkarnn: error: "), err
    assert "Traceback" not in "\n".join(err)
    return err[-1]


def test_train_then_resume_to_the_total_iteration(home, book, capsys):
    assert train(book, "--max-iters", "20") == 0
    out = capsys.readouterr()
    assert "new run" in out.err and "iter" in out.out
    run = home / "runs" / "porter-rnn"
    assert {"checkpoint.npz", "best.npz", "metrics.jsonl", "samples.txt", "config.json"} <= \
        {p.name for p in run.iterdir()}
    assert load_checkpoint(run / "checkpoint.npz")[1]["iteration"] == 20
    assert train(book, "--max-iters", "35") == 0            # the same command goes on
    assert "resuming at iteration 20" in capsys.readouterr().err
    assert load_checkpoint(run / "checkpoint.npz")[1]["iteration"] == 35
    config = json.loads((run / "config.json").read_text())
    assert config["hidden"] == 16 and config["corpus"]["fingerprint"]["length"] == len(TEXT)
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["iter"] == 35 and "val_loss" in lines[-1]


def test_new_never_overwrites(home, book):
    assert train(book, "--max-iters", "3") == 0
    assert train(book, "--max-iters", "3", "--new") == 0
    assert {p.name for p in (home / "runs").iterdir()} == {"porter-rnn", "porter-rnn-2"}


def test_sample_and_runs(home, book, capsys):
    assert train(book, "--max-iters", "10") == 0
    capsys.readouterr()
    assert main(["sample", "--run", "porter-rnn", "--prompt", "The ", "--length", "40",
                 "--seed", "3"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("The ") and len(first) == 4 + 40 + 1
    main(["sample", "--run", "porter-rnn", "--prompt", "The ", "--length", "40", "--seed", "3"])
    assert capsys.readouterr().out == first                    # --seed makes it reproducible
    assert main(["sample", "--best", "--length", "5"]) == 0    # the latest run by default
    capsys.readouterr()
    assert main(["runs", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert runs[0]["name"] == "porter-rnn" and runs[0]["iter"] == 10
    assert {"name", "iter", "best_val_loss", "corpus", "model", "path"} <= set(runs[0])
    assert main(["runs"]) == 0 and "porter-rnn" in capsys.readouterr().out


def test_prompt_with_unknown_characters(home, book, capsys):
    train(book, "--max-iters", "2")
    capsys.readouterr()
    assert main(["sample", "--prompt", "Zürich ☃"]) == 2
    line = error_line(capsys)
    assert "'ü'" in line and "'☃'" in line


@pytest.mark.parametrize("args,fragment", [
    (["--hidden", "0"], "--hidden"),
    (["--hidden", "many"], "invalid int"),
    (["--model", "transformer"], "--model"),
    (["--lr", "-1"], "--lr"),
    (["--dropout", "1.5"], "--dropout"),
    (["--weight-drop", "1"], "--weight-drop must be in [0, 1)"),
    (["--restart-every", "-3"], "--restart-every must be a whole number ≥ 0"),
    (["--decay-power", "0"], "--decay-power must be between 0.1 and 10"),
    (["--max-iters", "-5"], "must be positive"),
    (["--preset", "huge"], "unknown preset"),
    (["--run", "../escape"], "invalid run name"),
    (["--encoding", "klingon"], "unknown encoding"),
    (["--bogus"], "unrecognized"),
])
def test_bad_options(home, book, capsys, args, fragment):
    assert train(book, *args) == 2
    assert fragment in error_line(capsys)


@pytest.mark.parametrize("args", [["--hidden", "0"], ["--model", "mingru", "--weight-drop", "0.2"]])
def test_bad_values_are_refused_before_the_text_is_fetched(home, capsys, monkeypatch, args):
    """The default text downloads on first use: a typo must not cost (or print) a download."""
    def fetch(*a, **k):
        raise AssertionError("the corpus was loaded before the options were checked")
    monkeypatch.setattr("kafkarnn.train.launch.load_corpus", fetch)
    assert main(["--headless", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kafkarnn: error: " + args[-2])


def test_a_model_too_big_for_memory_ends_in_one_line(home, book, capsys, monkeypatch):
    def build(*a, **k):
        raise MemoryError
    monkeypatch.setattr("kafkarnn.train.launch.Trainer", build)
    assert train(book) == 2
    assert "out of memory" in error_line(capsys)
    assert main(["sample", "--length", "99999999999"]) == 2     # (no 745 GiB array attempted)
    assert "--length: must be at most 10,000,000" in error_line(capsys)


@pytest.mark.parametrize("content,fragment", [
    (None, "not found"),
    (b"", "empty"),
    (b"\x00\x01\x02binary\x00" * 50, "binary"),
    (b"caf\xe9 " * 50, "not valid UTF-8"),
])
def test_bad_corpus(home, tmp_path, capsys, content, fragment):
    path = tmp_path / "bad.txt"
    if content is not None:
        path.write_bytes(content)
    assert main(["--headless", "--corpus", str(path)]) == 2
    assert fragment in error_line(capsys)


def test_corrupt_checkpoint_is_refused_and_left_alone(home, book, capsys):
    train(book, "--max-iters", "4")
    ckpt = home / "runs" / "porter-rnn" / "checkpoint.npz"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    damaged = ckpt.read_bytes()
    capsys.readouterr()
    assert train(book, "--max-iters", "8") == 2
    assert "corrupt" in error_line(capsys)
    assert ckpt.read_bytes() == damaged                      # nothing was written over it


def test_pickled_checkpoint_is_refused(home, book, capsys):
    train(book, "--max-iters", "2")
    ckpt = home / "runs" / "porter-rnn" / "checkpoint.npz"
    np.savez(ckpt.with_suffix(".tmp.npz"), evil=np.array([{"x": 1}], dtype=object))
    os.replace(ckpt.with_suffix(".tmp.npz"), ckpt)
    capsys.readouterr()
    assert train(book, "--max-iters", "4") == 2
    error_line(capsys)


def test_resume_refuses_another_corpus_and_changed_options(home, book, tmp_path, capsys):
    train(book, "--max-iters", "2")
    book.write_text(TEXT.replace("porter", "keeper"))
    capsys.readouterr()
    assert train(book, "--max-iters", "4") == 2
    line = error_line(capsys)
    assert "was trained on" in line and "--new" in line
    book.write_text(TEXT)
    assert main(["--headless", "--corpus", str(book), *TINY[:-2], "--seq-len", "9"]) == 2
    assert "--seq-len 8" in error_line(capsys)


def test_runs_resumed_by_name_alone(home, book, capsys):
    train(book, "--max-iters", "3")
    assert main(["--headless", "--run", "porter-rnn", "--max-iters", "6"]) == 0
    assert "resuming at iteration 3" in capsys.readouterr().err


def test_runs_listed_into_a_pipe_are_cut_short_nowhere(home, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    book = tmp_path / "the-collected-letters-of-a-porter-at-the-door.txt"
    book.write_text(TEXT)
    name = "a-run-name-long-enough-to-crowd-an-eighty-column-table"
    assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "2", "--run", name]) == 0
    capsys.readouterr()
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert name in out and book.name in out and str(home / "runs") in out


def test_offline_default_falls_back_to_the_bundled_texts(home, capsys):
    assert main(["--headless", "--preset", "small", "--hidden", "8", "--max-iters", "1"]) == 0
    err = capsys.readouterr().err
    assert "offline" in err and "sample-texts" in err


def test_blas_threads_default_to_one_on_a_small_machine(monkeypatch):
    from kafkarnn.train import thread_policy as policy
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(policy.os, "cpu_count", lambda: 2)
    policy.set_blas_threads(None)
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    monkeypatch.setattr(policy.os, "cpu_count", lambda: 16)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    policy.set_blas_threads(None)                                  # the user's own setting stays
    assert os.environ["OPENBLAS_NUM_THREADS"] == "3"
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    policy.set_blas_threads(None, training=True)                   # a trainer's tuner chooses
    assert "OPENBLAS_NUM_THREADS" not in os.environ
    policy.set_blas_threads(6)                                     # --threads wins
    assert os.environ["OMP_NUM_THREADS"] == "6" and os.environ["OPENBLAS_NUM_THREADS"] == "6"


def test_a_trainer_fixes_its_threads_when_told_and_else_chooses(monkeypatch, tmp_path):
    from kafkarnn.train.thread_policy import tuner_for
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    assert tuner_for(None).auto
    fixed = tuner_for(3)
    assert not fixed.auto and fixed.threads == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")                  # the user's own variable fixes it
    assert tuner_for(None).describe() == "2 (fixed)"


# ---- resume across processes, by the parameters ----------------------------------------------

def kafkarnn(*args, **popen):
    """`python -m kafkarnn ARGS` in a child process, its output captured."""
    return subprocess.Popen([sys.executable, "-m", "kafkarnn", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def finished(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out, err


def test_resume_across_processes_ends_with_the_parameters_of_one_run(home, book):
    args = ["--headless", "--corpus", str(book), "--model", "gru", "--layers", "2", "--hidden", "12",
            "--batch", "2", "--seq-len", "8", "--dropout", "0.2", "--weight-drop", "0.3",
            "--warmup-iters", "3", "--decay-iters", "20", "--lr-min", "1e-4",
            "--threads", "1"]             # exact across processes at a fixed count (threads.py)
    one = kafkarnn(*args, "--data-dir", str(home / "one"), "--max-iters", "24")
    two = kafkarnn(*args, "--data-dir", str(home / "two"), "--max-iters", "12")
    finished(two)
    halfway, _ = load_checkpoint(home / "two" / "runs" / "porter-gru" / "checkpoint.npz")
    _, err = finished(kafkarnn(*args, "--data-dir", str(home / "two"), "--max-iters", "24"))
    assert "resuming at iteration 12" in err
    finished(one)
    a, meta_a = load_checkpoint(home / "one" / "runs" / "porter-gru" / "checkpoint.npz")
    b, meta_b = load_checkpoint(home / "two" / "runs" / "porter-gru" / "checkpoint.npz")
    assert a.keys() == b.keys() and {"param/l1.Wh", "opt/m", "opt/v", "state/l1", "positions"} <= set(a)
    for k in a:                            # parameters, Adam's moments, hidden states, positions
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
    for key in ("iteration", "chars", "smooth_loss", "rng", "bad_steps"):
        assert meta_a[key] == meta_b[key], key
    assert meta_a["iteration"] == 24
    assert not np.array_equal(halfway["param/l1.Wh"], a["param/l1.Wh"])    # it trained on
    stored = json.loads((home / "two" / "runs" / "porter-gru" / "config.json").read_text())
    assert stored["teacher"] == 0.3          # a small text's default: learning from its table too


def unread_stdout():
    """A pipe's write end whose reader is gone: every write to it fails with EPIPE (`| head`)."""
    read, write = os.pipe()
    os.close(read)
    return write


def test_a_closed_pipe_stops_a_headless_run_and_saves_it(home, book):
    """`kafkarnn --headless | head`: once no one reads the progress lines, the run stops between
    two steps and saves, with its usual last line and no traceback."""
    out = unread_stdout()
    proc = subprocess.Popen([sys.executable, "-m", "kafkarnn", "--headless", "--corpus", str(book),
                             *TINY, "--max-iters", "10000000", "--save-every", "0.3"],
                            stdout=out, stderr=subprocess.PIPE, text=True)
    os.close(out)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "Traceback" not in err and "Exception" not in err, err
    it = int(re.search(r"saved run porter-rnn at iteration ([\d,]+) —", err)[1].replace(",", ""))
    assert 0 < it < 10000000
    assert load_checkpoint(home / "runs" / "porter-rnn" / "checkpoint.npz")[1]["iteration"] == it


def test_a_closed_pipe_ends_a_command_quietly(home, book):
    assert main(["--headless", "--corpus", str(book), *TINY, "--max-iters", "2"]) == 0
    out = unread_stdout()
    proc = subprocess.Popen([sys.executable, "-m", "kafkarnn", "runs", "--json"], stdout=out,
                            stderr=subprocess.PIPE, text=True)
    os.close(out)
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (141, "")          # as a process that SIGPIPE ended


# ---- sample: --temperature and --top-k ---------------------------------------------------------

def greedy_continuation(ckpt, prompt: str, length: int) -> str:
    """The argmax continuation, worked out from the whole prefix each time (no one-step path)."""
    from kafkarnn.engine.vocab import Vocab
    from kafkarnn.train.config import Config
    from kafkarnn.train.trainer import build_model
    arrays, meta = load_checkpoint(ckpt)
    vocab = Vocab(meta["vocab"])
    model = build_model(Config.from_dict(meta["config"]), len(vocab))
    for k in model.params:
        model.params[k][...] = arrays[f"param/{k}"]
    ids = list(vocab.encode(prompt))
    for _ in range(length):
        logits, _, _ = model.forward(np.array(ids)[:, None], model.zero_state(1))
        ids.append(int(logits[:, -1].argmax()))
    return vocab.decode(ids), model, vocab


def sample_text(capsys, *args):
    assert main(["sample", "--run", "porter-rnn", "--prompt", "The ", "--length", "30", *args]) == 0
    out = capsys.readouterr().out
    assert out.startswith("The ") and out.endswith("\n")
    return out[:-1]


def test_sample_temperature_0_and_top_k_1_give_the_argmax_continuation(home, book, capsys):
    assert train(book, "--max-iters", "30", "--dtype", "float64") == 0
    greedy, _, _ = greedy_continuation(home / "runs" / "porter-rnn" / "checkpoint.npz", "The ", 30)
    capsys.readouterr()
    assert sample_text(capsys, "--temperature", "0", "--seed", "1") == greedy
    assert sample_text(capsys, "--temperature", "0", "--seed", "2") == greedy
    assert sample_text(capsys, "--top-k", "1", "--temperature", "1.5", "--seed", "3") == greedy
    assert sample_text(capsys, "--temperature", "1.5", "--seed", "3") != greedy   # it does draw


def test_sample_top_k_draws_only_among_the_k_likeliest(home, book, capsys):
    assert train(book, "--max-iters", "30", "--dtype", "float64") == 0
    _, model, vocab = greedy_continuation(home / "runs" / "porter-rnn" / "checkpoint.npz", "", 0)
    capsys.readouterr()

    def outside_top(text: str, k: int) -> int:
        """How many of the generated characters were not among the k likeliest for their prefix."""
        ids = vocab.encode(text)
        logits, _, _ = model.forward(ids[:-1, None].astype(np.intp), model.zero_state(1))
        ranks = (logits > logits[ids[1:], np.arange(len(ids) - 1)]).sum(axis=0)   # 0: the likeliest
        return int((ranks[3:] >= k).sum())                # from the prompt's last character on

    hot = sample_text(capsys, "--temperature", "3", "--seed", "4")
    assert outside_top(hot, 3) > 0                        # without a crop, a hot sample strays
    for seed in ("4", "5"):
        assert outside_top(sample_text(capsys, "--temperature", "3", "--top-k", "3", "--seed", seed), 3) == 0


@pytest.mark.parametrize("args,fragment", [
    (["--temperature", "-1"], "--temperature must be 0 or more"),
    (["--temperature", "nan"], "--temperature must be 0 or more"),
    (["--temperature", "warm"], "invalid float"),
    (["--top-k", "0"], "must be positive"),
    (["--top-k", "2.5"], "not a number"),
])
def test_sample_refuses_bad_temperature_and_top_k(home, book, capsys, args, fragment):
    assert train(book, "--max-iters", "2") == 0
    capsys.readouterr()
    assert main(["sample", "--length", "5", *args]) == 2
    assert fragment in error_line(capsys)
    assert capsys.readouterr().out == ""


# ---- --max-seconds ------------------------------------------------------------------------------

def test_max_seconds_bounds_each_sessions_training_time(home, book):
    ckpt = home / "runs" / "porter-rnn" / "checkpoint.npz"
    for session in (1, 2):                 # the limit is per invocation: a resumed run trains again
        assert train(book, "--max-seconds", "0.5", "--max-iters", "100000") == 0   # (a backstop)
        meta = load_checkpoint(ckpt)[1]
        # training time is what the steps took: it reaches the limit, passes it by one step at most
        assert 0.5 * session <= meta["elapsed_s"] < 0.5 * session + 0.3, meta["elapsed_s"]
        assert meta["iteration"] > (iters if session == 2 else 0)
        iters = meta["iteration"]
        lines = [json.loads(line) for line in (ckpt.parent / "metrics.jsonl").read_text().splitlines()]
        assert lines[-1]["iter"] == iters and lines[-1]["elapsed_s"] == round(meta["elapsed_s"], 3)


# ---- signals while training headless --------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_training_headless_saves_and_exits_0(home, book, sig):
    ckpt = home / "runs" / "porter-rnn" / "checkpoint.npz"
    proc = kafkarnn("--headless", "--corpus", str(book), *TINY, "--save-every", "0.3",
                    env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        deadline = time.time() + 60
        while not ckpt.exists():           # the first periodic save: the loop is training, and the
            assert proc.poll() is None and time.time() < deadline, proc.poll()   # handler is in place
            time.sleep(0.05)
        first = load_checkpoint(ckpt)[1]["iteration"]
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    saved = load_checkpoint(ckpt)[1]["iteration"]
    assert saved >= first > 0
    assert f"kafkarnn: {sig.name}: saved run porter-rnn at iteration {saved:,} — run the same command" in err
    assert out.splitlines()[-1].startswith(f"iter {saved:>8,}")


# ---- inspect, score, --prompt-file ---------------------------------------------------------------

SHUT = "now I shall shut the door; it was open for you alone.\n"


@pytest.fixture
def trained(home, book, capsys):
    assert train(book, "--max-iters", "12") == 0
    capsys.readouterr()
    return home / "runs" / "porter-rnn"


def test_inspect_json_ranks_units_and_gives_the_gradient_through_time(trained, tmp_path, capsys):
    assert main(["inspect", "--run", "porter-rnn", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    units = out["units"]
    assert units and {"layer", "unit", "feature", "correlation"} <= set(units[0])
    strengths = [abs(u["correlation"]) for u in units]
    assert strengths == sorted(strengths, reverse=True)           # best first
    gtt = out["gradient_through_time"]
    layers = json.loads((trained / "config.json").read_text())["layers"]
    assert len(gtt) == layers and all(len(g) == 8 for g in gtt)  # k = 0 … seq_len - 1
    assert all(v > 0 for g in gtt for v in g) and out["text_chars"] > 100   # the validation text
    text = tmp_path / "shut.txt"
    text.write_text(SHUT * 4)
    assert main(["inspect", "--text", str(text), "--feature", "word_start", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    best = out["best_per_feature"]["word_start"]
    assert out["text_chars"] == len(SHUT) * 4
    assert out["shown"] == {k: best[k] for k in ("layer", "unit", "state")}


def test_inspect_prints_the_shaded_text_and_the_unit_table(trained, capsys):
    assert main(["inspect", "--unit", "0:3"]) == 0
    out = capsys.readouterr().out
    assert "layer 0 unit 3 (h)" in out and "The porter said" in out
    assert any(g in out for g in "▁▂▃▄▅▆▇█") and "correlation" in out and "in_word" in out
    assert "gradient through time" in out


def test_score_json_equals_score_text(trained, tmp_path, capsys):
    from kafkarnn.inspect.inference import load_for_sampling
    from kafkarnn.train.scoring import score_text
    text = tmp_path / "door.txt"
    text.write_text("The door was open for you alone.\nnow I shall shut it.")
    assert main(["score", "--run", "porter-rnn", str(text), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    sampler, _ = load_for_sampling(trained.parent.parent, "porter-rnn")
    assert got == score_text(sampler.model, sampler.vocab, text.read_text()).to_json()
    assert set(got) == {"chars", "nats_per_char", "bits_per_char", "perplexity"}
    assert main(["score", str(text)]) == 0
    out = capsys.readouterr().out
    assert f"{got['nats_per_char']:.4f} nats/char" in out and "perplexity" in out
    assert "now I shall shut it." in out


def test_sample_continues_a_prompt_file_with_newlines(trained, tmp_path, capsys):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("The porter said\nthe door ")
    assert main(["sample", "--prompt-file", str(prompt), "--length", "30", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("The porter said\nthe door ") and len(out) == 25 + 30 + 1


@pytest.mark.parametrize("args,fragment", [
    (["score", "missing.txt"], "cannot read text file missing.txt"),
    (["score", "BAD"], "is not UTF-8 text"),
    (["score", "UNKNOWN"], "never saw: 'Z'"),
    (["inspect", "--text", "BAD"], "is not UTF-8 text"),
    (["inspect", "--feature", "loudness"], "unknown feature 'loudness'"),
    (["inspect", "--unit", "x:1"], "--unit must be LAYER:N"),
    (["inspect", "--unit", "0:99"], "units 0–15"),
    (["inspect", "--unit", "0:1", "--feature", "digit"], "not allowed with"),
    (["inspect", "--text", "UNKNOWN"], "never saw"),
    (["sample", "--prompt-file", "missing.txt"], "cannot read prompt file"),
    (["sample", "--prompt", "a", "--prompt-file", "BAD"], "not allowed with"),
])
def test_inspect_score_and_prompt_file_errors(trained, tmp_path, capsys, args, fragment):
    (tmp_path / "bad.txt").write_bytes(b"The \xff door")
    (tmp_path / "unknown.txt").write_text("Zebra")
    names = {"BAD": str(tmp_path / "bad.txt"), "UNKNOWN": str(tmp_path / "unknown.txt"),
             "missing.txt": str(tmp_path / "missing.txt")}
    assert main([names.get(a, a) for a in args]) == 2
    line = error_line(capsys)
    assert fragment.replace("missing.txt", str(tmp_path / "missing.txt")) in line, line
