"""A run written by an earlier version still loads, resumes and samples.

tests/runs/data/format-1 was written on 2026-12-05 by the code of commit d2276b0, before the
training layer was restructured (`kafkarnn --headless --preset small --hidden 4 --batch 4
--seq-len 16 --max-iters 3 --corpus sample_texts/the_hearing.txt --run format-1 --threads 1`).
The figures below were measured from it with that code: the same weights give them again.
"""

import json
import shutil
from pathlib import Path

import pytest

from kafkarnn.main import main
from kafkarnn.runs.checkpoint import load_checkpoint

FIXTURE = Path(__file__).parent / "data" / "format-1"
CORPUS = Path(__file__).parents[2] / "sample_texts" / "the_hearing.txt"
NATS_THEN = 4.0213524601998945             # `kafkarnn score the_hearing.txt --run format-1 --json`
SAMPLE_THEN = "?hWGcnPNAel.cqoH,pE'lmvlBs\"l.alw:MtlaTgO"    # `sample --length 40 --seed 1`


@pytest.fixture
def old_run(home):
    """The committed run folder, copied into a private data folder (its files 0600, as a run's)."""
    run = home / "runs" / "format-1"
    shutil.copytree(FIXTURE, run)
    for f in run.iterdir():
        f.chmod(0o600)
    run.chmod(0o700)
    return run


def test_an_old_checkpoint_predicts_as_it_did(old_run, capsys):
    assert main(["score", str(CORPUS), "--run", "format-1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nats_per_char"] == pytest.approx(NATS_THEN, abs=1e-5)


def test_an_old_checkpoint_samples_as_it_did(old_run, capsys):
    assert main(["sample", "--run", "format-1", "--length", "40", "--seed", "1"]) == 0
    assert capsys.readouterr().out.rstrip("\n") == SAMPLE_THEN


def test_an_old_run_resumes_where_it_stopped(old_run, capsys):
    assert main(["--headless", "--run", "format-1", "--corpus", str(CORPUS), "--max-iters", "5",
                 "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert "resuming at iteration 3" in err and "finished run format-1 at iteration 5" in err
    _, meta = load_checkpoint(old_run / "checkpoint.npz")
    assert meta["iteration"] == 5
    lines = [json.loads(line) for line in (old_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in lines] == [3, 5]
