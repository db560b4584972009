"""The core alone: how many events per second ``SpanMachine.feed`` consumes.

The event mix is the real one: the core events a traced audio-heavy session actually fed
to its machine (recorded by :func:`bench_fastpath.count_calls`), session start to close. Each
repeat replays that log into fresh machines (made outside the timed region: machine
construction is reported on its own, per session) and times only the ``feed`` calls.
Many short slices rather than a few long ones: on a shared machine the median of short
slices is what the core does when it has a core to itself, and the spread shows the rest.
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench_measure import Summary

from realtime_spans.core import Event, SpanMachine


@dataclass
class CoreRate:
    """Events per second fed, per repeat, and the cost of making a machine."""

    events_per_log: int
    logs_per_repeat: int
    rates: list[float] = field(default_factory=list)  # one per slice of logs_per_repeat logs
    construct_us: list[float] = field(default_factory=list)
    mix: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Raw numbers and summaries for the JSON results."""
        return {
            "events_per_log": self.events_per_log,
            "logs_per_repeat": self.logs_per_repeat,
            "event_mix": self.mix,
            "events_per_second": self.rates,
            "events_per_second_summary": Summary.of(self.rates).as_dict(),
            "events_per_second_best_slice": max(self.rates),
            "machine_construction_us": Summary.of(self.construct_us).as_dict(),
        }


def feed_rate(log: Sequence[Event], *, repeats: int, logs_per_repeat: int) -> CoreRate:
    """Replay ``log`` into ``logs_per_repeat`` fresh machines, ``repeats`` times."""
    result = CoreRate(len(log), logs_per_repeat, mix=dict(Counter(type(e).__name__ for e in log)))
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter_ns()
            machines = [SpanMachine() for _ in range(logs_per_repeat)]
            made = time.perf_counter_ns()
            for machine in machines:
                feed = machine.feed
                for event in log:
                    feed(event)
            done = time.perf_counter_ns()
        finally:
            gc.enable()
        result.construct_us.append((made - start) / 1e3 / logs_per_repeat)
        result.rates.append(len(log) * logs_per_repeat / ((done - made) / 1e9))
    return result
