"""``dayzero serve --workers N``: N uvicorn processes, each with its own listening socket.

uvicorn's own ``workers=N`` binds one socket in the parent and every worker accepts from it.
asyncio accepts every pending connection in one go when the socket becomes readable, so the
worker that wakes first takes a whole burst: under ``bench/ray_scale.py``'s known-user load (8
keep-alive clients) one of 2 workers served all 2,000 requests and the other none. Here every
worker binds the same address with ``SO_REUSEPORT`` and the kernel spreads new connections over
the workers' sockets by a hash of each connection. A worker joins that spread only once its
socket listens, after its app has started (the version loaded); a worker that dies leaves it
(its socket closes).

The supervisor starts the workers (multiprocessing ``spawn``), starts a new one in place of one
that dies (``kill -9`` included: what it had acknowledged is in the store), and on SIGINT or
SIGTERM stops them all (each finishes its open requests) and returns. Every worker builds its
own app from ``$DAYZERO_SERVE_CONFIG`` (:func:`dayzero.serve.app.app_from_environment`).
Where the platform has no ``SO_REUSEPORT`` (Windows), ``dayzero serve`` uses uvicorn's shared
socket instead.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from typing import Any

log = logging.getLogger("dayzero.serve")

APP = "dayzero.serve.app:app_from_environment"
_POLL = 0.2  # seconds between looks at the workers
_STOP_GRACE = 30.0  # seconds a worker gets to finish its requests before it is killed
_EARLY = 10.0  # a worker that dies this soon after its start failed to start
_MAX_BACKOFF = 30.0  # seconds, the longest wait before starting a worker that keeps failing


def reuse_port_supported() -> bool:
    """Whether this platform can give each worker its own socket on one port."""
    return hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound (not yet listening) to ``host:port`` that other workers may bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(host: str, port: int, log_level: str, environment: dict[str, str]) -> None:
    """One worker: its own socket, one uvicorn server (which handles SIGINT and SIGTERM)."""
    import uvicorn

    os.environ.update(environment)
    sock = listening_socket(host, port)
    config = uvicorn.Config(APP, factory=True, host=host, port=port, log_level=log_level)
    uvicorn.Server(config).run(sockets=[sock])


def run_workers(
    workers: int, host: str, port: int, log_level: str, environment: dict[str, str]
) -> None:
    """Run ``workers`` server processes on ``host:port`` until SIGINT or SIGTERM.

    Parameters
    ----------
    workers : int
        Processes (at least 2; one process needs no supervisor).
    host, port : str, int
        The address every worker binds (a fixed port: ``0`` would give each its own).
    log_level : str
        uvicorn's log level in the workers.
    environment : dict
        Variables set in each worker before its app is built (the serve config).

    Raises
    ------
    ValueError
        For fewer than 2 workers or port 0.
    OSError
        When the address cannot be bound (another program holds it).
    """
    if workers < 2:
        raise ValueError(f"workers must be >= 2, got {workers}")
    if port == 0:
        raise ValueError("give a fixed --port with --workers: port 0 would give each its own")
    listening_socket(host, port).close()  # fail here, once, when the address is taken
    context = multiprocessing.get_context("spawn")
    stopping: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda signum, _frame: stopping.append(signum))
        for sig in (signal.SIGINT, signal.SIGTERM)
    }

    def start() -> Any:
        process = context.Process(target=_worker, args=(host, port, log_level, environment))
        process.start()
        return process

    processes: list[Any] = []
    try:
        log.info("started supervisor process [%d] for %d workers", os.getpid(), workers)
        processes = [start() for _ in range(workers)]
        started = [time.monotonic()] * workers
        failures = [0] * workers  # deaths in a row soon after start: back off, do not spin
        due: list[float | None] = [None] * workers  # when a dead worker's successor starts
        while not stopping:
            now = time.monotonic()
            for n, process in enumerate(processes):
                if due[n] is None and not process.is_alive():
                    failures[n] = failures[n] + 1 if now - started[n] < _EARLY else 0
                    wait = min(_MAX_BACKOFF, 2.0 ** failures[n] - 1) if failures[n] else 0.0
                    log.warning(
                        "worker process [%s] died (exit code %s); starting a new one%s",
                        process.pid,
                        process.exitcode,
                        f" in {wait:g} s (it died {failures[n]} times right after start)"
                        if wait
                        else "",
                    )
                    due[n] = now + wait
                if due[n] is not None and now >= due[n] and not stopping:
                    processes[n], started[n], due[n] = start(), time.monotonic(), None
            time.sleep(_POLL)
    finally:
        for process in processes:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("stopped %d workers", len(processes))


__all__ = ["listening_socket", "reuse_port_supported", "run_workers"]
