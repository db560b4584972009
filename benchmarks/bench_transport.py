"""The real-transport benchmark: every tracer side by side on ``OpenAIRealtimeWebSocketModel``.

Method (``benchmarks/README.md`` says it at length):

* The local Realtime server of ``tests/realtime_server`` runs in a process of its own
  (:mod:`transport_server`), one port per conversation (:mod:`transport_conversation`),
  pinned to one core; the client workers are pinned to the other.
* Each arm (:mod:`transport_arms`) runs in a worker process of its own
  (:mod:`transport_worker`): instrumentors patch ``RealtimeSession`` for the whole
  process. Each repeat starts a new generation: a fresh zygote process imports
  everything once and forks one worker per arm, so every arm is spread over as many
  processes (memory layouts, hash seeds) as there are repeats, and the arms of a repeat
  start alike. The coordinator (this module) asks one worker at a time for one session;
  the others wait on their sockets. Each repeat runs every session slot (a scenario's
  ``rounds``) in a shuffled order and, in each, every arm in a shuffled order.
* Per session: the client process's CPU time (every thread: the processors' export
  threads are in it) and wall time, the event loop's longest callback, the events the
  caller saw and the spans the arm exported, all checked. Per repeat, arm / untraced;
  the table shows medians and interquartile ranges. CPU time is the primary figure: it
  never includes the server's, and other jobs on the two shared cores disturb it far
  less than wall time. A second untraced arm (A/A) shows the run's noise floor.
* Per audio delta: the slope between two audio volumes (``audio-heavy`` and
  ``audio-light``, 500 and 100 deltas per response): per repeat, the arm's extra time in
  one minus its extra time in the other, over the difference in deltas; the median with
  a distribution-free 95% confidence interval.
* Stalls: :class:`transport_worker.LoopMonitor` times every callback in every arm; a
  separate pass (never the timed samples) wraps each arm's tracing calls and reports the
  longest single call and the time per entry point.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import random
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, Listener
from typing import Any

import transport_arms as arms
import transport_conversation as conversations
import transport_server
import transport_worker

#: Targets (ratios of CPU time to untraced, same run), as in the issue.
RS_AUDIO_TARGET = 1.03
RS_LIFECYCLE_TARGET = 1.08
RS_WITH_AUDIO_TARGET = 1.10
STALL_TARGET_MS = 1.0
OURS = ("realtime-spans", "rs+audio", "rs+phoenix")
PEERS = ("openinference", "openllmetry")
SCENARIOS = ("audio-heavy", "audio-light", "lifecycle")


@dataclass(frozen=True)
class Plan:
    """How many repeats, warm-ups and attribution sessions."""

    repeats: int
    warmup: int
    attribution_sessions: int
    respawn_every: int

    @classmethod
    def for_args(cls, quick: bool, repeats: int, respawn_every: int = 0) -> Plan:
        """The quick or the full plan; ``repeats`` and ``respawn_every`` override."""
        plan = cls(4, 1, 1, 1) if quick else cls(20, 1, 3, 1)
        return cls(
            repeats or plan.repeats,
            plan.warmup,
            plan.attribution_sessions,
            respawn_every or plan.respawn_every,
        )


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(value, 2) for value in os.getloadavg()]


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, quartiles, a distribution-free 95% interval of the median, min, max.

    Example:
        >>> summary([1.0, 2.0, 3.0, 4.0, 5.0])["median"]
        3.0
    """
    ordered = sorted(values)
    n = len(ordered)
    if n >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    k = max(0, math.floor((n - 1.96 * math.sqrt(n)) / 2))
    return {
        "n": n,
        "median": statistics.median(ordered),
        "q1": q1,
        "q3": q3,
        "ci_low": ordered[k] if n >= 6 else ordered[0],
        "ci_high": ordered[n - 1 - k] if n >= 6 else ordered[-1],
        "min": ordered[0],
        "max": ordered[-1],
    }


class _Peer:
    """A child process and its pipe."""

    def __init__(self, name: str, process: Any, conn: Connection) -> None:
        self.name = name
        self.process = process
        self.conn = conn

    def ask(self, message: Any, seconds: float = 600.0) -> Any:
        self.conn.send(message)
        if not self.conn.poll(seconds):
            raise TimeoutError(f"{self.name}: no answer within {seconds} s to {message!r}")
        answer = self.conn.recv()
        if isinstance(answer, dict) and "error" in answer:
            raise RuntimeError(f"{self.name} failed:\n{answer['error']}")
        return answer

    def stop(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.conn.send(("stop",) if self.name != "server" else "stop")
        if self.process is None:  # a forked worker: its zygote reaps it
            self.conn.close()
            return
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)


@dataclass
class Cell:
    """One arm in one scenario: every repeat's figures."""

    wall_ns: list[int] = field(default_factory=list)
    cpu_ns: list[int] = field(default_factory=list)
    longest_callback_ns: list[int] = field(default_factory=list)
    longest_callback_cpu_ns: list[int] = field(default_factory=list)
    longest_callbacks: list[str] = field(default_factory=list)
    callbacks: list[int] = field(default_factory=list)
    server_cpu_ns: list[int] = field(default_factory=list)
    spans: dict[str, int] = field(default_factory=dict)
    attribution: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Results:
    """Everything the transport run measured."""

    arms: list[str]
    scenarios: list[conversations.Conversation]
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    orders: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    load_before: list[float] = field(default_factory=list)
    load_after: list[float] = field(default_factory=list)
    reference: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)

    def cell(self, arm: str, scenario: str) -> Cell:
        return self.cells.setdefault((arm, scenario), Cell())

    def per_session(self, arm: str, scenario: str, what: str) -> list[float]:
        """A measure per repeat, per session, in milliseconds."""
        sessions = self._conversation(scenario).rounds
        return [value / 1e6 / sessions for value in getattr(self.cell(arm, scenario), what)]

    def ratios(self, arm: str, scenario: str, what: str = "cpu_ns") -> list[float]:
        """Per repeat, arm / untraced."""
        mine = getattr(self.cell(arm, scenario), what)
        base = getattr(self.cell("untraced", scenario), what)
        return [a / b for a, b in zip(mine, base, strict=True)]

    def slope_ns(self, arm: str, what: str = "cpu_ns") -> list[float]:
        """Per repeat, the arm's added cost per audio delta (ns): the difference of its
        extra time in audio-heavy and in audio-light, over the difference in deltas.
        For ``untraced``, the session's own cost per delta."""
        heavy, light = self._conversation("audio-heavy"), self._conversation("audio-light")
        deltas = heavy.audio_deltas - light.audio_deltas
        h = getattr(self.cell(arm, "audio-heavy"), what)
        lo = getattr(self.cell(arm, "audio-light"), what)
        if arm == "untraced":
            return [(a - b) / deltas for a, b in zip(h, lo, strict=True)]
        hu = getattr(self.cell("untraced", "audio-heavy"), what)
        lu = getattr(self.cell("untraced", "audio-light"), what)
        return [((a - au) - (b - bu)) / deltas for a, au, b, bu in zip(h, hu, lo, lu, strict=True)]

    def _conversation(self, name: str) -> conversations.Conversation:
        return next(c for c in self.scenarios if c.name == name)

    def as_dict(self) -> dict[str, Any]:
        """Raw figures and summaries for the JSON results."""
        out: dict[str, Any] = {
            "arms": self.arms,
            "scenarios": {c.name: c.summary() for c in self.scenarios},
            "orders": self.orders,
            "facts": self.facts,
            "load_before": self.load_before,
            "load_after": self.load_after,
            "elapsed_s": self.elapsed_s,
            "cells": {},
            "profiles": self.profiles,
        }
        for (arm, scenario), cell in self.cells.items():
            entry = dict(vars(cell))
            if arm != "untraced" and cell.cpu_ns:
                entry["cpu_ratio"] = summary(self.ratios(arm, scenario))
                entry["wall_ratio"] = summary(self.ratios(arm, scenario, "wall_ns"))
            out["cells"][f"{arm} | {scenario}"] = entry
        if all(("untraced", s) in self.cells for s in ("audio-heavy", "audio-light")):
            out["slope_ns_per_delta"] = {arm: summary(self.slope_ns(arm)) for arm in self.arms}
        return out


class Harness:
    """The server process and one worker per arm; stops them all on exit.

    :meth:`respawn` replaces every worker by a fresh process (a new *generation*): a
    process's own layout (address-space randomisation, the allocator's arenas, string
    hashes) biases everything it runs by several per cent, the same way for as long as
    it lives, so each arm's samples are spread over many processes of its own.
    """

    def __init__(self, arm_names: list[str], names: list[str], *, pin: bool, gc_off: bool) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.arm_names = arm_names
        self.gc_off = gc_off
        cpus = sorted(os.sched_getaffinity(0))
        server_cpu = cpus[-1] if pin and len(cpus) > 1 else None
        self.worker_cpu = cpus[0] if pin and len(cpus) > 1 else None
        self.peers: list[_Peer] = []
        self.workers: dict[str, _Peer] = {}
        self.facts: dict[str, Any] = {"pinned": {"server": server_cpu, "workers": self.worker_cpu}}
        self.generations = 0
        self.authkey = os.urandom(16)
        self.listener = Listener(family="AF_UNIX", authkey=self.authkey)
        self.zygote: Any = None
        here, there = self.context.Pipe()
        process = self.context.Process(
            target=transport_server.serve, args=(there, names, server_cpu), daemon=True
        )
        process.start()
        self.server = _Peer("server", process, here)
        self.peers.append(self.server)
        if not here.poll(300):
            raise TimeoutError("the Realtime server did not start")
        self.urls: dict[str, str] = here.recv()

    def respawn(self, rng: random.Random) -> None:
        """Stop the workers (if any) and start a new generation: a fresh zygote process
        (with a new ``PYTHONHASHSEED``) that forks one worker per arm, in a shuffled order
        (so no arm is always the first child)."""
        self._stop_workers()
        hash_seed = rng.randrange(1, 2**32 - 1)
        fork_order = list(self.arm_names)
        rng.shuffle(fork_order)
        saved = os.environ.get("PYTHONHASHSEED")
        os.environ["PYTHONHASHSEED"] = str(hash_seed)
        try:
            process = self.context.Process(
                target=transport_worker.zygote,
                args=(
                    self.listener.address,
                    self.authkey,
                    fork_order,
                    self.urls,
                    self.worker_cpu,
                    self.gc_off,
                ),
                daemon=True,
            )
            process.start()
        finally:
            if saved is None:
                del os.environ["PYTHONHASHSEED"]
            else:
                os.environ["PYTHONHASHSEED"] = saved
        self.zygote = process
        pending: dict[str, Connection] = {}

        def accept() -> None:
            while len(pending) < len(self.arm_names):
                conn = self.listener.accept()
                pending[conn.recv()["hello"]] = conn

        accepting = threading.Thread(target=accept, daemon=True)
        accepting.start()
        accepting.join(300)
        if accepting.is_alive():
            raise TimeoutError(f"only {sorted(pending)} of the workers connected")
        for arm in self.arm_names:
            conn = pending[arm]
            if not conn.poll(300):
                raise TimeoutError(f"worker {arm} did not start")
            ready = conn.recv()
            if "error" in ready:
                raise RuntimeError(f"arm {arm} could not be set up: {ready['error']}")
            self.workers[arm] = _Peer(arm, None, conn)
            self.facts[arm] = ready["facts"]
        self.generations += 1

    def _stop_workers(self) -> None:
        for peer in self.workers.values():
            peer.stop()
        self.workers = {}
        if self.zygote is not None:
            self.zygote.join(timeout=30)
            if self.zygote.is_alive():
                self.zygote.kill()
                self.zygote.join(timeout=5)
            self.zygote = None

    def server_status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.server.ask("status", 60)
        if status["errors"]:
            raise AssertionError(f"the Realtime server reported errors: {status['errors']}")
        return status

    def close(self) -> None:
        self._stop_workers()
        for peer in reversed(self.peers):
            peer.stop()
        self.listener.close()

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _check(results: Results, arm: str, scenario: str, sample: dict[str, Any]) -> None:
    """Did the arm do its work, and did its caller see what the untraced caller saw?"""
    spans = sample["spans"]
    total = sum(spans.values())
    cell = results.cell(arm, scenario)
    if arm in ("untraced", arms.AA):
        if total:
            raise AssertionError(f"untraced {scenario}: spans were exported: {spans}")
    elif not total:
        raise AssertionError(f"{arm} {scenario}: no span was exported")
    if not cell.spans:
        cell.spans = spans
    elif spans != cell.spans:
        raise AssertionError(f"{arm} {scenario}: spans changed: {cell.spans} -> {spans}")
    signatures = sample["signatures"]
    if len(signatures) != 1:
        raise AssertionError(f"{arm} {scenario}: sessions of one sample differ: {signatures}")
    reference = results.reference.get(scenario)
    if reference is None:
        if arm != "untraced":
            raise AssertionError("the untraced arm must run first")
        results.reference[scenario] = {"signature": signatures[0], "kinds": sample["kinds"]}
    elif tuple(signatures[0]) != tuple(reference["signature"]):
        raise AssertionError(
            f"{arm} {scenario}: the caller saw different events than untraced: "
            + _difference(reference["kinds"], sample["kinds"])
        )


def _difference(expected: list[str], seen: list[str]) -> str:
    import difflib
    from collections import Counter

    missing = Counter(expected) - Counter(seen)
    extra = Counter(seen) - Counter(expected)
    if missing or extra:
        return f"missing {dict(missing)}, extra {dict(extra)}"
    ordered = [k for k in expected if k not in conversations.UNORDERED]
    mine = [k for k in seen if k not in conversations.UNORDERED]
    diff = list(difflib.unified_diff(ordered, mine, lineterm="", n=1))
    return "order differs:\n" + "\n".join(diff[:20])


def _accumulate(
    totals: dict[tuple[str, str], dict[str, Any]],
    arm: str,
    scenario: str,
    sample: dict[str, Any],
    server: int,
) -> None:
    """Add one sample (one session) to the repeat's running totals of that cell."""
    (session,) = sample["sessions"]
    total = totals.setdefault(
        (arm, scenario),
        {"wall_ns": 0, "cpu_ns": 0, "server": 0, "callbacks": 0, "longest": None, "cpu": 0},
    )
    total["wall_ns"] += sample["wall_ns"]
    total["cpu_ns"] += sample["cpu_ns"]
    total["server"] += server
    total["callbacks"] += session["callbacks"]
    longest = total["longest"]
    if longest is None or session["longest_callback_ns"] > longest["longest_callback_ns"]:
        total["longest"] = session
    total["cpu"] = max(total["cpu"], session["longest_callback_cpu_ns"])


def _record(results: Results, arm: str, scenario: str, total: dict[str, Any]) -> None:
    cell = results.cell(arm, scenario)
    cell.wall_ns.append(total["wall_ns"])
    cell.cpu_ns.append(total["cpu_ns"])
    cell.longest_callback_ns.append(total["longest"]["longest_callback_ns"])
    cell.longest_callback_cpu_ns.append(total["cpu"])
    cell.longest_callbacks.append(total["longest"]["longest_callback"])
    cell.callbacks.append(total["callbacks"])
    cell.server_cpu_ns.append(total["server"])


def _sample(harness: Harness, arm: str, scenario: conversations.Conversation, **extra: Any) -> Any:
    """One session of ``scenario`` in ``arm``; the sample and the server's CPU meanwhile."""
    before = harness.server_status()["cpu_ns"]
    sample = harness.workers[arm].ask(("run", scenario.name, 1, extra.get("attribute", False)))
    after = harness.server_status()["cpu_ns"]
    return sample, after - before


def run(
    plan: Plan,
    *,
    seed: int,
    pin: bool = False,
    gc_off: bool = True,
    profile: bool = False,
    aa: bool = False,
    progress: Any = print,
) -> Results:
    """Run the whole transport benchmark; ``progress`` gets a line per repeat."""
    arm_names = arms.available_arms(aa=aa)
    scenarios = conversations.all_conversations()
    results = Results(arm_names, scenarios)
    rng = random.Random(seed)
    started = time.perf_counter()
    results.load_before = load()
    with Harness(arm_names, [s.name for s in scenarios], pin=pin, gc_off=gc_off) as harness:
        for repeat in range(plan.repeats):
            if repeat % plan.respawn_every == 0:
                harness.respawn(rng)
                for _ in range(plan.warmup):
                    for scenario in scenarios:
                        if scenario.name == "audio-heavy":
                            continue  # audio-light runs the same code
                        for arm in arm_names:
                            _sample(harness, arm, scenario)
            slots = [scenario for scenario in scenarios for _ in range(scenario.rounds)]
            rng.shuffle(slots)
            totals: dict[tuple[str, str], dict[str, Any]] = {}
            for scenario in slots:
                # untraced first once, so the events every arm must match are known
                arm_order = list(arm_names)
                rng.shuffle(arm_order)
                if scenario.name not in results.reference:
                    arm_order.remove("untraced")
                    arm_order.insert(0, "untraced")
                results.orders.append(f"{scenario.name}: {' '.join(arm_order)}")
                for arm in arm_order:
                    sample, server = _sample(harness, arm, scenario)
                    _check(results, arm, scenario.name, sample)
                    _accumulate(totals, arm, scenario.name, sample, server)
            for (arm, name), total in totals.items():
                _record(results, arm, name, total)
            progress(
                f"  repeat {repeat + 1}/{plan.repeats} done, load {'/'.join(map(str, load()))}"
            )
        results.facts = harness.facts
        results.facts["generations"] = harness.generations
        for scenario in scenarios:
            for arm in arm_names:
                for _ in range(plan.attribution_sessions):
                    sample, _server = _sample(harness, arm, scenario, attribute=True)
                    _check(results, arm, scenario.name, sample)
                    results.cell(arm, scenario.name).attribution.extend(sample["sessions"])
        if profile:
            for arm in arm_names:
                results.profiles[arm] = {
                    scenario.name: harness.workers[arm].ask(
                        ("profile", scenario.name, scenario.rounds, 15)
                    )
                    for scenario in scenarios
                    if scenario.name != "audio-light"
                }
    results.load_after = load()
    results.elapsed_s = time.perf_counter() - started
    return results


# -- the report ---------------------------------------------------------------------------

COLUMN = 19


def _ratio_text(values: Sequence[float]) -> str:
    s = summary(values)
    return f"{s['median']:.3f} ({s['q1']:.2f}-{s['q3']:.2f})"


def _row(label: str, cells: Sequence[str]) -> str:
    return f"  {label:<24}" + "".join(f"{cell:>{COLUMN}}" for cell in cells)


def _attribution(results: Results, arm: str, scenario: str, key: str) -> float | None:
    sessions = results.cell(arm, scenario).attribution
    if not sessions:
        return None
    return max(session[key] for session in sessions) / 1e6


@dataclass
class Target:
    """One target: what was measured, against what; ``met`` is None when not measured."""

    name: str
    measured: str
    target: str
    met: bool | None


def report(results: Results, out: Any) -> list[Target]:
    """Print the side-by-side table and the notes; return the targets."""
    columns = [*arms.ARMS, *([arms.AA] if arms.AA in results.arms else [])]
    present = set(results.arms)
    out(_row("", columns))
    for scenario in results.scenarios:
        name = scenario.name
        base_cpu = summary(results.per_session("untraced", name, "cpu_ns"))
        base_wall = summary(results.per_session("untraced", name, "wall_ns"))
        cpu_cells, wall_cells = [], []
        for arm in columns:
            if arm not in present:
                cpu_cells.append("n/a")
                wall_cells.append("n/a")
            elif arm == "untraced":
                cpu_cells.append(f"{base_cpu['median']:.1f} ms")
                wall_cells.append(f"{base_wall['median']:.1f} ms")
            else:
                cpu_cells.append(_ratio_text(results.ratios(arm, name)))
                wall_cells.append(_ratio_text(results.ratios(arm, name, "wall_ns")))
        out(_row(f"{name} cpu", cpu_cells))
        out(_row(f"{'':>{len(name)}} wall", wall_cells))
    slope_cells = []
    for arm in columns:
        if arm not in present:
            slope_cells.append("n/a")
            continue
        s = summary(results.slope_ns(arm))
        if arm == "untraced":
            slope_cells.append(f"{s['median'] / 1000:.1f} us")
        else:
            slope_cells.append(f"{s['median']:+.0f} [{s['ci_low']:+.0f},{s['ci_high']:+.0f}]")
    out(_row("per audio delta, ns cpu", slope_cells))
    for name in ("audio-heavy", "lifecycle"):
        cells = []
        for arm in columns:
            if arm not in present:
                cells.append("n/a")
                continue
            walls = results.cell(arm, name).longest_callback_ns
            cpus = results.cell(arm, name).longest_callback_cpu_ns
            cells.append(
                f"{statistics.median(walls) / 1e6:.1f} / {statistics.median(cpus) / 1e6:.1f} ms"
            )
        out(_row(f"longest callback {name[:5]}", cells))
    for name in ("audio-heavy", "lifecycle"):
        cells = []
        for arm in columns:
            if arm not in present:
                cells.append("n/a")
                continue
            cpu = _attribution(results, arm, name, "longest_tracing_call_cpu_ns")
            wall = _attribution(results, arm, name, "longest_tracing_call_ns")
            if arm == "untraced" or cpu is None or wall is None:
                cells.append("-")
            else:
                cells.append(f"{wall:.2f} / {cpu:.2f} ms")
        out(_row(f"longest tracing call {name[:5]}", cells))
    for name in ("audio-heavy", "lifecycle"):
        cells = []
        for arm in columns:
            if arm not in present:
                cells.append("n/a")
                continue
            sessions = results.cell(arm, name).attribution
            if arm == "untraced" or not sessions:
                cells.append("-")
                continue
            total = statistics.median(s["tracing_ns"] for s in sessions) / 1e6
            cells.append(f"{total:.1f} ms")
        out(_row(f"tracing calls, cpu {name[:5]}", cells))
    span_cells = []
    for arm in columns:
        if arm not in present:
            span_cells.append("n/a")
            continue
        counts = [
            sum(results.cell(arm, name).spans.values()) for name in ("audio-heavy", "lifecycle")
        ]
        span_cells.append(" / ".join(f"{count:.0f}" for count in counts))
    out(_row("spans per session h / l", span_cells))
    server_cells = []
    for arm in columns:
        if arm not in present:
            server_cells.append("n/a")
            continue
        server = statistics.median(results.per_session(arm, "audio-heavy", "server_cpu_ns"))
        server_cells.append(f"{server:.0f} ms")
    out(_row("server cpu, audio-heavy", server_cells))
    return _targets(results)


def _targets(results: Results) -> list[Target]:
    targets: list[Target] = []
    present = set(results.arms)

    def ratio(arm: str, scenario: str) -> dict[str, float]:
        return summary(results.ratios(arm, scenario))

    for scenario, bound in (("audio-heavy", RS_AUDIO_TARGET), ("lifecycle", RS_LIFECYCLE_TARGET)):
        s = ratio("realtime-spans", scenario)
        targets.append(
            Target(
                f"real transport, realtime-spans {scenario} (cpu ratio)",
                f"{s['median']:.3f}",
                f"<= {bound}",
                s["median"] <= bound,
            )
        )
    slope = summary(results.slope_ns("realtime-spans"))
    base = summary(results.slope_ns("untraced"))
    targets.append(
        Target(
            "real transport, realtime-spans per audio delta (slope, 95% CI of the median)",
            f"{slope['median']:+.0f} ns [{slope['ci_low']:+.0f}, {slope['ci_high']:+.0f}] "
            f"of {base['median'] / 1000:.1f} us",
            "within noise of 0 (CI holds 0)",
            slope["ci_low"] <= 0 <= slope["ci_high"],
        )
    )
    if "rs+audio" in present:
        s = ratio("rs+audio", "audio-heavy")
        targets.append(
            Target(
                "real transport, include_audio=True audio-heavy (cpu ratio)",
                f"{s['median']:.3f}",
                f"<= {RS_WITH_AUDIO_TARGET}",
                s["median"] <= RS_WITH_AUDIO_TARGET,
            )
        )
    else:
        targets.append(
            Target(
                "real transport, include_audio=True audio-heavy (cpu ratio)",
                "n/a (this realtime-spans has no include_audio option)",
                f"<= {RS_WITH_AUDIO_TARGET}",
                None,
            )
        )
    for arm in OURS:
        if arm not in present:
            continue
        longest = max(
            (
                _attribution(results, arm, s.name, "longest_tracing_call_cpu_ns") or 0.0
                for s in results.scenarios
            ),
            default=0.0,
        )
        targets.append(
            Target(
                f"real transport, {arm}: longest tracing call (cpu)",
                f"{longest:.3f} ms",
                f"<= {STALL_TARGET_MS} ms",
                longest <= STALL_TARGET_MS,
            )
        )
    ours = [arm for arm in OURS if arm in present]
    peers = [arm for arm in PEERS if arm in present]
    for scenario in results.scenarios:
        worst_ours = max(ours, key=lambda arm: ratio(arm, scenario.name)["q3"])
        best_peer = min(peers, key=lambda arm: ratio(arm, scenario.name)["q1"])
        high = ratio(worst_ours, scenario.name)["q3"]
        low = ratio(best_peer, scenario.name)["q1"]
        targets.append(
            Target(
                f"real transport, {scenario.name}: every realtime-spans arm below every peer",
                f"{worst_ours} q3 {high:.3f} vs {best_peer} q1 {low:.3f}",
                "IQRs apart",
                high < low,
            )
        )
    return targets


def notes(results: Results, out: Any) -> None:
    """The method, the scenarios, what the arms are, and the longest callbacks' owners."""
    out("  rows: cpu = median of per-repeat ratios arm/untraced of the client process's CPU")
    out("  time (all its threads), (IQR); wall = the same for wall time (diluted: the server")
    out("  shares a core with the client whenever another job holds the other one);")
    out("  untraced column: ms per session. per audio delta: slope between audio-heavy and")
    out("  audio-light (added cpu per delta, ns, [95% CI of the median]); untraced column: the")
    out("  session's own cpu per delta. longest callback: median over repeats of the session's")
    out("  longest event-loop callback, wall / thread cpu. longest tracing call: the longest")
    out("  single call into the tracer (separate pass, wall / cpu), max over sessions;")
    out("  tracing calls, cpu: their total per session (the loop thread's cpu time).")
    for scenario in results.scenarios:
        out(f"  {scenario.name}: {scenario.summary()}")
    for arm in results.arms:
        facts = results.facts.get(arm) or {}
        extra = f" {facts}" if facts else ""
        out(f"  {arm}: {arms.DESCRIPTIONS[arm]}{extra}")
    if "rs+audio" not in results.arms:
        out("  rs+audio: n/a (realtime-spans' Options has no include_audio field yet)")
    longest_calls = []
    for arm in results.arms:
        sessions = [
            (session["longest_tracing_call_cpu_ns"], session["longest_tracing_call"], scenario.name)
            for scenario in results.scenarios
            for session in results.cell(arm, scenario.name).attribution
        ]
        if sessions and arm not in ("untraced", arms.AA):
            cpu, name, scenario_name = max(sessions)
            longest_calls.append(f"{arm}: {name} ({cpu / 1e6:.2f} ms, {scenario_name})")
    out("  longest tracing calls: " + "; ".join(longest_calls))
    owners: dict[str, set[str]] = {}
    for (arm, _scenario), cell in results.cells.items():
        owners.setdefault(arm, set()).update(cell.longest_callbacks)
    out(
        "  longest callbacks ran: "
        + "; ".join(f"{a}: {', '.join(sorted(o))}" for a, o in owners.items())
    )


def entry_points(results: Results, out: Any, *, top: int = 5) -> None:
    """Where each tracer's time on the loop goes: its tracing calls by entry point
    (attribution pass, wall time, ms per session, and calls per session)."""
    for arm in results.arms:
        if arm in ("untraced", arms.AA):
            continue
        for scenario in ("audio-heavy", "lifecycle"):
            sessions = results.cell(arm, scenario).attribution
            if not sessions:
                continue
            totals: dict[str, list[float]] = {}
            for session in sessions:
                for name, (calls, ns) in session["by_call"].items():
                    entry = totals.setdefault(name, [0.0, 0.0])
                    entry[0] += calls / len(sessions)
                    entry[1] += ns / 1e6 / len(sessions)
            ranked = sorted(totals.items(), key=lambda item: -item[1][1])[:top]
            text = ", ".join(
                f"{name.rsplit('.', 2)[-2]}.{name.rsplit('.', 1)[-1]} {ms:.2f} ms ({calls:,.0f})"
                for name, (calls, ms) in ranked
            )
            out(f"  {arm} {scenario}: {text}")


#: Profile areas that belong to a tracer or its pipeline (the rest is the session's own).
TRACER_AREAS = (
    "realtime-spans",
    "OpenInference",
    "OpenLLMetry",
    "OpenTelemetry SDK",
    "SDK tracing",
    "wave (WAV encoding)",
    "base64",
)


def profile_report(results: Results, out: Any) -> None:
    """Where the time goes under ``cProfile``, per arm: own time in the tracers' areas and
    the arm's top functions (ms per session; cProfile inflates small calls)."""
    for arm, scenarios in results.profiles.items():
        for scenario, profile in scenarios.items():
            areas = ", ".join(
                f"{area} {profile['areas'].get(area, 0.0):.1f}"
                for area in TRACER_AREAS
                if profile["areas"].get(area, 0.0) >= 0.05
            )
            out(
                f"  {arm} {scenario}: {profile['total_ms']:.1f} ms profiled per session; "
                f"tracer areas (ms): {areas or 'none'}"
            )
            for own, calls, where in profile["top"][:6]:
                out(f"    {own:8.2f} ms {calls:9.0f} calls  {where}")
