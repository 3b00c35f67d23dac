"""The --workers supervisor's checks (the processes themselves run in test_e2e_server and
test_crash_recovery)."""

from __future__ import annotations

import socket

import pytest

from dayzero.serve.workers import listening_socket, reuse_port_supported, run_workers

pytestmark = pytest.mark.skipif(not reuse_port_supported(), reason="no SO_REUSEPORT here")


def test_workers_share_a_port_but_not_with_other_programs():
    first = listening_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = listening_socket("127.0.0.1", port)  # another worker: allowed
    second.close(), first.close()
    other = socket.socket()
    other.bind(("127.0.0.1", 0))  # a program without SO_REUSEPORT holds this one
    other.listen()
    try:
        with pytest.raises(OSError):
            run_workers(2, "127.0.0.1", other.getsockname()[1], "warning", {})
    finally:
        other.close()


@pytest.mark.parametrize(
    ("workers", "port", "message"),
    [(1, 8000, "workers must be >= 2"), (2, 0, "give a fixed --port")],
)
def test_bad_settings_are_refused_before_any_process_starts(workers, port, message):
    with pytest.raises(ValueError, match=message):
        run_workers(workers, "127.0.0.1", port, "warning", {})


def test_a_worker_that_cannot_start_is_restarted_after_a_pause(tmp_path):
    """A worker whose app fails at start-up (here: no serve config) dies at once; its successor
    starts only after a back-off, and SIGTERM stops the supervisor."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.serve.conftest import free_port

    log = tmp_path / "supervisor.log"
    script = (
        "import logging; logging.basicConfig(level=logging.INFO);"
        "from dayzero.serve.workers import run_workers;"
        f"run_workers(2, '127.0.0.1', {free_port()}, 'warning', {{'DAYZERO_SERVE_CONFIG': ''}})"
    )
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 90
        while "right after start" not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert "died (exit code" in log.read_text()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()
    assert "stopped 2 workers" in log.read_text()
