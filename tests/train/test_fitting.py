"""The default preset follows the size of the text: its decay spans four passes (at least 1,000
steps), its dropout falls with size and rises to that value over the first four passes; set when
a run is created, stored, and kept on resume."""

import json
import math

import pytest

from kafkarnn.train.config import POWER_UP_TO, PRESETS, TEACHER_UP_TO, check, fit_to_text
from kafkarnn.train.launch import describe_start, prepare

DEFAULT = PRESETS["default"]
PER_STEP = DEFAULT.batch * DEFAULT.seq_len


def test_a_small_text_learns_from_its_table_with_less_dropout_rising_over_four_passes():
    for chars in (1_000, 106_000, 160_000, 160_001, 200_000):   # Metamorphosis holds 106,000
        assert fit_to_text(DEFAULT, chars) == DEFAULT.replace(
            dropout_ramp=round(4 * chars / PER_STEP), teacher=0.3, dropout=0.2, weight_drop=0.2,
            teacher_folds=20,                              # its table cut in 20 pieces, not 5,
            teacher_rise=0.2 if chars <= 160_000 else 0.0,   # its weight rising to 0.5 as the rate falls
            decay_power=1.5)                                 # and the rate held up longer first
    over = fit_to_text(DEFAULT, 200_001)
    assert fit_to_text(DEFAULT, POWER_UP_TO).decay_power == 1.5 and over.decay_power == 1.5
    assert fit_to_text(DEFAULT, POWER_UP_TO + 1).decay_power == 1.0      # bigger: the plain cosine
    assert (over.teacher_folds, over.teacher_rise) == (5, 0.0) == (DEFAULT.teacher_folds, DEFAULT.teacher_rise)
    mine = fit_to_text(DEFAULT.replace(teacher_folds=10), 106_000, given={"teacher_folds": 10, "teacher_rise": 0})
    assert (mine.teacher_folds, mine.teacher_rise) == (10, 0)                     # yours win
    assert fit_to_text(DEFAULT.replace(decay_power=1.0), 106_000, given={"decay_power": 1.0}).decay_power == 1
    strong = fit_to_text(DEFAULT.replace(teacher=0.9), 106_000, given={"teacher": 0.9})
    assert strong.teacher_rise == 0 and check(strong) is strong            # your α stays: 0.9, valid
    assert fit_to_text(DEFAULT, 106_705).dropout_ramp == 104     # Metamorphosis: ~100 of ~1,100 steps
    alone = fit_to_text(DEFAULT.replace(teacher=0.0), 106_705, given={"teacher": 0.0})   # --teacher 0
    assert (alone.teacher, alone.dropout, alone.weight_drop) == (0.0, 0.3, 0.3)
    bigger = fit_to_text(DEFAULT.replace(teacher=0.5), 3_000_000, given={"teacher": 0.5})
    assert bigger.teacher == 0.5 and bigger.weight_drop == round(0.3 - 0.15 * math.log10(15) - 0.1, 2)


def test_the_teacher_stops_at_its_line_for_the_default_and_the_min_cells():
    assert fit_to_text(DEFAULT, TEACHER_UP_TO).teacher == 0.3
    over = fit_to_text(DEFAULT, TEACHER_UP_TO + 1)
    assert over.teacher == 0 and over.weight_drop == round(
        0.3 - 0.15 * math.log10((TEACHER_UP_TO + 1) / 200_000), 2)             # not eased
    assert fit_to_text(DEFAULT, 900_000).teacher == 0                            # 1 MB: measured level
    for p in ("mingru", "minlstm"):
        small, big = fit_to_text(PRESETS[p], 106_000), fit_to_text(PRESETS[p], TEACHER_UP_TO + 1)
        assert (small.teacher, small.dropout) == (0.3, 0.1)                   # eased from 0.2
        assert big.teacher == 0 and big.dropout > 0.1


def test_a_big_text_decays_over_four_passes_with_less_dropconnect_and_no_dropout():
    kjv = fit_to_text(DEFAULT, 3_724_065)
    assert kjv.decay_iters == round(4 * 3_724_065 / PER_STEP) == 3637
    assert kjv.weight_drop == round(0.3 - 0.15 * math.log10(3_724_065 / 200_000), 2) == 0.11
    assert kjv.dropout == 0                                           # DropConnect alone, over 800k
    assert kjv.dropout_ramp == kjv.decay_iters                        # and reached over those passes
    assert fit_to_text(DEFAULT, 2_000_000).weight_drop == 0.15        # 0.15 less for each tenfold
    below = fit_to_text(DEFAULT, 800_000)                             # at and below 800,000: both
    assert below.dropout == below.weight_drop == round(0.3 - 0.15 * math.log10(4), 2) == 0.21
    one_mb = fit_to_text(DEFAULT, 900_000)                            # a 1 MB text's training split
    assert (one_mb.dropout, one_mb.weight_drop) == (0, 0.2)
    huge = fit_to_text(DEFAULT, 92_000_000)
    assert huge.decay_iters == round(4 * 92_000_000 / PER_STEP) and huge.dropout == huge.weight_drop == 0
    sizes = [10 ** k for k in range(3, 9)] + [3 * 10 ** k for k in range(3, 9)]
    for side in ([n for n in sizes if n <= TEACHER_UP_TO], [n for n in sizes if n > TEACHER_UP_TO]):
        fits = [fit_to_text(DEFAULT, n) for n in sorted(side)]          # each side of the teacher's line
        assert all(a.decay_iters <= b.decay_iters and a.dropout >= b.dropout and a.weight_drop >=
                   b.weight_drop for a, b in zip(fits, fits[1:]))
        assert all(f.replace(decay_iters=DEFAULT.decay_iters, dropout=0.3, weight_drop=0.3,
                             dropout_ramp=0, teacher=0.3, teacher_folds=5, teacher_rise=0.0,
                             decay_power=1.5) == DEFAULT
                   for f in fits)                                               # nothing else changes
    no_dropconnect = fit_to_text(DEFAULT.replace(weight_drop=0.0), 3_724_065, given={"weight_drop": 0.0})
    assert no_dropconnect.dropout == 0.11                 # a run without DropConnect keeps dropout
    mingru = fit_to_text(PRESETS["mingru"], 3_724_065)                # (no recurrent matrix)
    assert mingru.weight_drop == 0 and mingru.dropout == 0.11


def test_the_users_options_win_over_the_fitting():
    mine = DEFAULT.replace(dropout=0.25, decay_iters=500, dropout_ramp=0)
    fitted = fit_to_text(mine, 5_000_000, given={"dropout": 0.25, "decay_iters": 500, "dropout_ramp": 0})
    assert (fitted.dropout, fitted.decay_iters, fitted.dropout_ramp) == (0.25, 500, 0)
    assert fit_to_text(mine, 5_000_000, given={"dropout": 0.25}).dropout_ramp == 4883   # still rises
    assert fitted.weight_drop == round(0.3 - 0.15 * math.log10(25), 2)


def big_text(tmp_path, chars=2_500_000):
    words = "the clerk wrote a letter to his brother who never answered it at all".split()
    line = " ".join(words[(i * 7) % len(words)] for i in range(60)) + ".\n"
    p = tmp_path / "ledger.txt"
    p.write_text(line * (chars // len(line) + 1))
    return p


def start(tmp_path, corpus, run, preset=None, **overrides):
    lh = prepare(data_dir=tmp_path / "home", corpus_spec=str(corpus), encoding=None, run_name=run,
                 new=False, preset=preset, overrides=overrides)
    lh.lock.unlock()
    return lh


def test_a_new_default_run_stores_its_fitted_schedule_and_resumes_with_it(tmp_path):
    corpus = big_text(tmp_path)
    lh = start(tmp_path, corpus, "big", schedule="fixed")    # (with no limit: "anytime", test_budget)
    train_chars = len(lh.corpus.data) - round(0.1 * len(lh.corpus.data))
    stored = json.loads(lh.run.config_path.read_text())
    assert stored["decay_iters"] == round(4 * train_chars / PER_STEP) > 1000
    assert stored["dropout"] == 0 and 0 < stored["weight_drop"] < 0.3      # over a million
    assert stored["dropout_ramp"] == stored["decay_iters"]
    assert lh.trainer.cfg.decay_iters == stored["decay_iters"]
    said = (f"decaying over {stored['decay_iters']:,} steps, DropConnect rising to "
            f"{stored['weight_drop']:g} by step {stored['dropout_ramp']:,}, no dropout")
    assert said in describe_start(lh)
    again = start(tmp_path, corpus, "big", schedule="fixed")   # resumed: the stored values, not refitted
    assert again.trainer.cfg == lh.trainer.cfg
    mine = start(tmp_path, corpus, "mine", decay_iters=1000, dropout=0.3)
    assert (mine.trainer.cfg.decay_iters, mine.trainer.cfg.dropout) == (1000, 0.3)
    assert mine.trainer.cfg.weight_drop == stored["weight_drop"]
    small = start(tmp_path, corpus, "small", preset="small")
    assert small.trainer.cfg.replace(groups=0) == PRESETS["small"]          # other presets are left as they are


@pytest.mark.parametrize("preset", ["default", None])
def test_a_small_text_gets_the_preset_with_its_teacher(tmp_path, preset):
    corpus = big_text(tmp_path, chars=50_000)
    lh = start(tmp_path, corpus, "r", preset=preset)
    assert lh.trainer.cfg.replace(groups=0, dropout_ramp=0) == DEFAULT.replace(dropout=0.2, weight_drop=0.2,
                                                                               teacher_folds=20, teacher_rise=0.2)
    assert lh.trainer.teacher is not None and ("learning from the 8-gram table too (α 0.3, rising to 0.5 as "
                                               "the rate decays)") in describe_start(lh)
    assert "decaying over 1,000 steps, most of it late (power 1.5)" in describe_start(lh)
    assert lh.trainer.cfg.dropout_ramp == round(4 * len(lh.trainer.train) / PER_STEP) == 44
