"""The Inside screen on a min-cell run and on an LSTM: what each cell has (a state c, gates, the
way its gradient travels) is what the screen offers."""

import pytest
from test_inside_ui import SIZE, monitor, open_inside, plain
from test_tui import corpus  # noqa: F401  (fixture)
from textual.widgets import ContentSwitcher, Static

from kafkarnn.train.launch import prepare


@pytest.fixture(params=["minlstm", "lstm"])
def cell_run(request, tmp_path, corpus):  # noqa: F811
    launch = prepare(data_dir=tmp_path / "home", corpus_spec=str(corpus), encoding=None,
                     run_name="cells", new=False, preset=None,
                     overrides=dict(model=request.param, hidden=8, layers=2, batch=4, seq_len=16))
    yield launch
    launch.lock.unlock()


async def test_the_inside_screen_asks_the_cell(cell_run, tmp_path):
    cell = cell_run.trainer.cfg.model
    app = monitor(cell_run, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_inside(app, pilot)
        before = screen.at_state                              # the best unit's: h or c
        await pilot.press("c")                                # h/c: only a cell with a state c
        if cell == "lstm":
            assert screen.at_state == {"h": "c", "c": "h"}[before]
        else:
            assert before == screen.at_state == "h"
        await pilot.press("3")
        assert screen.query_one(ContentSwitcher).current == "gradient"
        drawn = plain(screen.query_one("#gradient", Static).content)
        assert ("only through the diagonal a_t" in drawn) == (cell == "minlstm")
        gates = ["f", "i"] if cell == "minlstm" else ["i", "f", "o"]
        rows = [line.split()[:2] for line in drawn.splitlines() if line.split()[:1] == ["0"]]
        assert rows == [["0", g] for g in gates]              # layer 0's saturation rows
        await pilot.press("q")
        assert app.trained.wait(10)
