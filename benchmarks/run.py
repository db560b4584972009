"""Overhead benchmark: what tracing costs a realtime session (``nox -s bench``).

Two views, printed in this order:

1. **The real transport** (:mod:`bench_transport`): ``RealtimeSession`` on the SDK's
   ``OpenAIRealtimeWebSocketModel`` against the local Realtime server of
   ``tests/realtime_server`` in a process of its own, with every tracer side by side
   (untraced, realtime-spans, realtime-spans with ``include_audio`` when it exists,
   OpenInference's and OpenLLMetry's own realtime instrumentation, and OpenInference's
   processor rendering realtime-spans' spans), one worker process per arm; CPU and wall
   ratios, the added cost per audio delta, event-loop stalls, spans exported.
2. **Scripted sessions**: the same conversations on the SDK's ``ScriptedRealtimeModel``
   traced and untraced interleaved in one process, with the floor arm, the core's feed
   rate, memory per idle traced session and audio memory growth, and how far audio
   events get into the tap.

Raw numbers go to ``benchmarks/results/`` as JSON.

Usage::

    python benchmarks/run.py                   # both views (about a quarter of an hour)
    python benchmarks/run.py --quick           # a few minutes, fewer repeats
    python benchmarks/run.py --transport-only  # or --scripted-only
    python benchmarks/run.py --check           # exit 1 when a target is missed
    python benchmarks/run.py --profile         # add where-the-time-goes views
    python benchmarks/run.py --no-aa           # without the A/A arm (the noise floor)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import agents
import bench_core as core_rate
import bench_fastpath as fastpath
import bench_measure as measure
import bench_memory as memory
import bench_profile as profiling
import bench_scenarios as scenarios
import bench_transport as transport

RESULTS = Path(__file__).resolve().parent / "results"

AUDIO_RATIO_TARGET = 1.05
LIFECYCLE_RATIO_TARGET = 1.30
CORE_RATE_TARGET = 200_000
#: Audio must not accumulate: traced retention per delta at most this above untraced.
AUDIO_GROWTH_TOLERANCE_BYTES = 1.0


@dataclass(frozen=True)
class Plan:
    """How much of everything to run."""

    audio_pairs: int
    lifecycle_pairs: int
    warmup: int
    core_repeats: int
    core_logs: int
    idle_sessions: int
    cost_rounds: int

    @classmethod
    def for_args(cls, args: argparse.Namespace) -> Plan:
        """The quick or the full plan, with ``--repeats`` scaling the timed pairs."""
        plan = cls(6, 10, 1, 15, 40, 50, 8) if args.quick else cls(40, 80, 2, 60, 40, 200, 15)
        if args.repeats:
            plan = cls(args.repeats, args.repeats * 2, *list(vars(plan).values())[2:])
        return plan


@dataclass
class Check:
    """One target: what was measured, against what, met or not."""

    name: str
    measured: str
    target: str
    met: bool | None  # None: not measured here (n/a)


@dataclass
class Report:
    """Everything measured, for the table, the summary line and the JSON file."""

    checks: list[Check] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def out(self, line: str = "") -> None:
        """Print a line now (progress matters on a slow machine) and keep it."""
        print(line, flush=True)
        self.lines.append(line)


def _ms(summary: measure.Summary) -> str:
    return f"{summary.median:8.2f} [{summary.q1:.2f}-{summary.q3:.2f}]"


def _ratio(summary: measure.Summary) -> str:
    return f"{summary.median:.3f} [{summary.q1:.3f}-{summary.q3:.3f}]"


def _load(values: list[float]) -> str:
    return "/".join(f"{value:.2f}" for value in values)


async def _timed_scenarios(plan: Plan, args: argparse.Namespace, report: Report) -> None:
    rng = random.Random(args.seed)
    gc_off = args.gc == "off"
    wanted = [
        (scenarios.audio_heavy(raw_server_events=not args.normalized_only), plan.audio_pairs),
        (scenarios.lifecycle_heavy(), plan.lifecycle_pairs),
    ]
    targets = {"audio-heavy": AUDIO_RATIO_TARGET, "lifecycle-heavy": LIFECYCLE_RATIO_TARGET}
    report.out(
        f"{'scenario':<16} {'ev/session':>10} {'untraced ms [IQR]':>24} {'traced ms [IQR]':>24}"
        f" {'extra ms':>8} {'ratio median [IQR]':>22} {'cpu ratio':>9} {'min/min':>7}"
        f" {'target':>7} {'floor ratio [IQR]':>22} {'load 1/5/15 before -> after':>30}"
    )
    for scenario, pairs in wanted:
        runs = await measure.interleaved(
            scenario, repeats=pairs, warmup=plan.warmup, rng=rng, gc_off=gc_off, floor=True
        )
        floor = measure.Summary.of(runs.floor_ratios())
        wall = measure.Summary.of(runs.wall_ratios())
        cpu = measure.Summary.of(runs.cpu_ratios())
        target = targets[scenario.name]
        met = wall.median <= target
        report.out(
            f"{scenario.name:<16} {runs.events_per_session:>10,}"
            f" {_ms(runs.per_session_ms(runs.untraced_wall)):>24}"
            f" {_ms(runs.per_session_ms(runs.traced_wall)):>24}"
            f" {measure.Summary.of(runs.extra_ms()).median:>8.2f}"
            f" {_ratio(wall):>22} {cpu.median:>9.3f}"
            f" {min(runs.traced_wall) / min(runs.untraced_wall):>7.3f} {'<=' + str(target):>7}"
            f" {_ratio(floor):>22}"
            f" {_load(runs.load_before) + ' -> ' + _load(runs.load_after):>30}"
        )
        report.data[scenario.name] = runs.as_dict()
        report.data[scenario.name]["description"] = _describe(scenario)
        report.checks.append(
            Check(f"{scenario.name} traced/untraced", f"{wall.median:.3f}", f"<= {target}", met)
        )
    report.out(f"  ({plan.audio_pairs}/{plan.lifecycle_pairs} interleaved repeats; ratio = median")
    report.out("   of per-repeat traced/untraced wall time; IQR in brackets; ms per session)")
    report.out("  floor ratio: the same spans made straight through the SDK at the same moments,")
    report.out("  with no bookkeeping at all (bench_floor.py), run as a third arm of each repeat:")
    report.out("  what any tracer emitting these spans through the SDK pays before doing anything")


def _describe(scenario: scenarios.Scenario) -> str:
    shape = "raw server event + normalized event per message" if scenario.raw_server_events else ""
    return (
        f"{scenario.turns} turns x {scenario.audio_per_turn} audio deltas, "
        f"{scenario.tool_calls} tool calls, {scenario.handoffs} handoffs, "
        f"{scenario.sessions_per_sample} session(s) per sample; {shape}"
    ).rstrip("; ")


async def _fast_path(plan: Plan, report: Report) -> list[Any]:
    report.out()
    report.out("fast path (item 2): how far each kind of session event gets, one traced")
    report.out("audio-heavy session; 'tap' = reached SessionTap.handle (a converter ran)")
    counts = await fastpath.count_calls(scenarios.audio_heavy())
    report.out(f"  {'session event':<36} {'queued':>8} {'tap':>8}")
    for kind, put, handled in counts.rows():
        report.out(f"  {kind:<36} {put:>8,} {handled:>8,}")
    fed = sum(counts.fed.values())
    report.out(
        f"  core events fed (SpanMachine.feed): {fed} in all: "
        + ", ".join(f"{name} {n}" for name, n in counts.fed.most_common())
    )
    audio_kinds = ("audio", "raw_model_event(audio)", "audio_end", "raw_model_event(audio_done)")
    audio_in_tap = sum(counts.handled[kind] for kind in audio_kinds)
    raw_in_tap = counts.handled["raw_model_event(raw_server_event)"]
    report.checks.append(
        Check("audio events reaching the tap's handle()", f"{audio_in_tap}", "0", audio_in_tap == 0)
    )
    report.checks.append(
        Check(
            "raw server events reaching handle() (correlation off)",
            f"{raw_in_tap:,}",
            "0",
            raw_in_tap == 0,
        )
    )
    costs = await fastpath.per_event_cost(rounds=plan.cost_rounds)
    parse_us = fastpath.websocket_parse_cost()
    report.out("  tap cost per event (_put_event_nowait, best of runs, ns):")
    for cost in costs:
        report.out(
            f"    {cost.kind:<36} untraced {cost.untraced_ns:6.0f}  traced {cost.traced_ns:6.0f}"
            f"  extra {cost.extra_ns:+5.0f}"
        )
    if parse_us is not None:
        report.out(
            f"  for scale: the OpenAI WebSocket model spends {parse_us:.1f} us parsing each audio "
            "delta message (json, pydantic, base64),"
        )
        report.out("  work the scripted model skips: real sessions are slower per delta than these")
    report.data["fast_path"] = counts.as_dict()
    report.data["fast_path"]["websocket_parse_us_per_audio_delta"] = parse_us
    report.data["fast_path"]["per_event_ns"] = [
        {"kind": c.kind, "untraced": c.untraced_ns, "traced": c.traced_ns} for c in costs
    ]
    return counts.core_events


def _core(plan: Plan, log: list[Any], report: Report) -> None:
    rate = core_rate.feed_rate(log, repeats=plan.core_repeats, logs_per_repeat=plan.core_logs)
    summary = measure.Summary.of(rate.rates)
    met = summary.median >= CORE_RATE_TARGET
    construct = measure.Summary.of(rate.construct_us)
    report.out()
    report.out(
        f"core alone: SpanMachine.feed {summary.median:,.0f} events/s "
        f"[IQR {summary.q1:,.0f}-{summary.q3:,.0f}] (target >= {CORE_RATE_TARGET:,})"
    )
    report.out(
        f"  mix: the {rate.events_per_log} core events of one audio-heavy session, replayed into "
        f"{plan.core_logs} fresh machines x {plan.core_repeats}; "
        f"making a SpanMachine: {construct.median:.0f} us (not in the rate)"
    )
    report.out("  " + ", ".join(f"{name} {n}" for name, n in rate.mix.items()))
    report.data["core"] = rate.as_dict()
    report.checks.append(
        Check(
            "core feed rate (events/s)", f"{summary.median:,.0f}", f">= {CORE_RATE_TARGET:,}", met
        )
    )


async def _memory(plan: Plan, processor: Any, report: Report) -> None:
    flush = processor.force_flush
    idle = await memory.idle_per_session(plan.idle_sessions, flush=flush)
    growth = await memory.audio_growth(flush=flush)
    traced_growth = growth.growth_per_delta(growth.traced)
    untraced_growth = growth.growth_per_delta(growth.untraced)
    report.out()
    report.out(
        f"memory, idle entered session (tracemalloc, n={idle.sessions}): untraced "
        f"{idle.untraced_bytes / 1024:.1f} KiB, traced {idle.traced_bytes / 1024:.1f} KiB: "
        f"tracing adds {idle.extra_bytes / 1024:.1f} KiB per session"
    )
    traced_kib = (growth.traced[1] - growth.traced[0]) / 1024
    untraced_kib = (growth.untraced[1] - growth.untraced[0]) / 1024
    report.out(
        f"memory vs audio (one open turn, {growth.first:,} -> {growth.last:,} deltas): "
        f"traced {traced_kib:+.1f} KiB ({traced_growth:+.2f} B/delta), "
        f"untraced {untraced_kib:+.1f} KiB ({untraced_growth:+.2f} B/delta)"
    )
    report.data["memory"] = {
        "idle_sessions": idle.sessions,
        "idle_untraced_bytes_per_session": idle.untraced_bytes,
        "idle_traced_bytes_per_session": idle.traced_bytes,
        "idle_extra_bytes_per_session": idle.extra_bytes,
        "audio_growth": growth.as_dict(),
    }
    long = await memory.long_session_peaks(flush=flush)
    report.out(
        f"memory, a {long.minutes:.0f}-minute session ({long.turn_seconds:.0f} s turns each way, "
        "peak, tracemalloc): "
        + ", ".join(f"{name} {peak / 2**20:.1f} MiB" for name, peak in long.peaks.items())
    )
    report.data["memory"]["long_session_peaks"] = long.as_dict()
    met = traced_growth - untraced_growth <= AUDIO_GROWTH_TOLERANCE_BYTES
    report.checks.append(
        Check(
            "traced memory growth per audio delta (vs untraced)",
            f"{traced_growth - untraced_growth:+.2f} B",
            f"<= {AUDIO_GROWTH_TOLERANCE_BYTES:.0f} B",
            met,
        )
    )


async def _profile(report: Report, *, quick: bool) -> None:
    report.out()
    report.out("where the time goes, 1: time inside the library's entry points (inclusive:")
    report.out("tap.handle includes core.feed and the sink; sink.StartSpan/EndSpan include the")
    report.out("SDK's span objects and the BatchTraceProcessor), us per traced session")
    sessions = {"audio-heavy": 1 if quick else 3, "lifecycle-heavy": 20 if quick else 60}
    for scenario in (scenarios.audio_heavy(), scenarios.lifecycle_heavy()):
        account = await profiling.account(scenario, sessions=sessions[scenario.name])
        report.out(f"  {scenario.name}:")
        for label, micros in account.micros.items():
            calls = account.calls[label]
            report.out(
                f"    {label:<28} {micros:9.1f} us  {calls:7.1f} calls  "
                f"{micros / calls:7.2f} us/call"
            )
        report.data.setdefault("profile_account", {})[scenario.name] = account.as_dict()
    report.out()
    report.out("where the time goes, 2: differential cProfile, own time of functions called")
    report.out("more often when traced, ms per session (cProfile inflates small calls: shares)")
    for scenario in (scenarios.audio_heavy(), scenarios.lifecycle_heavy()):
        diff = await profiling.profile_diff(scenario, sessions=sessions[scenario.name], top=12)
        extra = diff.traced_ms - diff.untraced_ms
        report.out(
            f"  {scenario.name}: profiled {diff.untraced_ms:.1f} -> {diff.traced_ms:.1f} ms "
            f"per session ({extra:+.1f})"
        )
        for group, ms in diff.groups.items():
            if abs(ms) >= 0.01:
                report.out(f"    {ms:+7.3f}  {group}")
        report.out(
            f"    {diff.residual_ms:+7.3f}  residual (functions called as often in both arms)"
        )
        report.out("    top functions:")
        for name, ms, calls in diff.functions:
            report.out(f"    {ms:+7.3f}  {calls:+8.0f} calls  {name}")
        report.data.setdefault("profile", {})[scenario.name] = diff.as_dict()


def _percent(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f}%"


def _transport_summary(report: Report) -> str | None:
    data = report.data.get("transport")
    if not data:
        return None
    cells = data["cells"]
    parts = []
    for arm in ("realtime-spans", "rs+audio", "rs+phoenix", "openinference", "openllmetry"):
        heavy = cells.get(f"{arm} | audio-heavy", {}).get("cpu_ratio")
        life = cells.get(f"{arm} | lifecycle", {}).get("cpu_ratio")
        if heavy and life:
            parts.append(
                f"{arm} {_percent(heavy['median'])} audio-heavy, {_percent(life['median'])} "
                "lifecycle"
            )
    return (
        "Over the real WebSocket transport (client CPU per session, vs untraced, medians of "
        f"{len(cells['untraced | audio-heavy']['cpu_ns'])} interleaved repeats): "
        + "; ".join(parts)
        + "."
    )


def _summary_line(report: Report) -> str:
    audio = report.data.get("audio-heavy", {}).get("wall_ratio", {}).get("median")
    life = report.data.get("lifecycle-heavy", {}).get("wall_ratio", {}).get("median")
    core = report.data.get("core", {}).get("events_per_second_summary", {}).get("median")
    mem = report.data.get("memory", {})
    parts = []
    if audio is not None:
        parts.append(f"{_percent(audio)} on an audio-heavy session")
    if life is not None:
        parts.append(f"{_percent(life)} on a lifecycle-only session")
    if core is not None:
        parts.append(f"core {core / 1000:,.0f}k events/s")
    if mem:
        growth = mem["audio_growth"]["traced_growth_per_delta"]
        parts.append(
            f"{mem['idle_extra_bytes_per_session'] / 1024:.1f} KiB per idle traced session, "
            f"{growth:+.1f} B per audio delta"
        )
    lines = []
    transport_line = _transport_summary(report)
    if transport_line:
        lines.append(transport_line)
    if parts:
        lines.append(
            "Scripted sessions: "
            + "; ".join(parts)
            + " (SDK BatchTraceProcessor with a dropping exporter)."
        )
    lines.append(f"openai-agents {agents.__version__}, load {_load(measure.load())}.")
    return " ".join(lines)


def _transport(args: argparse.Namespace, report: Report) -> None:
    """The first view: every tracer side by side over the real WebSocket transport."""
    plan = transport.Plan.for_args(args.quick, args.transport_repeats, args.respawn_every)
    report.out(
        "1. the real transport: RealtimeSession on OpenAIRealtimeWebSocketModel, the local "
        "Realtime server (tests/realtime_server) in its own process; one worker process per "
        f"arm, one sample at a time, arms and scenarios shuffled per repeat (seed {args.seed}); "
        f"{plan.repeats} repeats, fresh worker processes every {plan.respawn_every} repeat(s), "
        f"each warmed up with one sample of every scenario but audio-heavy, gc "
        f"{'paused in timed regions' if args.gc == 'off' else 'on'}, "
        f"{'server and client workers pinned to separate cores' if args.pin else 'not pinned'}"
    )
    results = transport.run(
        plan,
        seed=args.seed,
        pin=args.pin,
        gc_off=args.gc == "off",
        profile=args.profile,
        aa=args.aa,
        progress=report.out,
    )
    report.out()
    targets = transport.report(results, report.out)
    report.out()
    transport.notes(results, report.out)
    report.out(
        f"  load 1/5/15 before -> after: {_load(results.load_before)} -> "
        f"{_load(results.load_after)}; {results.elapsed_s:.0f} s"
    )
    report.out()
    report.out("where each tracer's time on the event loop goes: its tracing calls by entry")
    report.out("point (attribution pass, cpu ms per session, calls per session in brackets):")
    transport.entry_points(results, report.out)
    if results.profiles:
        report.out()
        report.out("where the time goes under cProfile (own time, ms per session; the tracers'")
        report.out("areas, then each arm's top functions; cProfile inflates small calls):")
        transport.profile_report(results, report.out)
    for target in targets:
        report.checks.append(Check(target.name, target.measured, target.target, target.met))
    report.data["transport"] = results.as_dict()
    report.data["transport"]["targets"] = [vars(target) for target in targets]


async def _scripted(args: argparse.Namespace, report: Report) -> None:
    """The second view: the scripted sessions, the floor, the core, memory, the fast path."""
    plan = Plan.for_args(args)
    processor, exporter = measure.install_processor()
    sections = set(args.only.split(",")) if args.only else {"timing", "fastpath", "core", "memory"}
    report.out(
        "2. scripted sessions (the SDK's ScriptedRealtimeModel, no socket, no JSON parsing): "
        "traced, untraced and the floor interleaved in random order, perf_counter_ns, "
        f"{plan.warmup} warm-up repeat(s); the SDK's BatchTraceProcessor with an exporter "
        "that drops every batch"
    )
    report.out()
    if "timing" in sections:
        await _timed_scenarios(plan, args, report)
    log: list[Any] = []
    if sections & {"fastpath", "core"}:
        log = await _fast_path(plan, report) if "fastpath" in sections else []
        if not log:
            log = (await fastpath.count_calls(scenarios.audio_heavy())).core_events
    if "core" in sections:
        _core(plan, log, report)
    if "memory" in sections:
        await _memory(plan, processor, report)
    if args.profile:
        await _profile(report, quick=args.quick)
    flush_processor: Callable[[], None] = processor.force_flush
    flush_processor()
    report.out()
    report.out(
        f"processor check: the dropping exporter received {exporter.items:,} traces and spans "
        f"in {exporter.batches:,} batches"
    )
    report.data["exported_items"] = exporter.items


def run_all(args: argparse.Namespace) -> Report:
    """Run the selected views and return the report."""
    report = Report()
    report.out(
        f"realtime-spans overhead benchmark: openai-agents {agents.__version__}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs ({platform.machine()}), "
        f"load {_load(measure.load())}"
    )
    report.out()
    started = time.perf_counter()
    if not args.scripted_only:
        _transport(args, report)
        report.out()
    if not args.transport_only:
        asyncio.run(_scripted(args, report))
    report.out()
    report.out("targets:")
    for check in report.checks:
        status = "n/a   " if check.met is None else "met   " if check.met else "MISSED"
        report.out(f"  {status} {check.name}: {check.measured} (target {check.target})")
    report.out()
    summary = _summary_line(report)
    report.out("summary: " + summary)
    report.data.update(
        {
            "summary": summary,
            "checks": [vars(check) for check in report.checks],
            "elapsed_s": time.perf_counter() - started,
            "load_end": measure.load(),
        }
    )
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats: under a minute")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--profile", action="store_true", help="add a differential cProfile")
    parser.add_argument("--repeats", type=int, default=0, help="interleaved pairs (audio-heavy)")
    parser.add_argument("--seed", type=int, default=20240611, help="order of arms per pair")
    parser.add_argument("--gc", choices=("off", "on"), default="off", help="gc in timed regions")
    parser.add_argument(
        "--only", default="", help="comma-separated sections: timing,fastpath,core,memory"
    )
    parser.add_argument(
        "--normalized-only",
        action="store_true",
        help="script only normalized model events (no raw server event per message)",
    )
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    view = parser.add_mutually_exclusive_group()
    view.add_argument(
        "--transport-only", action="store_true", help="only the real-transport comparison"
    )
    view.add_argument(
        "--scripted-only", action="store_true", help="only the scripted sessions (2nd view)"
    )
    parser.add_argument(
        "--transport-repeats", type=int, default=0, help="repeats of the transport comparison"
    )
    parser.add_argument(
        "--respawn-every",
        type=int,
        default=0,
        help="fresh worker processes every N transport repeats (default 1)",
    )
    parser.add_argument(
        "--no-aa",
        dest="aa",
        action="store_false",
        help="leave out the second untraced arm (the A/A noise floor of the run)",
    )
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not pin the server and the client workers to separate cores",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 1 when ``--check`` is given and a target is missed."""
    args = parse_args(argv)
    report = run_all(args)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = args.json or RESULTS / f"bench-{stamp}{'-quick' if args.quick else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    report.data.update(
        {
            "argv": sys.argv[1:],
            "openai_agents": agents.__version__,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "output": report.lines,
        }
    )
    path.write_text(json.dumps(report.data, indent=2, default=str) + "\n")
    print(f"results: {path}")
    missed = [check for check in report.checks if check.met is False]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
