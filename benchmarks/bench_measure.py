"""Interleaved traced/untraced timing, robust statistics and the tracing processor used.

Each repeat runs both arms back to back, in a random order (seeded), so that drift in the
machine's load hits both arms alike; the figure of merit is the median of the per-repeat
ratios traced/untraced, with its interquartile range. Wall time (``perf_counter_ns``) is the
primary measure; process CPU time (``process_time_ns``, all threads of this process,
including the tracing processor's export thread) is recorded beside it, because it is less
disturbed by other processes competing for the two cores.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import bench_scenarios as scenarios
from agents.tracing import Span, Trace, set_trace_processors
from agents.tracing.processor_interface import TracingExporter
from agents.tracing.processors import BatchTraceProcessor


class DroppingExporter(TracingExporter):
    """A ``TracingExporter`` that drops every batch, counting what it was given.

    Example:
        >>> exporter = DroppingExporter()
        >>> exporter.export([])
        >>> exporter.items
        0
    """

    def __init__(self) -> None:
        self.items = 0
        self.batches = 0

    def export(self, items: list[Trace | Span[Any]]) -> None:
        """Drop ``items``; only count them."""
        self.items += len(items)
        self.batches += 1


def install_processor() -> tuple[BatchTraceProcessor, DroppingExporter]:
    """Make the SDK's ``BatchTraceProcessor`` (dropping exporter) the only processor.

    This is the processor path the OpenAI traces dashboard uses (queue, lock, background
    export thread), minus the network.
    """
    exporter = DroppingExporter()
    processor = BatchTraceProcessor(exporter)
    set_trace_processors([processor])
    return processor, exporter


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(value, 2) for value in os.getloadavg()]


@dataclass
class Summary:
    """Robust summary of a sample: median, quartiles, min and max.

    Example:
        >>> Summary.of([1.0, 2.0, 3.0, 4.0, 5.0]).median
        3.0
    """

    n: int
    median: float
    q1: float
    q3: float
    min: float
    max: float

    @property
    def iqr(self) -> float:
        """Interquartile range."""
        return self.q3 - self.q1

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        """Summarize ``values`` (at least one)."""
        ordered = sorted(values)
        if len(ordered) >= 2:
            q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
        else:
            q1 = q3 = ordered[0]
        return cls(len(ordered), statistics.median(ordered), q1, q3, ordered[0], ordered[-1])

    def as_dict(self) -> dict[str, float]:
        """Plain numbers for the JSON results."""
        return {**asdict(self), "iqr": self.iqr}


@dataclass
class ArmRuns:
    """Raw measurements of one scenario: per repeat, each arm's wall and CPU nanoseconds."""

    scenario: str
    sessions_per_sample: int
    traced_wall: list[int] = field(default_factory=list)
    untraced_wall: list[int] = field(default_factory=list)
    traced_cpu: list[int] = field(default_factory=list)
    untraced_cpu: list[int] = field(default_factory=list)
    floor_wall: list[int] = field(default_factory=list)
    floor_cpu: list[int] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)
    events_per_session: int = 0
    load_before: list[float] = field(default_factory=list)
    load_after: list[float] = field(default_factory=list)

    def wall_ratios(self) -> list[float]:
        """Per-repeat traced/untraced wall-time ratios."""
        return [t / u for t, u in zip(self.traced_wall, self.untraced_wall, strict=True)]

    def floor_ratios(self) -> list[float]:
        """Per-repeat floor/untraced wall-time ratios (empty when the floor arm did not run)."""
        return [f / u for f, u in zip(self.floor_wall, self.untraced_wall, strict=True)]

    def extra_ms(self) -> list[float]:
        """Per-repeat traced minus untraced wall time, milliseconds per session."""
        return [
            (t - u) / 1e6 / self.sessions_per_sample
            for t, u in zip(self.traced_wall, self.untraced_wall, strict=True)
        ]

    def cpu_ratios(self) -> list[float]:
        """Per-repeat traced/untraced CPU-time ratios."""
        return [t / u for t, u in zip(self.traced_cpu, self.untraced_cpu, strict=True)]

    def per_session_ms(self, values: list[int]) -> Summary:
        """A list of sample times as milliseconds per session."""
        return Summary.of([value / 1e6 / self.sessions_per_sample for value in values])

    def as_dict(self) -> dict[str, Any]:
        """Raw numbers and their summaries, for the JSON results."""
        return {
            "scenario": self.scenario,
            "sessions_per_sample": self.sessions_per_sample,
            "events_per_session": self.events_per_session,
            "orders": self.orders,
            "raw_ns": {
                "traced_wall": self.traced_wall,
                "untraced_wall": self.untraced_wall,
                "traced_cpu": self.traced_cpu,
                "untraced_cpu": self.untraced_cpu,
                "floor_wall": self.floor_wall,
                "floor_cpu": self.floor_cpu,
            },
            "traced_ms_per_session": self.per_session_ms(self.traced_wall).as_dict(),
            "untraced_ms_per_session": self.per_session_ms(self.untraced_wall).as_dict(),
            "wall_ratio": Summary.of(self.wall_ratios()).as_dict(),
            "extra_ms_per_session": Summary.of(self.extra_ms()).as_dict(),
            "cpu_ratio": Summary.of(self.cpu_ratios()).as_dict(),
            "floor_ratio": Summary.of(self.floor_ratios()).as_dict() if self.floor_wall else None,
            "ratio_of_min_wall": min(self.traced_wall) / min(self.untraced_wall),
            "load_before": self.load_before,
            "load_after": self.load_after,
        }


#: The arms of a repeat: traced, untraced, and the floor (see ``bench_floor``).
TRACED, UNTRACED, FLOOR = "T", "U", "F"


async def _one_sample(
    scenario: scenarios.Scenario, *, arm: str, gc_off: bool
) -> tuple[int, int, int]:
    prepared = [await scenarios.prepare(scenario) for _ in range(scenario.sessions_per_sample)]
    gc.collect()
    if gc_off:
        gc.disable()
    try:
        cpu = time.process_time_ns()
        wall, seen = await scenarios.run_timed(prepared, trace=arm == TRACED, floor=arm == FLOOR)
        cpu = time.process_time_ns() - cpu
    finally:
        gc.enable()
    return wall, cpu, seen.events


async def interleaved(
    scenario: scenarios.Scenario,
    *,
    repeats: int,
    warmup: int,
    rng: random.Random,
    gc_off: bool = True,
    floor: bool = False,
) -> ArmRuns:
    """Time ``scenario`` traced and untraced, ``repeats`` pairs, in random order per pair.

    ``warmup`` pairs run first and are discarded (imports, the traced class, the processor's
    thread, the allocator's pools). With ``gc_off`` the collector is paused inside each timed
    region and run before it, so collections triggered by earlier samples do not land on a
    random arm. With ``floor`` each repeat also runs the floor arm (``bench_floor``), in the
    same shuffled order.
    """
    runs = ArmRuns(scenario.name, scenario.sessions_per_sample)
    runs.load_before = load()
    arms = [TRACED, UNTRACED, FLOOR] if floor else [TRACED, UNTRACED]
    for _ in range(warmup):
        for arm in arms:
            await _one_sample(scenario, arm=arm, gc_off=gc_off)
    counts: dict[str, int] = {}
    walls = {TRACED: runs.traced_wall, UNTRACED: runs.untraced_wall, FLOOR: runs.floor_wall}
    cpus = {TRACED: runs.traced_cpu, UNTRACED: runs.untraced_cpu, FLOOR: runs.floor_cpu}
    for _ in range(repeats):
        order = list(arms)
        rng.shuffle(order)
        runs.orders.append("".join(order))
        for arm in order:
            wall, cpu, events = await _one_sample(scenario, arm=arm, gc_off=gc_off)
            walls[arm].append(wall)
            cpus[arm].append(cpu)
            counts[arm] = events
        await asyncio.sleep(0)
    if len(set(counts.values())) != 1:
        raise AssertionError(f"{scenario.name}: the arms' users saw different events: {counts}")
    runs.events_per_session = counts[TRACED] // scenario.sessions_per_sample
    runs.load_after = load()
    return runs
