"""A worker process: one arm, one persistent event loop, sessions run on command.

Each generation of workers comes from :func:`zygote` (one process that imports everything,
then forks a worker per arm); each worker connects back to the coordinator
(:mod:`bench_transport`), which sends it, one at a time, ``("run", conversation,
sessions)``; the worker runs that many sessions of the conversation against the server,
back to back, and answers with what it measured. Only one worker runs at any moment (the
others wait on their sockets), so no two arms compete for the CPU.

What a sample measures (the timed region is, per session, everything the application
pays: ``RealtimeRunner.run()``, the arm's ``wrap`` (``traced()``), entry and connect, the
conversation, every event iterated, and close):

* wall time (``perf_counter_ns``) and CPU time of this process (``process_time_ns``: every
  thread, so the processors' export threads are in it); the export itself, at the flush
  that counts the spans after the sample, is not timed (the exporters here only count);
* event-loop stalls (:class:`LoopMonitor`): every callback the loop runs
  (``asyncio.Handle._run``) is timed; per session, the longest;
* with ``attribute=True`` (a separate pass, never in the timed samples): the arm's tracing
  calls (:attr:`transport_arms.Setup.tracing_calls`) are wrapped too, and each session
  reports its longest single tracing call, the most tracing time inside one callback, and
  the total;
* what the caller saw (:class:`transport_conversation.Seen`), and the spans the arm's
  exporter received (after a flush, outside the timed region).
"""

from __future__ import annotations

import asyncio
import cProfile
import functools
import gc
import os
import pstats
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import transport_arms as arms
import transport_conversation as conversations

_perf = time.perf_counter_ns
_cpu = time.thread_time_ns


class LoopMonitor:
    """Times every callback the event loop runs; keeps the longest, per session.

    It replaces ``asyncio.events.Handle._run`` (which ``BaseEventLoop._run_once`` calls
    for every ready callback: task steps, I/O readiness, ``call_soon``) with a wrapper
    that reads the wall clock (``perf_counter_ns``) and the thread's CPU clock
    (``thread_time_ns``) around it: the wall time is the stall the loop saw (including
    any time another process had the core, or another thread the GIL), the CPU time is
    the loop thread's own work. The same wrapper runs in every arm, so its cost (about
    1.3 us per callback, a few thousand callbacks a session) is the same in all of them.

    With :meth:`attributing`, tracing calls wrapped by :meth:`tracing_call` add their time
    to the callback they run in.

    Example:
        >>> monitor = LoopMonitor()
        >>> monitor.install()
        >>> asyncio.run(asyncio.sleep(0))
        >>> monitor.callbacks > 0
        True
        >>> monitor.uninstall()
    """

    def __init__(self) -> None:
        self._original: Any = None
        self.attribute = False
        self.by_call: dict[str, list[int]] = {}
        self.reading_cpu_ns = _reading_cost()
        self.reset()

    def reset(self) -> None:
        """Start a new session's figures."""
        self.callbacks = 0
        self.longest = 0
        self.longest_cpu = 0
        self.longest_callback: Any = None
        self.depth = 0
        self.tracing_ns = 0
        self.tracing_calls = 0
        for totals in self.by_call.values():  # the wrappers hold these lists
            totals[0] = totals[1] = 0
        self.longest_call = 0
        self.longest_call_cpu = 0
        self.longest_call_name = ""
        self.most_tracing_in_callback = 0

    def install(self) -> None:
        """Time every ``Handle._run`` from now on."""
        self._original = original = asyncio.events.Handle._run
        monitor = self

        def _run(handle: asyncio.Handle) -> None:
            traced_before = monitor.tracing_ns
            cpu = _cpu()
            start = _perf()
            original(handle)
            elapsed = _perf() - start
            cpu = _cpu() - cpu
            if monitor.attribute:
                inside = monitor.tracing_ns - traced_before
                monitor.most_tracing_in_callback = max(monitor.most_tracing_in_callback, inside)
            monitor.callbacks += 1
            if elapsed > monitor.longest:
                monitor.longest = elapsed
                monitor.longest_callback = handle._callback
            monitor.longest_cpu = max(monitor.longest_cpu, cpu)

        asyncio.events.Handle._run = _run  # type: ignore[method-assign]

    def uninstall(self) -> None:
        """Put ``Handle._run`` back."""
        if self._original is not None:
            asyncio.events.Handle._run = self._original  # type: ignore[method-assign]
            self._original = None

    def tracing_call(self, function: Callable[..., Any], name: str) -> Callable[..., Any]:
        """``function`` timed as a tracing call (outermost calls only: nested tracing
        calls are part of the call that made them).

        Both clocks are read: the wall clock (``perf_counter_ns``) and the thread's CPU
        clock (``thread_time_ns``, read outside the wall readings; what reading it costs,
        measured once, is taken off). CPU time decides the longest call and makes the
        totals, per call name too, so that another process taking the core inflates
        neither."""
        monitor = self
        reading = self.reading_cpu_ns
        totals = self.by_call.setdefault(name, [0, 0])

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if monitor.depth:
                return function(*args, **kwargs)
            monitor.depth = 1
            cpu = _cpu()
            start = _perf()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = _perf() - start
                cpu = max(0, _cpu() - cpu - reading)
                monitor.depth = 0
                monitor.tracing_ns += cpu
                monitor.tracing_calls += 1
                totals[0] += 1
                totals[1] += cpu
                monitor.longest_call = max(monitor.longest_call, elapsed)
                if cpu > monitor.longest_call_cpu:
                    monitor.longest_call_cpu = cpu
                    monitor.longest_call_name = name

        return timed

    @contextmanager
    def attributing(self, calls: list[tuple[Any, str]]) -> Iterator[None]:
        """Wrap ``calls`` (owner, attribute) as tracing calls for the duration."""
        originals: list[tuple[Any, str, Any]] = []
        for owner, attribute in calls:
            value = vars(owner).get(attribute) if isinstance(owner, type) else None
            if value is None:
                value = getattr(owner, attribute)
            label = f"{getattr(owner, '__name__', owner)}.{attribute}"
            if isinstance(value, staticmethod):
                replacement: Any = staticmethod(self.tracing_call(value.__func__, label))
            elif isinstance(value, classmethod):
                replacement = classmethod(self.tracing_call(value.__func__, label))
            elif callable(value):
                replacement = self.tracing_call(value, label)
            else:
                continue
            originals.append((owner, attribute, value))
            setattr(owner, attribute, replacement)
        self.attribute = True
        try:
            yield
        finally:
            self.attribute = False
            for owner, attribute, value in reversed(originals):
                setattr(owner, attribute, value)


def _reading_cost() -> int:
    """What a tracing call's clock readings add to its CPU time: the median CPU time the
    wrapper measures around a call that does nothing."""

    def nothing() -> None:
        return None

    costs = []
    for _ in range(2000):
        cpu = _cpu()
        start = _perf()
        nothing()
        _ = _perf() - start  # the same readings as a tracing call
        costs.append(_cpu() - cpu)
    costs.sort()
    return costs[len(costs) // 2]


def describe_callback(callback: Any) -> str:
    """A short name for a loop callback: the coroutine of a task step, else the function."""
    if callback is None:
        return "-"
    for referent in [getattr(callback, "__self__", None), *gc.get_referents(callback)]:
        if isinstance(referent, asyncio.Task):
            coro = referent.get_coro()
            name = getattr(coro, "__qualname__", None) or type(coro).__name__
            return f"task {name}"
    function = getattr(callback, "__func__", callback)
    owner = getattr(getattr(callback, "__self__", None), "__class__", None)
    name = getattr(function, "__qualname__", None) or repr(function)
    if owner is not None and "." not in name:
        name = f"{owner.__name__}.{name}"
    return name


class Worker:
    """One arm in this process, with the loop it runs sessions on."""

    def __init__(self, arm: str, urls: dict[str, str], *, gc_off: bool) -> None:
        import bench_scenarios
        from agents.realtime import RealtimeRunner

        self.setup = arms.setup(arm)
        self.urls = urls
        self.gc_off = gc_off
        self.monitor = LoopMonitor()
        self.monitor.install()
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.runner = RealtimeRunner
        self.agent = bench_scenarios.agents()[0]
        self.conversations = conversations.by_name()
        self.signatures: dict[str, tuple[int, str]] = {}

    async def _session(self, conversation: conversations.Conversation, url: str) -> Any:
        from tests.realtime_server import API_KEY

        seen = conversations.Seen()
        await asyncio.sleep(0)  # the callback that ran the collector ends here, not timed
        self.monitor.reset()
        start = _perf()
        session = await self.runner(self.agent).run(model_config={"url": url, "api_key": API_KEY})
        session = self.setup.wrap(session)
        await conversations.converse(session, conversation, seen)
        elapsed = _perf() - start
        monitor = self.monitor
        return {
            "wall_ns": elapsed,
            "longest_callback_ns": monitor.longest,
            "longest_callback_cpu_ns": monitor.longest_cpu,
            "longest_callback": monitor.longest_callback,
            "callbacks": monitor.callbacks,
            "longest_tracing_call_ns": monitor.longest_call,
            "longest_tracing_call_cpu_ns": monitor.longest_call_cpu,
            "longest_tracing_call": monitor.longest_call_name,
            "most_tracing_in_callback_ns": monitor.most_tracing_in_callback,
            "tracing_ns": monitor.tracing_ns,
            "by_call": {name: tuple(t) for name, t in monitor.by_call.items() if t[0]},
            "tracing_calls": monitor.tracing_calls,
            "signature": seen.signature(),
            "kinds": seen.kinds,
        }

    async def _sample(
        self, name: str, sessions: int, profiler: cProfile.Profile | None = None
    ) -> dict[str, Any]:
        conversation = self.conversations[name]
        url = self.urls[name]
        gc.collect()
        if self.gc_off:
            gc.disable()
        if profiler is not None:
            profiler.enable()
        try:
            cpu = time.process_time_ns()
            wall = _perf()
            results = [await self._session(conversation, url) for _ in range(sessions)]
            wall = _perf() - wall
            cpu = time.process_time_ns() - cpu
        finally:
            if profiler is not None:
                profiler.disable()
            gc.enable()
        for result in results:
            result["longest_callback"] = describe_callback(result["longest_callback"])
        return {"wall_ns": wall, "cpu_ns": cpu, "sessions": results}

    def run(self, name: str, sessions: int, *, attribute: bool = False) -> dict[str, Any]:
        """Run ``sessions`` sessions of conversation ``name``; what was measured."""
        if attribute:
            with self.monitor.attributing(self.setup.tracing_calls):
                sample = self.loop.run_until_complete(self._sample(name, sessions))
        else:
            sample = self.loop.run_until_complete(self._sample(name, sessions))
        sample["spans"] = dict(self.setup.count_spans())
        signatures = {result["signature"] for result in sample["sessions"]}
        sample["signatures"] = sorted(signatures)
        sample["kinds"] = sample["sessions"][0]["kinds"]
        for result in sample["sessions"]:
            del result["kinds"]
        return sample

    def profile(self, name: str, sessions: int, top: int) -> dict[str, Any]:
        """Run sessions under ``cProfile``: own time by area and the top functions, ms per
        session (the loop's idle ``epoll.poll`` left out)."""
        profiler = cProfile.Profile()
        self.loop.run_until_complete(self._sample(name, sessions, profiler))
        self.setup.count_spans()
        stats = pstats.Stats(profiler)
        rows = []
        for (path, line, function), (_, calls, own, _cum, _) in stats.stats.items():  # type: ignore[attr-defined]
            where = f"{path}:{line}({function})"
            if "select.epoll" in where:
                continue
            rows.append((own * 1000 / sessions, calls / sessions, where))
        rows.sort(reverse=True)
        by_area: Counter[str] = Counter()
        for own_ms, _calls, where in rows:
            by_area[_area(where)] += own_ms
        return {
            "total_ms": sum(row[0] for row in rows),
            "top": rows[:top],
            "areas": dict(by_area),
        }


#: Where a profiled function lives, for the per-area view.
_AREAS = (
    ("realtime_spans", "realtime-spans"),
    ("/adapters/", "realtime-spans"),
    ("/core/", "realtime-spans"),
    ("openinference", "OpenInference"),
    ("opentelemetry/instrumentation", "OpenLLMetry"),
    ("opentelemetry", "OpenTelemetry SDK"),
    ("agents/tracing", "SDK tracing"),
    ("agents/realtime", "SDK realtime session + transport"),
    ("websockets", "websockets"),
    ("pydantic", "pydantic"),
    ("asyncio", "asyncio"),
    ("wave.py", "wave (WAV encoding)"),
    ("base64", "base64"),
    ("json", "json"),
)


def _area(where: str) -> str:
    for needle, area in _AREAS:
        if needle in where:
            return area
    if where.startswith("~"):
        return "builtins"
    return "other"


def serve(conn: Connection, arm: str, urls: dict[str, str], gc_off: bool) -> None:
    """Set arm ``arm`` up in this process, then run commands from ``conn`` until ``stop``."""
    try:
        worker = Worker(arm, urls, gc_off=gc_off)
    except BaseException as error:
        conn.send({"error": f"{type(error).__name__}: {error}"})
        raise
    conn.send({"ready": arm, "pid": os.getpid(), "facts": worker.setup.facts})
    while True:
        command = conn.recv()
        if command[0] == "stop":
            break
        try:
            if command[0] == "run":
                _, name, sessions, attribute = command
                conn.send(worker.run(name, sessions, attribute=attribute))
            elif command[0] == "profile":
                _, name, sessions, top = command
                conn.send(worker.profile(name, sessions, top))
        except BaseException as error:
            import traceback

            conn.send({"error": traceback.format_exc()})
            if not isinstance(error, Exception):
                raise
    worker.monitor.uninstall()
    worker.loop.close()


def zygote(  # noqa: PLR0917 - a process target takes positional arguments
    address: str,
    authkey: bytes,
    arm_names: list[str],
    urls: dict[str, str],
    cpu: int | None,
    gc_off: bool,
) -> None:
    """Process entry point of one generation: import everything once, fork a worker per arm.

    Each worker connects back to the coordinator's listener at ``address`` and serves
    commands (:func:`serve`). Forking from one process gives every arm of a generation
    the same starting memory layout, so the arms of a repeat differ only by what they
    run; each generation is a new process with a new layout. Nothing here has started a
    thread or an event loop when it forks.
    """
    from multiprocessing.connection import Client

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    import agents.realtime  # noqa: F401 - the heavy imports, done once per generation
    import bench_scenarios  # noqa: F401
    import openinference.instrumentation.openai_agents  # noqa: F401
    import opentelemetry.instrumentation.openai_agents
    import opentelemetry.sdk.trace  # noqa: F401
    import websockets.asyncio.client  # noqa: F401

    import realtime_spans.adapters  # noqa: F401

    children = []
    for arm in arm_names:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                conn = Client(address, family="AF_UNIX", authkey=authkey)
                conn.send({"hello": arm})
                serve(conn, arm, urls, gc_off)
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
