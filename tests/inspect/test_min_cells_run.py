"""minGRU and minLSTM from the command line to the Inside views: a run trains, its config is honest
about DropConnect, it samples, `inspect` reads it, and the views say what a min-cell's gradient
through time is."""

import json

import numpy as np
import pytest
from conftest import TEXT
from rich.console import Console

from kafkarnn.engine.model import CharModel, ModelSpec
from kafkarnn.engine.vocab import Vocab
from kafkarnn.errors import KafkarnnError
from kafkarnn.inspect import inside
from kafkarnn.main import main
from kafkarnn.train.config import PRESETS, check, fit_to_cell
from kafkarnn.tui.inside_views import gradient_view

SMALL = ["--hidden", "16", "--batch", "2", "--seq-len", "8"]


def test_the_default_preset_turns_dropconnect_off_for_a_cell_without_a_recurrent_matrix():
    default = PRESETS["default"]
    assert default.weight_drop == 0.3
    assert fit_to_cell(default.replace(model="mingru")).weight_drop == 0.0
    assert fit_to_cell(default.replace(model="minlstm")).weight_drop == 0.0
    assert fit_to_cell(default).weight_drop == 0.3                            # a gru keeps it
    given = fit_to_cell(default.replace(model="mingru", weight_drop=0.2), given={"weight_drop"})
    with pytest.raises(KafkarnnError, match="mingru has no recurrent matrix"):
        check(given)


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_a_min_cell_run_trains_samples_and_is_inspected(home, book, capsys, cell):
    assert main(["--headless", "--corpus", str(book), "--model", cell, *SMALL, "--max-iters", "4"]) == 0
    config = json.loads((home / "runs" / f"porter-{cell}" / "config.json").read_text())
    assert config["model"] == cell and config["weight_drop"] == 0.0 and config["dropout"] > 0
    capsys.readouterr()
    assert main(["sample", "--length", "40", "--seed", "1"]) == 0
    assert len(capsys.readouterr().out.strip()) >= 30
    assert main(["inspect", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cell"] == cell and len(out["gradient_through_time"]) == 2
    gates = {"mingru": ["z"], "minlstm": ["f", "i"]}[cell]
    assert [sorted(layer) for layer in out["saturation"]] == [gates, gates]
    assert main(["inspect"]) == 0
    assert "only through the diagonal a_t" in capsys.readouterr().out


def test_the_start_line_says_dropconnect_is_off(home, book):
    from kafkarnn.seam import Role
    from kafkarnn.train.launch import describe_start, prepare
    for cell in ("mingru", "gru"):
        launch = prepare(data_dir=home, corpus_spec=str(book), encoding=None, run_name=cell,
                         new=False, preset=None,
                         overrides=dict(model=cell, hidden=8, batch=2, seq_len=8),
                         role=Role.HEADLESS)
        try:
            said = describe_start(launch)
        finally:
            launch.lock.unlock()
        assert ("no DropConnect (a mingru has no recurrent matrix)" in said) == (cell == "mingru")


def test_an_explicit_weight_drop_on_a_min_cell_is_one_line_and_creates_nothing(home, book, capsys):
    assert main(["--headless", "--corpus", str(book), "--model", "mingru", *SMALL,
                 "--weight-drop", "0.2", "--max-iters", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kafkarnn: error: --weight-drop: a mingru has no recurrent matrix")
    assert "\n" not in err and not (home / "runs" / "porter-mingru").exists()


def a_look(cell):
    m = CharModel(ModelSpec(vocab_size=len(set(TEXT)), hidden=6, layers=2, cell=cell))
    m.init(np.random.default_rng(0))
    return inside.look(inside.probe_text(m, Vocab.from_text(TEXT), TEXT[:400], 12))


def rendered(group) -> str:
    console = Console(width=100, record=True, color_system=None)
    console.print(group)
    return console.export_text()


@pytest.mark.parametrize("cell", ["mingru", "minlstm", "gru", "rnn"])
def test_the_gradient_view_says_what_the_cell_carries_its_gradient_through(cell):
    text = rendered(gradient_view(a_look(cell), 80))
    assert ("only through the diagonal a_t" in text) == cell.startswith("min")
    assert ("has no sigmoid gates" in text) == (cell == "rnn")
    if cell == "minlstm":
        assert "layer" in text and " f " in text and " i " in text


def test_a_min_cells_units_are_shaded_through_tanh():
    ins = a_look("mingru")
    h = ins.trace.h[1][:, 2]
    assert np.allclose(inside.unit_values(ins.trace, 1, 2), np.tanh(h))
