"""Runs with blocks (`--block`): stored with the run, resumed exactly, sampled and inspected; a run
made before blocks stays a plain stack; bad values refused in one line."""

import json

import numpy as np
import pytest

from kafkarnn.engine.vocab import Vocab
from kafkarnn.main import main
from kafkarnn.train.config import Config
from kafkarnn.train.trainer import Trainer

from test_trainer import assert_same_trainer, straight_and_resumed

TINY = ["--hidden", "12", "--layers", "2", "--batch", "2", "--seq-len", "8"]
TEXT = ("The clerk counted the stamps in the morning and again at night; the numbers never "
        "agreed, and the drawer stayed locked.\n") * 30


def small_trainer(cfg: Config) -> Trainer:
    vocab = Vocab.from_text(TEXT)
    ids = vocab.encode(TEXT)
    split = int(len(ids) * 0.9)
    return Trainer(cfg, vocab, ids[:split], ids[split:])


@pytest.mark.parametrize("cell,kind", [("mingru", "mlp"), ("minlstm", "residual"), ("gru", "mlp")])
def test_resume_through_a_file_is_bit_identical(tmp_path, cell, kind):
    cfg = Config(model=cell, hidden=10, layers=2, batch=3, seq_len=10, dropout=0.25, block=kind,
                 mlp_ratio=2, optimizer="adam", lr=1e-2, lr_min=1e-3, decay_iters=20, weight_decay=0.1)
    straight, resumed = straight_and_resumed(cfg, 20, 10, tmp_path / "checkpoint.npz", small_trainer)
    assert resumed.iteration == 20 and "l1.gamma1" in resumed.model.params
    assert_same_trainer(straight, resumed)


def test_a_run_with_blocks_trains_resumes_samples_and_is_inspected(home, book, capsys):
    def train(*extra):
        return main(["--headless", "--corpus", str(book), "--model", "mingru", *TINY, *extra])
    assert train("--block", "mlp", "--mlp-ratio", "2", "--max-iters", "3") == 0
    run = home / "runs" / "porter-mingru"
    config = json.loads((run / "config.json").read_text())
    assert config["block"] == "mlp" and config["mlp_ratio"] == 2
    assert "in mlp blocks" in capsys.readouterr().err                  # the start line says so
    assert train("--max-iters", "5") == 0                               # the stored block wins
    assert "resuming at iteration 3" in capsys.readouterr().err
    assert train("--block", "plain", "--max-iters", "7") == 2          # another block: refused
    assert "created with --block mlp" in capsys.readouterr().err
    assert main(["sample", "--run", "porter-mingru", "--length", "40", "--seed", "1"]) == 0
    assert len(capsys.readouterr().out) >= 40
    assert main(["inspect", "--run", "porter-mingru", "--json"]) == 0
    inside = json.loads(capsys.readouterr().out)
    gtt = np.array(inside["gradient_through_time"])                     # followed through the blocks
    assert inside["cell"] == "mingru" and gtt.shape[0] == 2 and gtt.shape[1] > 1 and (gtt[:, 0] > 0).all()
    assert inside["units"]                                              # the cells' units, ranked


def test_a_config_stored_before_blocks_is_a_plain_stack():
    old = {k: v for k, v in Config(model="gru").to_dict().items() if k not in ("block", "mlp_ratio")}
    cfg = Config.from_dict(old)
    assert cfg.block == "plain" and cfg.describe() == "gru 1×256"
    assert not any("gamma" in k or "W1" in k for k in small_trainer(cfg.replace(hidden=8)).model.params)


@pytest.mark.parametrize("option,message", [
    (["--block", "attention"], "--block must be plain, residual or mlp, not 'attention'"),
    (["--block", "mlp", "--mlp-ratio", "0"], "--mlp-ratio must be a whole number from 1 to 16"),
])
def test_bad_block_options_are_refused_in_one_line(home, book, capsys, option, message):
    assert main(["--headless", "--corpus", str(book), "--model", "mingru", *TINY, *option,
                 "--max-iters", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kafkarnn: error: ") and message in err and err.count("\n") == 1
    assert not (home / "runs" / "porter-mingru").exists()
