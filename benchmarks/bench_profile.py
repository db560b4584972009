"""Where the traced arm's extra time goes (``run.py --profile``).

Two views, both on the same scripted sessions as the timed benchmark:

* :func:`account`: the library's entry points are wrapped with ``perf_counter_ns``
  accumulators (in this process, for the duration of the run; nothing is edited): the
  tap's handlers (``SessionTap.handle`` for converted session events, entry, close, agent
  switches, tool tasks, tool outputs), the core (``SpanMachine.feed``) and the sink, per
  command type (a ``StartSpan`` includes the SDK's span creation and the processor's
  ``on_span_start``, an ``EndSpan`` the SDK's ``finish`` and the ``BatchTraceProcessor``
  queue). The per-event hot path (the ``_put_event`` overrides, tens of thousands of calls
  a session) is too small to wrap; :mod:`bench_fastpath` measures it per event instead.
* :func:`profile_diff`: both arms under ``cProfile``; for every function called more often
  in the traced arm (the work tracing adds), its extra own time per session is attributed
  to an area; functions called as often in both arms differ only by noise and cache
  effects and are summed apart as the residual. ``cProfile`` inflates small functions, so
  its areas are read as shares, and the accounting view as the absolute costs.
"""

from __future__ import annotations

import cProfile
import gc
import pstats
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import bench_scenarios as scenarios

_GROUPS = (
    ("adapters/_tap", "realtime_spans tap (adapters/_tap.py)"),
    ("adapters/_sink", "realtime_spans sink (adapters/_sink.py)"),
    ("core/machine", "realtime_spans core machine"),
    ("realtime_spans.core", "attrs __init__ of core events/commands"),
    ("core/events", "core events (Usage arithmetic, validators)"),
    ("core/commands", "core commands"),
    ("attr/", "attrs validators"),
    ("transitions/", "transitions (state machine library)"),
    ("agents/tracing", "SDK tracing (spans, provider, BatchTraceProcessor)"),
    ("uuid", "span ids (uuid4, os.urandom)"),
    ("urandom", "span ids (uuid4, os.urandom)"),
    ("isoformat", "timestamps (datetime)"),
    ("method 'now'", "timestamps (datetime)"),
    ("queue.py", "BatchTraceProcessor queue (queue.Queue, locks)"),
    ("threading.py", "BatchTraceProcessor queue (queue.Queue, locks)"),
    ("_thread.lock", "BatchTraceProcessor queue (queue.Queue, locks)"),
    ("contextvars", "context variables"),
)

#: The tap's entry points that are wrapped by :func:`account` (those that exist).
TAP_ENTRY_POINTS = (
    "handle",
    "entering",
    "closed",
    "agent_in_place",
    "tool_task_begins",
    "tool_task_ends",
    "tool_task_raised",
    "tool_output_sent",
    "tool_rejected",
    "tool_guardrail_rejected",
)


@dataclass
class Account:
    """Microseconds per session spent inside each wrapped part (inclusive), and calls."""

    scenario: str
    sessions: int
    micros: dict[str, float] = field(default_factory=dict)
    calls: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers for the JSON results."""
        return {
            "scenario": self.scenario,
            "sessions": self.sessions,
            "us_per_session": self.micros,
            "calls_per_session": self.calls,
        }


@contextmanager
def _accumulating(
    owner: Any, name: str, label: str, totals: dict[str, int], counts: dict[str, int]
) -> Iterator[None]:
    """Replace ``owner.name`` (a class attribute or a dict entry) by a timing wrapper."""
    is_dict = isinstance(owner, dict)
    original: Callable[..., Any] = owner[name] if is_dict else owner.__dict__[name]

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter_ns()
        try:
            return original(*args, **kwargs)
        finally:
            totals[label] += time.perf_counter_ns() - start
            counts[label] += 1

    if is_dict:
        owner[name] = timed
    else:
        setattr(owner, name, timed)
    try:
        yield
    finally:
        if is_dict:
            owner[name] = original
        else:
            setattr(owner, name, original)


async def account(scenario: scenarios.Scenario, *, sessions: int) -> Account:
    """Run ``sessions`` traced sessions with the library's entry points timed."""
    from realtime_spans.adapters import _sink, _tap
    from realtime_spans.core import SpanMachine

    totals: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    await scenarios.run_timed([await scenarios.prepare(scenario)], trace=True)  # warm-up
    prepared = [await scenarios.prepare(scenario) for _ in range(sessions)]
    with ExitStack() as stack:
        for name in TAP_ENTRY_POINTS:
            if name in vars(_tap.SessionTap):
                stack.enter_context(
                    _accumulating(_tap.SessionTap, name, f"tap.{name}", totals, counts)
                )
        stack.enter_context(_accumulating(SpanMachine, "feed", "core.feed", totals, counts))
        apply_table: dict[type[Any], Any] = getattr(_sink, "_APPLY", {})
        for command in list(apply_table):
            label = f"sink.{command.__name__}"
            stack.enter_context(_accumulating(apply_table, command, label, totals, counts))
        gc.collect()
        gc.disable()
        try:
            await scenarios.run_timed(prepared, trace=True)
        finally:
            gc.enable()
    order = sorted(totals, key=lambda label: -totals[label])
    return Account(
        scenario.name,
        sessions,
        {label: totals[label] / 1e3 / sessions for label in order},
        {label: counts[label] / sessions for label in order},
    )


def _group(key: tuple[str, int, str]) -> str:
    text = f"{key[0]}:{key[2]}"
    for marker, name in _GROUPS:
        if marker in text:
            return name
    return "other (SDK session, asyncio, builtins called more often)"


def _label(key: tuple[str, int, str]) -> str:
    path = key[0]
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{key[1]}({key[2]})" if key[1] else key[2]


@dataclass
class ProfileDiff:
    """Per-session extra own time of the traced arm, by area and by function (ms)."""

    scenario: str
    traced_ms: float
    untraced_ms: float
    groups: dict[str, float] = field(default_factory=dict)
    functions: list[tuple[str, float, float]] = field(default_factory=list)
    residual_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers for the JSON results."""
        return {
            "scenario": self.scenario,
            "profiled_traced_ms_per_session": self.traced_ms,
            "profiled_untraced_ms_per_session": self.untraced_ms,
            "extra_ms_by_area": self.groups,
            "residual_ms_same_calls": self.residual_ms,
            "top_functions": [
                {"function": name, "extra_ms": extra, "extra_calls": calls}
                for name, extra, calls in self.functions
            ],
        }


async def _profiled(scenario: scenarios.Scenario, sessions: int, *, trace: bool) -> Any:
    prepared = [await scenarios.prepare(scenario) for _ in range(sessions)]
    gc.collect()
    gc.disable()
    profile = cProfile.Profile()
    try:
        profile.enable()
        elapsed, _ = await scenarios.run_timed(prepared, trace=trace)
        profile.disable()
    finally:
        gc.enable()
    return elapsed, pstats.Stats(profile).stats  # type: ignore[attr-defined]


async def profile_diff(scenario: scenarios.Scenario, *, sessions: int, top: int) -> ProfileDiff:
    """Profile ``sessions`` sessions of each arm and diff them, per session."""
    await scenarios.run_timed([await scenarios.prepare(scenario)], trace=True)  # warm-up
    await scenarios.run_timed([await scenarios.prepare(scenario)], trace=False)
    untraced_ns, untraced = await _profiled(scenario, sessions, trace=False)
    traced_ns, traced_ = await _profiled(scenario, sessions, trace=True)
    diff = ProfileDiff(scenario.name, traced_ns / 1e6 / sessions, untraced_ns / 1e6 / sessions)
    groups: dict[str, float] = defaultdict(float)
    rows = []
    for key in set(traced_) | set(untraced):
        t = traced_.get(key, (0, 0, 0.0, 0.0, {}))
        u = untraced.get(key, (0, 0, 0.0, 0.0, {}))
        extra = (t[2] - u[2]) * 1e3 / sessions
        calls = (t[1] - u[1]) / sessions
        if calls > 0:
            groups[_group(key)] += extra
            rows.append((_label(key), extra, calls))
        else:
            diff.residual_ms += extra
    diff.groups = dict(sorted(groups.items(), key=lambda item: -item[1]))
    diff.functions = sorted(rows, key=lambda row: -row[1])[:top]
    return diff
