"""`kafkarnn sweep NAME …`: make (or find) a sweep, start its coordinator in the background,
and watch it until it ends; `--stop` ends it, `--detach` only starts it.

The coordinator (kafkarnn.sweep.coordinator) trains the trials in a new session, so Ctrl-C,
`q` or a dropped connection only closes the view. Everything is checked here, before the
coordinator starts: the grid, every trial's settings, a name taken by another grid, Ray.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from kafkarnn.cli.options import eprint
from kafkarnn.errors import KafkarnnError

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 180.0


def grid_of(args) -> dict:
    """The grid the command line gives: --grid FILE, then the comma lists (which win)."""
    from kafkarnn.sweep.plan import parse_list, read_grid_file
    grid = read_grid_file(args.grid) if args.grid else {}
    for dest, text in vars(args).items():
        if dest.startswith("grid_") and text is not None:
            grid[dest[5:]] = parse_list(dest[5:], text)
    return grid


def the_plan(folder, args):
    """The sweep's plan: the one on disk, or a new one from the grid (checked against the disk's)."""
    from kafkarnn.sweep.plan import make_plan
    grid = grid_of(args)
    if not grid and folder.exists():
        return folder.read_plan()
    plan = make_plan(folder.name, grid)
    if folder.exists():
        old = folder.read_plan()
        if {t.run: t.settings for t in old.trials()} != {t.run: t.settings for t in plan.trials()}:
            raise KafkarnnError(f"sweep {folder.name} exists with another grid ({_grid_text(old)}): "
                                f"`kafkarnn sweep {folder.name}` alone resumes it; choose another "
                                "name for this grid")
    return plan


def _grid_text(plan) -> str:
    return " ".join(f"--{k.replace('_', '-')} {','.join(map(str, vs))}" for k, vs in plan.grid.items())


def cmd_sweep(args) -> int:
    from kafkarnn.runs.folder import resolve_data_dir
    from kafkarnn.sweep.folder import SweepFolder
    data_dir = resolve_data_dir(args.data_dir)
    folder = SweepFolder(data_dir, args.name)
    given_how = any(v is not None for v in (args.threads, args.parallel, args.ray))
    if not args.stop:
        remember_how(folder, args)
    threads = args.threads or 1
    if args.coordinate:
        from kafkarnn.sweep.coordinator import coordinate
        slots = args.parallel or max(1, (os.cpu_count() or 1) // threads)
        return coordinate(folder, slots=slots, threads=threads, save_every=args.save_every,
                          eval_every=args.eval_every, ray=args.ray, parallel=args.parallel)
    if args.stop:
        return stop_sweep(folder)
    plan = the_plan(folder, args)
    pid = folder.coordinator()
    if pid is None:
        from kafkarnn.sweep.plan import check_trials
        check_trials(plan, data_dir, ours=folder.exists(), log=lambda s: eprint(f"kafkarnn: {s}"))
        if args.ray:
            from kafkarnn.sweep.ray_tasks import check_address
            check_address(args.ray)
        if not folder.exists():
            folder.write_plan(plan)
        pid = start_coordinator(folder, args)
    elif given_how:
        eprint(f"kafkarnn: sweep {folder.name} is running already (process {pid}); its "
               "--threads, --parallel and --ray stay as they were started")
    if args.detach:
        eprint(f"kafkarnn: sweep {folder.name} runs in the background (process {pid}, log "
               f"{folder.log_path}) — `kafkarnn sweep {folder.name}` shows it, "
               f"`kafkarnn sweep {folder.name} --stop` ends it")
        return 0
    from kafkarnn.cli.sweep_view import watch
    return watch(folder)


def remember_how(folder, args) -> None:
    """--threads, --parallel and --ray not given: as the sweep's last coordinator ran (a Ray
    sweep resumes on Ray, and a trial's BLAS threads stay what its trajectory was made with)."""
    state = folder.read_state()
    for key, kind in (("threads", int), ("parallel", int), ("ray", str)):
        if getattr(args, key) is None and isinstance(state.get(key), kind):
            setattr(args, key, state[key])


def coordinator_argv(folder, args) -> list[str]:
    argv = [sys.executable, "-m", "kafkarnn", "sweep", folder.name, "--coordinate",
            "--data-dir", str(folder.data_dir), "--save-every", repr(args.save_every),
            "--eval-every", repr(args.eval_every)]
    for flag, value in (("--threads", args.threads), ("--parallel", args.parallel), ("--ray", args.ray)):
        if value is not None:
            argv += [flag, str(value)]
    return argv


def start_coordinator(folder, args) -> int:
    """Start the coordinator in a new session (no terminal: a hang-up never reaches it), its
    output appended to coordinator.log; return its PID once it holds the sweep."""
    from kafkarnn.runs.checkpoint import PRIVATE_FILE
    fd = os.open(folder.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
    try:
        proc = subprocess.Popen(coordinator_argv(folder, args), stdin=subprocess.DEVNULL, stdout=fd,
                                stderr=fd, start_new_session=True, close_fds=True)
    except OSError as e:
        raise KafkarnnError(f"could not start the sweep's coordinator ({e.strerror or e})") from None
    finally:
        os.close(fd)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        holder = folder.coordinator()
        if holder == proc.pid:
            return proc.pid
        code = proc.poll()
        if code is not None and holder:           # another `kafkarnn sweep` started it first
            return holder
        if code == 0:                             # it found nothing to do, and ended at once
            return proc.pid
        if code is not None:
            raise KafkarnnError(f"the coordinator of sweep {folder.name} ended at once: "
                                f"{_log_tail(folder) or 'see ' + str(folder.log_path)}")
        time.sleep(0.05)
    raise KafkarnnError(f"the coordinator of sweep {folder.name} did not start within "
                        f"{START_TIMEOUT_S:.0f} s (see {folder.log_path})")


def _log_tail(folder) -> str:
    try:
        text = folder.log_path.read_bytes()[-2048:].decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = text.strip().splitlines()
    return lines[-1].split(" kafkarnn: ", 1)[-1] if lines else ""


def stop_sweep(folder) -> int:
    """Ask the coordinator to have every trial save and end, and wait until it has."""
    if not folder.exists():
        raise KafkarnnError(f"no sweep named {folder.name} in {folder.data_dir}")
    pid = folder.coordinator()
    if pid is None:
        raise KafkarnnError(f"sweep {folder.name} is not running: nothing to stop")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    except PermissionError:
        raise KafkarnnError(f"sweep {folder.name} is run by process {pid}, which this user may "
                            "not signal") from None
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while folder.coordinator() == pid:
        if time.monotonic() > deadline:
            raise KafkarnnError(f"sweep {folder.name}: process {pid} did not stop within "
                                f"{STOP_TIMEOUT_S:.0f} s")
        time.sleep(0.05)
    from kafkarnn.sweep.table import counts, rows
    said = ", ".join(f"{n} {s}" for s, n in counts(rows(folder)[0]).items())
    eprint(f"kafkarnn: stopped sweep {folder.name} (process {pid}), every trial saved: {said} — "
           f"`kafkarnn sweep {folder.name}` resumes it")
    return 0
