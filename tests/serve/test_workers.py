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
