"""The server's background threads: the registry watch and the optional update schedule.

:class:`RegistryWatch` (always on, ``--follow-every SECONDS``) re-reads the registry's current
pointer and serves whatever another process promoted or rolled back (``dayzero update``, an
operator on another replica), so every server on one registry converges on its current version.
:class:`UpdateSchedule` (``dayzero serve --update-every SECONDS``) runs the updates themselves.

Every ``every`` seconds a daemon thread runs :meth:`OnlineUpdater.update` on the service's own
store and registry: fine-tune the current version on the events since its watermark (with
replay), gate it on the newest events, and promote it only if it does not regress. When it
promotes, the service switches to the new version at once (:meth:`ServiceState.follow_registry`)
while requests keep being served by the old one until the swap. A failed run is logged and kept
in :attr:`UpdateSchedule.last_error`; it never stops the server, and the next tick tries again.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dayzero.online.updater import UpdaterConfig, UpdateResult
    from dayzero.serve.state import ServiceState

log = logging.getLogger("dayzero.serve.schedule")


class _Ticker:
    """A daemon thread calling :meth:`tick` every ``every`` seconds until :meth:`stop`."""

    name = "dayzero-ticker"

    def __init__(self, every: float) -> None:
        if not every > 0:
            raise ValueError(f"`every` must be a positive number of seconds, got {every!r}")
        self.every = float(every)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def start(self) -> None:
        """Start the thread (the first tick comes ``every`` seconds from now)."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the thread to stop and wait for it (a tick in progress finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.tick()


class RegistryWatch(_Ticker):
    """Follow the registry pointer: serve the version another process made current.

    Parameters
    ----------
    state : ServiceState
        The running service.
    every : float
        Seconds between two reads of the pointer (a small JSON file: cheap).
    """

    name = "dayzero-registry-watch"

    def __init__(self, state: ServiceState, every: float) -> None:
        super().__init__(every)
        self.state = state

    def tick(self) -> None:
        try:
            self.state.follow_registry()
        except Exception:  # a broken registry must not take the server down
            log.exception("following the registry failed; the served version is unchanged")


class UpdateSchedule(_Ticker):
    """Run incremental updates for a running service, one at a time, in a daemon thread.

    Parameters
    ----------
    state : ServiceState
        The running service (its store, registry and served version).
    every : float
        Seconds between the end of one run and the start of the next (> 0).
    config : UpdaterConfig, optional
        Settings of the updates (defaults: :class:`~dayzero.online.updater.UpdaterConfig`).

    Attributes
    ----------
    last_result : UpdateResult or None
        What the latest successful run did.
    last_error : str or None
        The latest failure (None after a successful run).
    runs : int
        Runs attempted so far.
    """

    name = "dayzero-update"

    def __init__(
        self, state: ServiceState, every: float, config: UpdaterConfig | None = None
    ) -> None:
        super().__init__(every)
        self.state = state
        self.config = config
        self.last_result: UpdateResult | None = None
        self.last_error: str | None = None
        self.runs = 0

    def run_once(self) -> UpdateResult | None:
        """One update now: fine-tune, gate, and serve the result if it was promoted.

        Returns the :class:`UpdateResult`, or None when the run failed (see ``last_error``).
        """
        from dayzero.online.updater import OnlineUpdater

        self.runs += 1
        try:
            result = OnlineUpdater(self.state.store, self.state.registry, self.config).update()
            if result.promoted:
                self.state.follow_registry()
        except Exception as exc:  # a failed run must not take the server down
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("scheduled update failed; the served version is unchanged")
            return None
        self.last_result, self.last_error = result, None
        log.info(
            "scheduled update: %s (candidate %s, %d new events)",
            result.status,
            result.version,
            result.new_events,
        )
        return result

    def tick(self) -> None:
        self.run_once()
