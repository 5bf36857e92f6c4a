"""One lifecycle for background work (RocketMQ's ServiceThread, the asyncio way).

A :class:`Service` owns at most one named task. Apps start services in dependency order and stop them in
reverse. If the task dies with an exception the service moves to ``FAILED`` and :meth:`Service.on_failed`
runs, so a subclass fails whatever waits on it instead of leaving it hanging.

The lifecycle is an explicit state machine: :func:`transition` is the only place states change, and an
illegal transition raises and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Iterable

from orbitmq.core.clock import Clock
from orbitmq.core.errors import OrbitError

__all__ = ["IllegalTransition", "Service", "ServiceEvent", "ServiceGroup", "ServiceState", "transition"]

log = logging.getLogger("orbitmq.service")


class ServiceState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


class ServiceEvent(enum.Enum):
    START = "start"
    STOP = "stop"
    STOPPED = "stopped"
    CRASH = "crash"


_TRANSITIONS: dict[tuple[ServiceState, ServiceEvent], ServiceState] = {
    (ServiceState.NEW, ServiceEvent.START): ServiceState.RUNNING,
    (ServiceState.NEW, ServiceEvent.STOP): ServiceState.STOPPED,
    (ServiceState.RUNNING, ServiceEvent.STOP): ServiceState.STOPPING,
    (ServiceState.RUNNING, ServiceEvent.CRASH): ServiceState.FAILED,
    (ServiceState.STOPPING, ServiceEvent.STOPPED): ServiceState.STOPPED,
    (ServiceState.STOPPING, ServiceEvent.CRASH): ServiceState.STOPPED,
    (ServiceState.FAILED, ServiceEvent.STOP): ServiceState.STOPPING,
    (ServiceState.STOPPED, ServiceEvent.STOP): ServiceState.STOPPED,
}


class IllegalTransition(OrbitError):
    pass


def transition(state: ServiceState, event: ServiceEvent) -> ServiceState:
    try:
        return _TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(f"service cannot {event.value} while {state.value}") from None


class Service:
    """Base class for background work.

    Subclasses override :meth:`run` (the body of the one task; return to finish early), and optionally
    :meth:`on_start`, :meth:`on_stop` and :meth:`on_failed`. Inside :meth:`run`, loop with
    ``while not self.stopping: await self.wait_for_wakeup(interval)`` to get RocketMQ's
    ``waitForRunning`` behaviour: wake on :meth:`wakeup` or after ``interval`` seconds.
    """

    #: Subclasses without background work set this to False: no task is created.
    has_task = True

    def __init__(self, name: str, wakeup_clock: Clock | None = None) -> None:
        self.name = name
        #: With a clock, the interval of :meth:`wait_for_wakeup` is that clock's time, so a test on a
        #: FakeClock drives periodic services with ``advance``; without one it is the loop's real time.
        self.wakeup_clock = wakeup_clock
        self.state = ServiceState.NEW
        self.failure: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        self.state = transition(self.state, ServiceEvent.START)
        try:
            await self.on_start()
        except BaseException:
            self.state = ServiceState.FAILED
            raise
        if self.has_task:
            self._task = asyncio.get_running_loop().create_task(self._main(), name=self.name)

    async def stop(self) -> None:
        if self.state in (ServiceState.STOPPED, ServiceState.NEW):
            self.state = ServiceState.STOPPED
            return
        self.state = transition(self.state, ServiceEvent.STOP)
        self.wakeup()
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=self.stop_timeout_s)
            except TimeoutError:
                log.warning("service %s did not stop in %.1fs; cancelling", self.name, self.stop_timeout_s)
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        try:
            await self.on_stop()
        finally:
            self.state = transition(self.state, ServiceEvent.STOPPED)

    stop_timeout_s = 10.0

    @property
    def stopping(self) -> bool:
        return self.state is not ServiceState.RUNNING

    @property
    def running(self) -> bool:
        return self.state is ServiceState.RUNNING

    def wakeup(self) -> None:
        self._wakeup.set()

    async def wait_for_wakeup(self, timeout: float | None) -> bool:
        """Wait until :meth:`wakeup` is called or ``timeout`` seconds pass; True if woken."""
        if self._wakeup.is_set():
            self._wakeup.clear()
            return True
        if timeout is None:
            await self._wakeup.wait()
        elif self.wakeup_clock is None:
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            except TimeoutError:
                return False
        elif not await self._wait_on_clock(self.wakeup_clock, timeout):
            return False
        self._wakeup.clear()
        return True

    async def _wait_on_clock(self, clock: Clock, timeout: float) -> bool:
        woken = asyncio.ensure_future(self._wakeup.wait())
        slept = asyncio.ensure_future(clock.sleep(timeout))
        try:
            await asyncio.wait((woken, slept), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in (woken, slept):
                fut.cancel()
        return self._wakeup.is_set()

    # -- hooks ---------------------------------------------------------------------------------------
    async def on_start(self) -> None:
        """Runs before the task starts; an exception here fails :meth:`start`."""

    async def run(self) -> None:
        """The body of the service's task."""

    async def on_stop(self) -> None:
        """Runs after the task has finished (flush, close files)."""

    def on_failed(self, exc: BaseException) -> None:
        """The task died: fail everything that waits on this service."""

    async def _main(self) -> None:
        try:
            await self.run()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.failure = exc
            log.exception("service %s failed", self.name)
            if self.state is ServiceState.RUNNING:
                self.state = transition(self.state, ServiceEvent.CRASH)
            self.on_failed(exc)


class ServiceGroup:
    """Starts services in order and stops them in reverse; a failed start stops what already started."""

    def __init__(self, services: Iterable[Service] = ()) -> None:
        self.services: list[Service] = list(services)
        self._started: list[Service] = []

    def add(self, service: Service) -> None:
        self.services.append(service)

    async def start(self) -> None:
        for svc in self.services:
            try:
                await svc.start()
            except BaseException:
                await self.stop()
                raise
            self._started.append(svc)

    async def stop(self) -> None:
        while self._started:
            svc = self._started.pop()
            try:
                await svc.stop()
            except Exception:
                log.exception("stopping %s failed", svc.name)
