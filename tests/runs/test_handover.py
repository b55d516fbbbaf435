"""Training that outlives the terminal: a run handed between the monitor and a background trainer.

Real processes and real pseudo-terminals (tests/terminal.py): a dropped connection, `d`,
`kafkarnn attach`, a take-over from a second terminal, `kafkarnn stop`, kills. Each hand-off is
a save and an exact resume, so the parameters at the end equal those of a run without any.
"""

import json
import os
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest
from terminal import Terminal, last_iteration, processes_of, until

from kafkarnn.engine.cells import NAMES, cell_class
from kafkarnn.runs.checkpoint import load_checkpoint
from kafkarnn.train.launch import TrainOptions, prepare
from kafkarnn.train.cadence import Limits
from kafkarnn.train.session import Session
from kafkarnn.runs.folder import Run
from kafkarnn.seam import HandOff, Role, State

TINY = ["--model", "rnn", "--hidden", "16", "--batch", "2", "--seq-len", "8"]
# steps long enough (a few ms) that a hand-off lands in the middle of a run
SLOW = ["--hidden", "96", "--batch", "8", "--seq-len", "48", "--layers", "2", "--dropout", "0.1",
        "--weight-drop", "0.2"]


def cli(*args, home, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, KAFKARNN_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "kafkarnn", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env)


def holder(home, name):
    return Run(home, name).holder()


def held_by(home, name, pid=None, role=None):
    h = holder(home, name)
    return h is not None and (pid is None or h.pid == pid) and (role is None or h.role == role)


def arrays(path):
    a, meta = load_checkpoint(path)
    return a, meta


def saved_iteration(run) -> int:
    """The iteration of the run's checkpoint (0 before the first): a holder trains when it grows."""
    path = run / "checkpoint.npz"
    return arrays(path)[1]["iteration"] if path.exists() else 0


def assert_same_run(path_a, path_b):
    (a, meta_a), (b, meta_b) = arrays(path_a), arrays(path_b)
    assert meta_a["iteration"] == meta_b["iteration"]
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k   # bit for bit
    assert meta_a["rng"] == meta_b["rng"] and meta_a["smooth_loss"] == meta_b["smooth_loss"]


def stop_all(home):
    for run in (home / "runs").iterdir() if (home / "runs").exists() else ():
        h = Run(home, run.name).holder()
        if h is not None and h.pid:
            os.kill(h.pid, signal.SIGKILL)


# ---- a dropped connection -------------------------------------------------------------------------

def test_a_dropped_connection_hands_the_run_to_the_background_and_back(home, long_book, terminals):
    run = home / "runs" / "drop"
    cmd = ["--corpus", long_book, *TINY, "--run", "drop", "--save-every", "0.5"]
    saved = lambda: saved_iteration(run)
    first = Terminal(*cmd, home=home)
    terminals.append(first)
    try:
        # a holder is seen to train by a save of its own (every 0.5 s), not a metrics line (2 s)
        until(lambda: held_by(home, "drop", first.pid, Role.MONITOR) and saved() > 0,
              what="the monitor to train")
        at_drop = saved()
        first.hang_up()                                  # the kernel sends SIGHUP
        assert first.wait(15) == 0
        until(lambda: held_by(home, "drop", role=Role.BACKGROUND), what="a background trainer")
        background = holder(home, "drop").pid
        handed = saved()                                 # the monitor's save as it left
        assert handed >= at_drop
        until(lambda: saved() > handed, what="training to go on")   # it does
        log = (run / "train.log").read_text()
        assert f"goes on training in the background (process {background}" in log
        assert "hung up" in log

        second = Terminal(*cmd, home=home)               # the same command, in a new terminal
        terminals.append(second)
        until(lambda: held_by(home, "drop", second.pid, Role.MONITOR), what="the take-over")
        until(lambda: background not in processes_of("drop"), what="the background trainer to end")
        taken_at = saved()
        assert taken_at > handed                         # it trained past the drop
        assert f"was taken over by process {second.pid}" in (run / "train.log").read_text()
        until(lambda: f"{taken_at:,}" in second.text(), what="the monitor to show the iteration")
        until(lambda: saved() > taken_at, what="the monitor to train on")
        second.type("q")
        assert second.wait(15) == 0
        final = arrays(run / "checkpoint.npz")[1]["iteration"]
        assert f"saved run drop at iteration {final:,}" in second.text()
        assert final >= last_iteration(run) and holder(home, "drop") is None
        assert processes_of("drop") == []                # nothing of the run is left running
    finally:
        stop_all(home)


# ---- nothing lost or repeated ---------------------------------------------------------------------

def in_process_hops(home, long_book, cell: str, n: int):
    """N iterations of one run straight, and of another with three hand-offs in between (the
    session's HandOff, then resumes), in this process; returns both checkpoints."""
    overrides = dict(model=cell, hidden=12, layers=2, batch=3, seq_len=7, dropout=0.2,
                     weight_drop=0.25 if cell_class(cell).recurrent_key else 0.0, seed=3)
    paths = []
    for name, hops in (("straight", []), ("hops", [5, 11, 23])):
        at = 0
        for stop_at in [*hops, n]:
            launch = prepare(data_dir=home, corpus_spec=str(long_book), encoding=None, run_name=name,
                             new=False, preset=None, overrides=overrides, role=Role.MONITOR)
            try:
                assert launch.trainer.iteration == at
                session = Session(launch, Limits(max_iters=stop_at))
                if stop_at < n:                         # reach stop_at, then hand over there
                    session.run()
                    session.done, session.limits = False, Limits()
                    session.send(HandOff(start=lambda: 4242))
                    session.run()
                    assert session.snapshot().handed_to == 4242
                else:
                    session.run()
                at = launch.trainer.iteration
            finally:
                launch.lock.unlock()
        paths.append(home / "runs" / name / "checkpoint.npz")
    return paths


@pytest.mark.parametrize("cell", NAMES)
def test_hand_offs_in_between_change_nothing(home, long_book, cell):
    straight, hops = in_process_hops(home, long_book, cell, 40)
    assert_same_run(straight, hops)


@pytest.mark.parametrize("cell", ["gru", pytest.param("rnn", marks=pytest.mark.slow),
                                  pytest.param("lstm", marks=pytest.mark.slow)])
def test_detach_attach_and_take_over_end_bit_identical(home, long_book, terminals, cell):
    """Real processes: --detach, attach (takes over the background), attach in a second terminal
    (takes over the monitor), d (back to the background), stop; then as many iterations straight."""
    model = ["--corpus", long_book, "--model", cell, *SLOW, "--save-every", "0.3",
             "--threads", "1"]            # bit-exact at a fixed count (threads.py says why)
    run = home / "runs" / "hops"
    saved = lambda: saved_iteration(run)
    # each holder is seen to train by a save of its own (every 0.3 s of training), so the whole
    # trip trains a few seconds and the straight run that repeats it is as short
    try:
        detached = cli("--detach", "--run", "hops", *model, home=home)
        assert detached.returncode == 0, detached.stderr
        assert "is training in the background" in detached.stderr
        until(lambda: (run / "checkpoint.npz").exists(), what="the background trainer")
        one = Terminal("attach", "--run", "hops", "--threads", 1, "--save-every", 0.3, home=home)
        terminals.append(one)
        until(lambda: held_by(home, "hops", one.pid, Role.MONITOR), what="attach")
        at = saved()
        until(lambda: saved() > at, what="the monitor to train")
        two = Terminal("attach", "--run", "hops", "--threads", 1, "--save-every", 0.3, home=home)
        terminals.append(two)
        assert one.wait(30) == 0
        assert f"was taken over by process {two.pid}" in one.text()
        until(lambda: held_by(home, "hops", two.pid, Role.MONITOR), what="the second attach")
        at = saved()
        until(lambda: saved() > at, what="the second monitor to train")
        two.type("d")
        assert two.wait(30) == 0
        assert "goes on training in the background" in two.text()
        until(lambda: held_by(home, "hops", role=Role.BACKGROUND), what="the background trainer")
        at = saved()
        until(lambda: saved() > at, what="the background to train")
        assert cli("stop", "--run", "hops", home=home).returncode == 0
    finally:
        stop_all(home)
    n = arrays(run / "checkpoint.npz")[1]["iteration"]
    straight = cli("--headless", "--run", "straight", *model, "--max-iters", n,   # (no budget:
                   "--schedule", "fixed", home=home)                            # as the hops)
    assert straight.returncode == 0, straight.stderr
    assert_same_run(home / "runs" / "straight" / "checkpoint.npz", run / "checkpoint.npz")


# ---- from the shell -------------------------------------------------------------------------------

def test_detach_runs_stop_and_one_writer(home, long_book):
    cmd = ["--corpus", long_book, *TINY, "--run", "bg", "--save-every", "0.3"]
    try:
        out = cli("--detach", *cmd, home=home)
        assert out.returncode == 0, out.stderr
        pid = holder(home, "bg").pid
        assert out.stderr.strip() == (
            f"kafkarnn: run bg is training in the background (process {pid}, log "
            f"{home / 'runs' / 'bg' / 'train.log'}) — `kafkarnn attach --run bg` opens the monitor "
            "on it, `kafkarnn stop --run bg` ends it")
        listed = json.loads(cli("runs", "--json", home=home).stdout)
        assert [(r["name"], r["training"], r["pid"], r["where"]) for r in listed] == \
            [("bg", True, pid, "background")]
        assert f"background {pid}" in cli("runs", home=home).stdout
        again = cli("--headless", *cmd, home=home)           # one writer per run, always
        assert again.returncode == 2
        assert again.stderr.strip() == f"kafkarnn: error: run bg is in use by process {pid}"
        assert cli("--detach", *cmd, home=home).returncode == 2
        until(lambda: (home / "runs" / "bg" / "checkpoint.npz").exists(), what="a save")
        sample = cli("sample", "--run", "bg", "--length", "20", home=home)
        assert sample.returncode == 0 and len(sample.stdout) == 21      # reading never waits
        attach = cli("attach", home=home)                    # no terminal here
        assert attach.returncode == 2 and "needs a terminal" in attach.stderr
        stopped = cli("stop", home=home)                     # the one run that is training
        assert stopped.returncode == 0, stopped.stderr
        it = arrays(home / "runs" / "bg" / "checkpoint.npz")[1]["iteration"]
        assert stopped.stderr.strip() == f"kafkarnn: stopped run bg (process {pid}), saved at iteration {it:,}"
        assert holder(home, "bg") is None and processes_of("bg") == []
        assert "stopped by `kafkarnn stop`" in (home / "runs" / "bg" / "train.log").read_text()
        listed = json.loads(cli("runs", "--json", home=home).stdout)
        assert listed[0]["training"] is False and listed[0]["pid"] is None
        nothing = cli("stop", home=home)
        assert nothing.returncode == 2 and nothing.stderr.startswith("kafkarnn: error: no run is training")
        typo = cli("stop", "--run", "bgg", home=home)            # never a new run by mistake
        assert typo.returncode == 2 and "no run named bgg" in typo.stderr
        assert not (home / "runs" / "bgg").exists()
    finally:
        stop_all(home)


def test_stop_and_attach_without_a_name_list_several(home, long_book):
    try:
        for name in ("one", "two"):
            assert cli("--detach", "--corpus", long_book, *TINY, "--run", name, home=home).returncode == 0
        out = cli("stop", home=home)
        assert out.returncode == 2
        assert "2 runs are training: one (background " in out.stderr and "pass --run NAME" in out.stderr
        assert holder(home, "one") is not None and holder(home, "two") is not None
    finally:
        stop_all(home)


def test_files_of_a_run_are_its_owners_alone(home, long_book):
    old = os.umask(0o022)
    try:
        try:
            assert cli("--detach", "--corpus", long_book, *TINY, "--run", "mine", "--save-every", "0.2",
                       home=home).returncode == 0
            until(lambda: (home / "runs" / "mine" / "checkpoint.npz").exists(), what="a save")
            assert cli("stop", "--run", "mine", home=home).returncode == 0
        finally:
            stop_all(home)
        run = home / "runs" / "mine"
        names = {p.name for p in run.iterdir()}
        assert {"lock", "train.log", "config.json", "checkpoint.npz", "metrics.jsonl"} <= names
        for p in [run, home / "runs", *run.iterdir()]:
            mode = stat.S_IMODE(p.stat().st_mode)
            assert mode & 0o077 == 0, f"{p.name} is {oct(mode)}"
    finally:
        os.umask(old)


# ---- faults ---------------------------------------------------------------------------------------

def test_a_killed_background_trainer_is_recovered(home, long_book):
    try:
        assert cli("--detach", "--corpus", long_book, *TINY, "--run", "k", "--save-every", "0.2",
                   home=home).returncode == 0
        until(lambda: (home / "runs" / "k" / "checkpoint.npz").exists(), what="a save")
        pid = holder(home, "k").pid
        os.kill(pid, signal.SIGKILL)
        until(lambda: holder(home, "k") is None, what="the kernel to release the lock")
        it = arrays(home / "runs" / "k" / "checkpoint.npz")[1]["iteration"]
        out = cli("--headless", "--corpus", long_book, *TINY, "--run", "k", "--max-iters", it + 5, home=home)
        assert out.returncode == 0, out.stderr
        assert f"recovered: the previous trainer of k, process {pid} (background)" in out.stderr
        assert f"resuming at iteration {it:,}" in out.stderr
        assert arrays(home / "runs" / "k" / "checkpoint.npz")[1]["iteration"] == it + 5
    finally:
        stop_all(home)


def test_a_killed_monitor_resumes_from_its_last_save(home, long_book, terminals):
    run = home / "runs" / "km"
    term = Terminal("--corpus", long_book, *TINY, "--run", "km", "--save-every", "0.3", home=home)
    terminals.append(term)
    until(lambda: (run / "checkpoint.npz").exists() and held_by(home, "km", term.pid),
          what="a save")
    os.kill(term.pid, signal.SIGKILL)
    term.wait()
    it = arrays(run / "checkpoint.npz")[1]["iteration"]
    out = cli("--headless", "--run", "km", "--max-iters", it + 3, home=home)
    assert out.returncode == 0, out.stderr
    assert f"resuming at iteration {it:,}" in out.stderr and "(monitor)" in out.stderr
    assert processes_of("km") == []


def test_two_attaches_at_the_same_instant_leave_exactly_one_trainer(home, long_book, terminals):
    run = home / "runs" / "race"
    try:
        assert cli("--detach", "--corpus", long_book, *TINY, "--run", "race", home=home).returncode == 0
        background = holder(home, "race").pid
        a = Terminal("attach", "--run", "race", home=home)
        b = Terminal("attach", "--run", "race", home=home)
        terminals += [a, b]
        until(lambda: held_by(home, "race", role=Role.MONITOR), what="a take-over")
        time.sleep(2)                                    # let the other one finish trying
        winner = holder(home, "race").pid
        loser = b if winner == a.pid else a
        assert winner in (a.pid, b.pid) and background not in processes_of("race")
        if loser.status is None:                          # it may have taken over the winner first
            loser_status = loser.wait(30)
        else:
            loser_status = loser.status
        assert loser_status in (0, 2)
        assert holder(home, "race").pid == winner         # one trainer, and it is the winner
        its = [json.loads(line)["iter"] for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert its == sorted(its)                         # never two writers: no step repeated
    finally:
        stop_all(home)


# ---- the monitor's side of a hand-off (Pilot) -----------------------------------------------------

from kafkarnn.runs import handover  # noqa: E402
from kafkarnn.seam import Ask, Ending, StopSignal  # noqa: E402
from kafkarnn.train.life import Life  # noqa: E402
from kafkarnn.train.outcome import Outcome  # noqa: E402
from kafkarnn.tui.monitor import monitor_app  # noqa: E402


def pilot_monitor(home, long_book, start=None):
    """A monitor's life and App on run p, as `kafkarnn train` makes them (no terminal)."""
    opts = TrainOptions(data_dir=home, corpus=str(long_book), run="p",
                        overrides={"model": "rnn", "hidden": 16, "batch": 2, "seq_len": 8})
    life = Life(opts, Role.MONITOR, say=lambda text: None)
    life.open()
    step = life.launch.trainer.step

    def slow_step():                                  # keeps Pilot's idle waits short
        time.sleep(0.005)
        return step()
    life.launch.trainer.step = slow_step
    if start is not None:
        life.start_background = start
    return life, monitor_app(life)


async def wait(pilot, condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the app"
        await pilot.pause(0.05)


async def test_d_saves_hands_over_and_leaves(home, long_book, monkeypatch):
    started = []
    monkeypatch.setattr(handover, "wait_until_training", lambda run, proc: True)   # PID 4242 is fake
    life, app = pilot_monitor(home, long_book, start=lambda: started.append(1) or 4242)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait(pilot, lambda: life.session.snapshot().iteration > 3)
        await pilot.press("d")
        await wait(pilot, lambda: app.trained.is_set() and not app.is_running)
    snap = life.session.snapshot()
    assert started == [1] and snap.handed_to == 4242 and snap.state == State.STOPPED
    assert app.return_value == Ending.HANDED_OVER == life.outcome.ending
    assert arrays(life.run.checkpoint_path)[1]["iteration"] == snap.iteration   # saved as it stopped
    assert not life.launch.lock.locked                  # let go, for the trainer that goes on


async def test_d_while_paused_saves_and_does_not_hand_on(home, long_book):
    started = []
    life, app = pilot_monitor(home, long_book, start=lambda: started.append(1) or 4242)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait(pilot, lambda: life.session.snapshot().iteration > 3)
        await pilot.press("space")
        await wait(pilot, lambda: life.session.snapshot().state == State.PAUSED)
        await pilot.press("d")
        await wait(pilot, lambda: app.trained.is_set() and not app.is_running)
    outcome = life.outcome
    assert started == [] and outcome.code == 0 and app.return_value == Ending.PAUSED
    it = life.session.snapshot().iteration
    assert outcome.line == (f"kafkarnn: run p is paused: saved at iteration {it:,} and not handed "
                            "on — run the same command to continue")
    assert arrays(life.run.checkpoint_path)[1]["iteration"] == it


async def test_a_failed_hand_off_is_shown_and_training_goes_on(home, long_book):
    def cannot_start():
        raise OSError(11, "Resource temporarily unavailable")
    life, app = pilot_monitor(home, long_book, start=cannot_start)
    session = life.session
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await wait(pilot, lambda: session.snapshot().iteration > 3)
        await pilot.press("d")
        await wait(pilot, lambda: any("could not start the background trainer" in str(n.message)
                                      for n in app._notifications))
        at = session.snapshot().iteration
        await wait(pilot, lambda: session.snapshot().iteration > at)        # still training
        assert app.is_running and session.snapshot().handed_to is None
        life.run.checkpoint_path.unlink()
        life.run.checkpoint_path.mkdir()                 # now the save fails too
        await pilot.press("d")
        await wait(pilot, lambda: any("the save failed" in str(n.message) for n in app._notifications))
        at = session.snapshot().iteration
        await wait(pilot, lambda: session.snapshot().iteration > at)
        life.run.checkpoint_path.rmdir()
        await pilot.press("q")
        await wait(pilot, lambda: app.trained.is_set() and not app.is_running)
    assert life.outcome.code == 0 and app.return_value == Ending.SAVED


async def test_a_take_over_is_said_in_the_monitor_that_loses_the_run(home, long_book):
    life, app = pilot_monitor(home, long_book)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait(pilot, lambda: life.session.snapshot().iteration > 3)
        handover.write_note(life.run, Ask.TAKE_OVER)     # as another kafkarnn writes it ...
        note = json.loads(life.run.handover_path.read_text())
        note["pid"] = 999999
        life.run.handover_path.write_text(json.dumps(note))
        app.end_by(StopSignal.SIGTERM)                   # ... before its SIGTERM
        await wait(pilot, lambda: app.trained.is_set() and not app.is_running)
    it = life.session.snapshot().iteration
    assert life.outcome == Outcome(Ending.TAKEN_OVER, f"kafkarnn: run p was taken over by process "
                                                      f"999999 (saved at iteration {it:,})")
    assert app.return_value == Ending.TAKEN_OVER
    assert arrays(life.run.checkpoint_path)[1]["iteration"] == it


@pytest.mark.parametrize("keys", [("q",), ("ctrl+q",), ("c", "q"), ("i", "q")])
async def test_q_and_ctrl_q_save_and_return_the_ending(home, long_book, keys):
    life, app = pilot_monitor(home, long_book)           # also q on the compare and Inside screens
    async with app.run_test(size=(100, 30)) as pilot:
        await wait(pilot, lambda: life.session.snapshot().iteration > 3)
        await pilot.press(*keys)
        await wait(pilot, lambda: app.trained.is_set() and not app.is_running)
    it = life.session.snapshot().iteration
    assert app.return_value == Ending.SAVED and life.outcome.code == 0
    assert life.outcome.line == (f"kafkarnn: saved run p at iteration {it:,} — run the same "
                                 "command to continue")
    assert arrays(life.run.checkpoint_path)[1]["iteration"] == it
