"""A sweep on a Ray cluster: a local Ray head on 127.0.0.1, started here and stopped at the
end; the same small grid gives runs bit-identical to the local sweep's. Skipped without Ray."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from test_sweep_processes import TINY, kafkarnn, no_sweep_left, params, same, states  # noqa: F401

pytest.importorskip("ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head():
    """`ray start --head --block` as our own process group, killed at the end (never `ray stop`,
    which would end every Ray of this machine)."""
    port = free_port()
    ray = os.path.join(os.path.dirname(sys.executable), "ray")
    head = subprocess.Popen([ray, "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
                             "--port", str(port), "--num-cpus", "2", "--include-dashboard=false",
                             "--disable-usage-stats"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert head.poll() is None and time.monotonic() < deadline, "no Ray head"
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(head.pid, signal.SIGINT)          # `ray start --block` ends its cluster on ^C
        try:
            head.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(head.pid, signal.SIGKILL)      # whatever of the group is left
        except ProcessLookupError:
            pass
        head.wait()


def test_a_ray_sweep_gives_the_local_sweeps_runs_bit_for_bit(home, book, ray_head):
    grid = ["--corpus", book, *TINY, "--model", "rnn,gru", "--max-iters", "40", "--threads", "1"]
    local = kafkarnn("sweep", "here", *grid, home=home)
    assert local.returncode == 0, local.stderr
    remote = kafkarnn("sweep", "there", *grid, "--ray", ray_head, home=home, timeout=180)
    assert remote.returncode == 0, remote.stderr
    assert f"Ray {ray_head}" in (home / "sweeps" / "there" / "coordinator.log").read_text()
    assert states(home, "there") == {"there-model_rnn": "done", "there-model_gru": "done"}
    for model in ("rnn", "gru"):
        here, there = params(home, f"here-model_{model}"), params(home, f"there-model_{model}")
        assert there[1]["iteration"] == 40 and same(here[0], there[0])


@pytest.mark.slow
def test_a_ray_sweep_stops_every_trial_saved_and_resumes_on_ray(home, book, ray_head):
    from test_sweep_processes import SLOW, until
    from kafkarnn.runs.folder import Run
    grid = ["--corpus", book, *SLOW, "--model", "rnn,gru", "--max-iters", "100000"]
    assert kafkarnn("sweep", "r", *grid, "--ray", ray_head, "--detach", home=home).returncode == 0
    until(lambda: all(Run(home, f"r-model_{m}").holder() for m in ("rnn", "gru")))
    stopped = kafkarnn("sweep", "r", "--stop", home=home)
    assert stopped.returncode == 0, stopped.stderr
    assert states(home, "r") == {"r-model_rnn": "waiting", "r-model_gru": "waiting"}
    said = (home / "sweeps" / "r" / "coordinator.log").read_text()
    assert "sweep r stopped: 2 waiting" in said and "Traceback" not in said
    assert all(params(home, f"r-model_{m}")[1]["iteration"] > 0 for m in ("rnn", "gru"))
    assert kafkarnn("sweep", "r", "--detach", home=home).returncode == 0     # no --ray: as before
    until(lambda: all(Run(home, f"r-model_{m}").holder() for m in ("rnn", "gru")))
    log = (home / "sweeps" / "r" / "coordinator.log").read_text()
    assert log.count(f"Ray {ray_head}") == 2
    assert kafkarnn("sweep", "r", "--stop", home=home).returncode == 0
