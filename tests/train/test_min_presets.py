"""The presets of the min-cells (`--preset mingru`, `--preset minlstm`): they exist, validate,
follow the text as the default does, and a run made from one trains, is listed and resumes."""

import json

import pytest

from kafkarnn.cli.parsing import PRESETS_TEXT
from kafkarnn.main import main
from kafkarnn.train.config import FITTED, PRESETS, TEACHER_EASES, check, fit_to_cell, fit_to_text
from kafkarnn.train.launch import describe_start, prepare

TINY = ["--hidden", "16", "--layers", "2", "--batch", "2", "--seq-len", "8"]


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_a_min_cells_preset_is_its_cell_tuned_and_valid(cell):
    preset = PRESETS[cell]
    assert preset.model == cell and check(preset) is preset
    assert preset.weight_drop == 0.0 and fit_to_cell(preset) == preset   # nothing for DropConnect
    assert preset != fit_to_cell(PRESETS["default"].replace(model=cell))   # not the default again
    assert cell in FITTED
    assert fit_to_text(preset, 106_000) == preset.replace(dropout_ramp=104, dropout=0.1,   # as measured
                                                          teacher_folds=20, teacher_rise=0.2)
    big = fit_to_text(preset, 4_200_000)                                 # stdlib: less dropout, longer
    assert big.dropout < preset.dropout and big.decay_iters == round(4 * 4_200_000 / (
        preset.batch * preset.seq_len)) > preset.decay_iters


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_a_run_from_a_min_cells_preset_trains_is_listed_and_resumes(home, book, capsys, cell):
    def train(*extra):
        return main(["--headless", "--corpus", str(book), "--preset", cell, *TINY,
                     "--schedule", "fixed", *extra])        # the preset's decay, not a budget's
    assert train("--max-iters", "3") == 0
    assert f"a {cell} has no recurrent matrix" in capsys.readouterr().err
    run = home / "runs" / f"porter-{cell}"
    config = json.loads((run / "config.json").read_text())
    preset = PRESETS[cell]
    assert config["preset"] == cell and config["model"] == cell and config["hidden"] == 16
    for key in ("lr", "lr_min", "weight_decay", "average", "decay_iters", "teacher"):
        assert config[key] == getattr(preset, key), key               # the preset's, fitted: unchanged
    assert config["dropout"] == round(preset.dropout - TEACHER_EASES, 2)   # the teacher's easing
    assert train("--max-iters", "5") == 0                               # the same command goes on
    assert "resuming at iteration 3" in capsys.readouterr().err
    assert main(["runs", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["model"], r["iter"]) for r in listed] == [(f"porter-{cell}", f"{cell} 2x16", 5)]
    assert main(["--headless", "--corpus", str(book), "--preset", "default", "--run",
                 f"porter-{cell}", "--max-iters", "7"]) == 2                # another preset: refused
    assert "created with --preset " + cell in capsys.readouterr().err


def test_a_new_run_from_a_min_cells_preset_is_fitted_to_a_big_text_and_says_so(tmp_path):
    line = "the clerk wrote a letter to his brother who never answered it at all.\n"
    corpus = tmp_path / "ledger.txt"
    corpus.write_text(line * (2_000_000 // len(line)))
    launch = prepare(data_dir=tmp_path / "home", corpus_spec=str(corpus), encoding=None,
                     run_name="big", new=False, preset="mingru", overrides={"schedule": "fixed"})
    launch.lock.unlock()
    cfg, preset = launch.trainer.cfg, PRESETS["mingru"]
    train_chars = len(launch.trainer.train)
    assert cfg.decay_iters == round(4 * train_chars / (preset.batch * preset.seq_len)) > preset.decay_iters
    assert cfg.dropout < preset.dropout
    assert json.loads(launch.run.config_path.read_text())["decay_iters"] == cfg.decay_iters
    assert (f"decaying over {cfg.decay_iters:,} steps, dropout rising to {cfg.dropout:g} by step "
            f"{cfg.decay_iters:,}") in describe_start(launch)
    free = prepare(data_dir=tmp_path / "home", corpus_spec=str(corpus), encoding=None,
                   run_name="free", new=False, preset="mingru", overrides={})   # no limit given
    free.lock.unlock()
    assert (free.trainer.cfg.schedule, free.trainer.cfg.decay_iters, free.trainer.weights_name()) == (
        "anytime", 0, "tail average η 9")


def test_the_help_names_every_preset(capsys):
    assert all(name in PRESETS_TEXT for name in PRESETS)
    for command in ("train", "sweep"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert PRESETS_TEXT in " ".join(capsys.readouterr().out.split())
