"""The table planted.py plants: one realistic mistake per row, in the newer promises (issue 24).

Each row: a name, its area, the promise in a few words, the file, an exact snippet of that file
(it must occur exactly once), the broken replacement, and the test files (or test ids) that
should fail with it. Snippets are kept short, so that an unrelated edit of the file leaves them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bug:
    name: str
    area: str
    promise: str
    file: str
    snippet: str
    broken: str
    tests: tuple[str, ...]


T_NGRAM = "tests/engine/test_ngram.py"
T_BASELINE = "tests/cli/test_baseline.py"
T_CELLS = "tests/engine/test_engine.py"
T_INSIDE_MIN = "tests/inspect/test_min_cells_run.py"
T_COMPARE = "tests/inspect/test_compare.py"
T_COMPARE_UI = "tests/tui/test_compare_ui.py"
T_COPYING = "tests/train/test_copying.py"
T_COPY_MARKS = "tests/tui/test_copy_marks.py"
T_PLAN = "tests/sweep/test_sweep_plan.py"
T_SWEEP = "tests/sweep/test_sweep_processes.py"
T_ANYTIME = "tests/train/test_anytime.py"
T_BUDGET = "tests/train/test_budget.py"
T_BLOCKS = "tests/engine/test_blocks.py"
T_AVERAGING = "tests/engine/test_averaging.py"
T_STREAMS = "tests/engine/test_streams.py"
T_THREADS = "tests/train/test_threads.py"
T_CORPUS = "tests/train/test_corpus.py"
T_INSIDE_UI = "tests/tui/test_inside_ui.py"
T_MIXTURE = "tests/inspect/test_mixture.py"
T_TEACHER = "tests/train/test_teacher.py"

BUGS: list[Bug] = [
    # -- the n-gram baseline -------------------------------------------------------------------
    Bug("kn-discount-d2", "ngram", "modified Kneser-Ney's D2 from the counts of counts",
        "kafkarnn/engine/ngram.py",
        "D[2] = 2 - 3 * Y * n3 / n2",
        "D[2] = 2 - 3 * Y * n2 / n3",
        (T_NGRAM,)),
    Bug("kn-lower-raw-counts", "ngram", "lower orders use continuation counts, not raw counts",
        "kafkarnn/engine/ngram.py",
        "lower = self._interpolate(level.cont, ctx, gram, lower)",
        "lower = self._interpolate(level.raw, ctx, gram, lower)",
        (T_NGRAM,)),
    Bug("ngram-order-on-train", "ngram", "the best order is chosen on validation, not training",
        "kafkarnn/train/baseline.py",
        "windows = val[starts[:, None] + np.arange(L + 1)]",
        "windows = counted[starts[:, None] + np.arange(L + 1)]",
        (T_BASELINE,)),
    Bug("ngram-cache-by-name", "ngram", "the cache is keyed by the text itself, not its name",
        "kafkarnn/train/baseline.py",
        'sha = corpus.fingerprint["sha256"]\n    base = cached(data_dir, sha, val_fraction)',
        'sha = corpus.name\n    base = cached(data_dir, sha, val_fraction)',
        (T_BASELINE,)),
    Bug("mix-weight-halved", "ngram", "EM's weight is the network's mean share of each character",
        "kafkarnn/inspect/mixture.py",
        "new = float(np.clip(share.mean(), 1e-12, 1 - 1e-12))",
        "new = float(np.clip(0.5 * (share.mean() + 0.5), 1e-12, 1 - 1e-12))",
        (T_MIXTURE,)),
    Bug("mix-positions-shifted", "ngram", "the mix scores the characters validation predicts",
        "kafkarnn/inspect/mixture.py",
        "predicted = starts[:, None] + 1 + np.arange(L)",
        "predicted = starts[:, None] + np.arange(L)",
        (T_MIXTURE,)),
    Bug("mix-cross-fit-in-sample", "ngram", "cross-fitting scores each half with the other's weight",
        "kafkarnn/inspect/mixture.py",
        "crossed = (mixed_nats(a[:h], b[:h], second) * h",
        "crossed = (mixed_nats(a[:h], b[:h], first) * h",
        (T_MIXTURE,)),
    # -- the table as a teacher ----------------------------------------------------------------
    Bug("teacher-counts-its-own-fold", "teacher", "a fold's targets come from a table that never counted it",
        "kafkarnn/train/teacher.py",
        "table = NGram(np.concatenate([train[:a], train[b:]]), vocab_size, order)",
        "table = NGram(train, vocab_size, order)",
        (T_TEACHER,)),
    Bug("teacher-one-step-early", "teacher", "the teacher speaks to the targets, one character on",
        "kafkarnn/train/teacher.py",
        "self.grid[p + 1:p + T + 1]",
        "self.grid[p:p + T]",
        (T_TEACHER,)),
    Bug("teacher-soft-target-weight", "teacher", "soft targets are (1 − α)·onehot + α·q",
        "kafkarnn/engine/model.py",
        "dy.reshape(-1)[picks] += alpha * scale",
        "dy.reshape(-1)[picks] += 0.5 * alpha * scale",
        (T_CELLS,)),
    Bug("teacher-groups-unsliced", "teacher", "each stream group learns from its own streams' q",
        "kafkarnn/engine/streams.py",
        "(teacher[0], teacher[1][:, a:b])",
        "(teacher[0], teacher[1][:, :b - a])",
        (T_STREAMS,)),
    # -- minGRU and minLSTM --------------------------------------------------------------------
    Bug("mingru-step-order", "min-cells", "the one-step form is the sequence form (minGRU)",
        "kafkarnn/engine/cells/mingru.py",
        "        np.multiply(z, x[H:], out=b)                     # b = z ⊙ h̃\n"
        "        np.subtract(1.0, z, out=z)                       # a = 1 − z\n",
        "        np.subtract(1.0, z, out=z)                       # a = 1 − z\n"
        "        np.multiply(z, x[H:], out=b)                     # b = z ⊙ h̃\n",
        (T_CELLS,)),
    Bug("mingru-state-dropped", "min-cells", "a sequence starts from the state carried in",
        "kafkarnn/engine/cells/mingru.py",
        "hs[0] = state[0]",
        "hs[0] = 0.0",
        (T_CELLS,)),
    Bug("minlstm-grad-candidate", "min-cells", "minLSTM's gradient of the candidate is δ·i'",
        "kafkarnn/engine/cells/minlstm.py",
        "np.multiply(delta, i, out=dh)",
        "np.multiply(delta, f, out=dh)",
        (T_CELLS,)),
    Bug("mingru-through-time-a", "min-cells", "Inside's gradient through time goes through a = 1 − z",
        "kafkarnn/engine/cells/mingru.py",
        "self.a = 1.0 - z ",
        "self.a = z ",
        ("tests/inspect/test_inside.py", T_INSIDE_MIN)),
    # -- compare ---------------------------------------------------------------------------------
    Bug("compare-takes-lock", "compare", "compare is read-only and takes no lock",
        "kafkarnn/inspect/compare.py",
        "    config, why = read_config(run)\n",
        "    run.lock().unlock()                 # nobody saves while we read\n"
        "    config, why = read_config(run)\n",
        (T_COMPARE,)),
    Bug("compare-live-marker", "compare", "each run keeps its own marker; the live one on top",
        "kafkarnn/pictures/comparison.py",
        "for i, r in sorted(enumerate(c.runs), key=lambda ir: ir[1].live):",
        "for i, r in enumerate(sorted(c.runs, key=lambda r: r.live)):",
        (T_COMPARE_UI,)),
    Bug("compare-colour-only", "compare", "runs stay apart under NO_COLOR (a shape each)",
        "kafkarnn/pictures/comparison.py",
        '("▲", "#40a0e0")',
        '("●", "#40a0e0")',
        (T_COMPARE, T_COMPARE_UI)),
    Bug("compare-other-texts", "compare", "the default compares the runs on the latest run's text",
        "kafkarnn/inspect/compare.py",
        'corpus_key(read_config(Run(data_dir, r["name"]))[0]) == key]',
        'corpus_key(read_config(Run(data_dir, name))[0]) == key]',
        (T_COMPARE,)),
    # -- copied or new ---------------------------------------------------------------------------
    Bug("copy-one-neighbour", "copying", "the longest copied stretch: both suffix neighbours",
        "kafkarnn/train/copying.py",
        "for j in (at - 1, at):",
        "for j in (at,):",
        (T_COPYING,)),
    Bug("copy-bytes-not-symbols", "copying", "stretch lengths count characters, not bytes",
        "kafkarnn/train/copying.py",
        "shared = _common(query, text[start * w:start * w + span]) // w",
        "shared = _common(query, text[start * w:start * w + span])",
        (T_COPYING,)),
    Bug("copy-maximal", "copying", "a stretch as long as the one before it is its own",
        "kafkarnn/train/copying.py",
        "(i == 0 or m.length[i - 1] <= n)",
        "(i == 0 or m.length[i - 1] < n)",
        (T_COPYING,)),
    Bug("copy-marks-on-prompt", "copying", "a continuation's marks start after the prompt",
        "kafkarnn/tui/samples.py",
        "copied, offset=len(prompt)))",
        "copied, offset=0))",
        (T_COPY_MARKS,)),
    # -- sweeps ----------------------------------------------------------------------------------
    Bug("sweep-names-all-settings", "sweeps", "a trial is named after what differs",
        "kafkarnn/sweep/plan.py",
        "named = [(_run_name(self.name, {k: p[k] for k in varying}), p) for p in points]",
        "named = [(_run_name(self.name, {k: p[k] for k in keys}), p) for p in points]",
        (T_PLAN,)),
    Bug("sweep-short-text-check", "sweeps", "a text too short for a trial is refused up front",
        "kafkarnn/sweep/plan.py",
        "if len(train) // cfg.batch < cfg.seq_len + 2:",
        "if len(train) < cfg.seq_len + 2:",
        (T_PLAN,)),
    Bug("sweep-plan-before-check", "sweeps", "a refused sweep leaves nothing behind",
        "kafkarnn/cli/sweep.py",
        "        check_trials(plan, data_dir, ours=folder.exists(), log=lambda s: eprint(f\"kafkarnn: {s}\"))\n",
        "        if not folder.exists():\n"
        "            folder.write_plan(plan)\n"
        "        check_trials(plan, data_dir, ours=folder.exists(), log=lambda s: eprint(f\"kafkarnn: {s}\"))\n",
        (T_PLAN,)),
    Bug("sweep-redo-finished", "sweeps", "a resumed sweep skips the trials that reached their limit",
        "kafkarnn/sweep/coordinator.py",
        "iteration >= trial.max_iters",
        "iteration > trial.max_iters",
        (T_SWEEP,)),
    Bug("sweep-whole-budget-again", "sweeps", "a resumed trial gets only what is left of its time",
        "kafkarnn/sweep/coordinator.py",
        "left = trial.max_seconds - progress(run)[1]",
        "left = trial.max_seconds",
        (T_SWEEP,)),
    # -- training without a schedule -------------------------------------------------------------
    Bug("ema-not-validated", "anytime", "validation reads the averaged weights",
        "kafkarnn/train/trainer.py",
        "        with self.validated():\n"
        "            return validation_loss(self.groups, self.val, subset, chunk)",
        "        return validation_loss(self.groups, self.val, subset, chunk)",
        (T_ANYTIME,)),
    Bug("ema-of-y", "anytime", "with schedule-free, the EMA averages x, not the gradient point y",
        "kafkarnn/train/trainer.py",
        "self.average.update(self.learned_weights())",
        "self.average.update(self.model.params.flat)",
        (T_ANYTIME,)),
    Bug("checkpoint-param-is-raw", "anytime", "param/* (and best.npz) hold the validated weights",
        "kafkarnn/train/trainer.py",
        'out = {f"param/{k}": v for k, v in ParamDict(self.model.layout, held).items()}',
        'out = {f"param/{k}": v for k, v in ParamDict(self.model.layout, self.model.params.flat).items()}',
        (T_ANYTIME,)),
    Bug("resume-y-from-x", "anytime", "SF-AdamW resumes exactly: y comes back from train/params",
        "kafkarnn/train/trainer.py",
        'self.model.params.flat[...] = arrays["train/params"]',
        "self.model.params.flat[...] = held",
        (T_ANYTIME,)),
    Bug("sf-uniform-average", "anytime", "schedule-free weights its average by γ² (warmup counts little)",
        "kafkarnn/engine/optim.py",
        "c = lr * lr / total if total > 0 else 1.0",
        "c = 1.0 / k",
        (T_AVERAGING,)),
    Bug("old-config-keys", "anytime", "a checkpoint saved before these settings still resumes",
        "kafkarnn/train/meta_check.py",
        "any(stored[k] != mine[k] for k in mine if k in stored)",
        "any(stored.get(k) != mine[k] for k in mine)",
        (T_ANYTIME,)),
    Bug("budget-decay-not-saved", "anytime", "a time budget's decay is kept by the checkpoint",
        "kafkarnn/train/trainer.py",
        '**({"decay": list(self.decay)} if self.decay else {})',
        "**{}",
        (T_BUDGET,)),
    Bug("budget-decay-from-start", "anytime", "a budget holds the peak rate until its last fifth",
        "kafkarnn/train/schedule.py",
        "start = max(c.warmup_iters, max_iters - max(1, round(DECAY_SHARE * max_iters)))",
        "start = c.warmup_iters",
        (T_BUDGET,)),
    Bug("budget-pace-whole-run", "anytime", "a time budget's decay spans the seconds left, not all",
        "kafkarnn/train/schedule.py",
        "return iteration, max(1, round(left * iters_per_s))",
        "return iteration, max(1, round(c.budget_s * iters_per_s))",
        (T_BUDGET,)),
    Bug("budget-beside-own-decay", "anytime", "the user's own --decay-iters wins over a budget",
        "kafkarnn/train/schedule.py",
        "c.decay_iters and not placed",
        "c.decay_iters",
        (T_BUDGET,)),
    # -- the blocks around each layer ------------------------------------------------------------
    Bug("block-relu-mask", "blocks", "the MLP's backward passes only where relu was open",
        "kafkarnn/engine/blocks.py",
        "        dz *= q > 0 ",
        "        dz *= 1.0 ",
        (T_BLOCKS,)),
    Bug("block-residual-grad", "blocks", "the gradient also runs along the MLP's residual path",
        "kafkarnn/engine/blocks.py",
        "        dr += dv ",
        "        dr += 0 * dv ",
        (T_BLOCKS,)),
    # -- stream groups ---------------------------------------------------------------------------
    Bug("groups-whole-batch-one-worker", "streams", "the same bits at any worker count",
        "kafkarnn/engine/streams.py",
        "        if self.G == 1:\n            return self.model.loss_and_grads(",
        "        if self.G == 1 or self.workers.get() == 1:\n            return self.model.loss_and_grads(",
        (T_STREAMS,)),
    Bug("groups-one-seed", "streams", "each group draws its own dropout masks",
        "kafkarnn/engine/streams.py",
        "np.random.default_rng(seeds[g])",
        "np.random.default_rng(seeds[0])",
        (T_STREAMS,)),
    Bug("groups-recomputed-on-resume", "streams", "the group count is the run's, not the machine's",
        "kafkarnn/train/launch.py",
        "    trainer = _trainer(run, cfg, corpus)\n    launch = Launch(",
        "    trainer = _trainer(run, cfg.replace(groups=0), corpus)\n    launch = Launch(",
        (T_THREADS,)),
    Bug("groups-too-narrow", "streams", "at least 16 streams a group",
        "kafkarnn/engine/streams.py",
        "return max(1, min(cores, batch // MIN_STREAMS, by_width))",
        "return max(1, min(cores, by_width))",
        (T_STREAMS,)),
    Bug("ramp-one-group", "anytime", "a rising dropout reaches every stream group's model",
        "kafkarnn/train/trainer.py",
        "self.groups.set_dropout(*self.dropout_at(self.iteration))",
        "self.model.set_dropout(*self.dropout_at(self.iteration))",
        ("tests/train/test_dropout_ramp.py",)),
    Bug("ramp-per-session", "anytime", "a rising dropout resumes where it was, not from 0",
        "kafkarnn/train/trainer.py",
        "self.groups.set_dropout(*self.dropout_at(self.iteration))",
        "self.groups.set_dropout(*self.dropout_at(self.clipping.steps))",    # this process's steps
        ("tests/train/test_dropout_ramp.py", T_ANYTIME)),
    # -- newcomer frictions ----------------------------------------------------------------------
    Bug("download-retry-inverted", "newcomer", "a failed download is not tried again within a day",
        "kafkarnn/train/gutenberg.py",
        "if age < RETRY_AFTER_S else None",
        "if age > RETRY_AFTER_S else None",
        (T_CORPUS,)),
    Bug("download-by-name-waits", "newcomer", "--corpus metamorphosis tries at once",
        "kafkarnn/train/corpus.py",
        "failed = None if retry else gutenberg.recent_failure(data_dir)",
        "failed = gutenberg.recent_failure(data_dir)",
        (T_CORPUS,)),
    Bug("loss-pane-live-val-only", "newcomer", "after a re-attach the Loss pane shows the last validation",
        "kafkarnn/tui/widgets.py",
        "at, val = s.val_history[-1] if s.val_history else (None, s.val_loss)",
        "at, val = s.iteration, s.val_loss",
        (T_INSIDE_UI,)),
    Bug("resume-drops-last-val", "newcomer", "the curve on resume runs up to the checkpoint",
        "kafkarnn/train/launch.py",
        'rec["iter"] > trainer.iteration:',
        'rec["iter"] >= trainer.iteration:',
        ("tests/train/test_trainer.py", T_INSIDE_UI)),
]
