"""Memory: what an idle traced session costs, and proof that audio does not accumulate.

Measured with ``tracemalloc`` (Python allocations, all threads), after a full collection,
with the tracing processor's queue flushed so that spans waiting for export (a transient
of the SDK's ``BatchTraceProcessor``, drained every few seconds) are not counted.

* :func:`idle_per_session`: ``n`` sessions constructed and entered (connected, first agent
  in place; the traced ones have their trace, session span and agent span open) and kept
  open; traced minus untraced, per session.
* :func:`audio_growth`: one entered session with an open turn receives audio deltas
  (WebSocket-shaped: raw server event + audio event each) while a consumer drains them;
  memory after 1,000 and after 20,000 deltas. Growth per event should be zero.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import bench_scenarios as scenarios
from agents.realtime import RealtimeRunner
from agents.realtime.model_events import (
    RealtimeModelAudioEvent,
    RealtimeModelEvent,
    RealtimeModelRawServerEvent,
    RealtimeModelTurnEndedEvent,
    RealtimeModelTurnStartedEvent,
)
from agents.realtime.model_inputs import RealtimeModelSendUserInput
from agents.realtime.session import RealtimeSession
from agents.realtime.testing import RealtimeStep, ScriptedRealtimeModel

from realtime_spans.adapters import traced


def _current(flush: Callable[[], None]) -> int:
    flush()
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def _idle_sessions(n: int, *, trace: bool, flush: Callable[[], None]) -> float:
    agent = scenarios.agents()[0]
    before = _current(flush)
    sessions: list[RealtimeSession] = []
    for _ in range(n):
        session = await RealtimeRunner(agent, model=ScriptedRealtimeModel()).run()
        if trace:
            session = traced(session)
        await session.__aenter__()
        sessions.append(session)
    after = _current(flush)
    for session in sessions:
        await session.close()
    del sessions
    return (after - before) / n


@dataclass
class IdleMemory:
    """Bytes per idle entered session, each arm, and the traced extra."""

    sessions: int
    untraced_bytes: float
    traced_bytes: float

    @property
    def extra_bytes(self) -> float:
        """What tracing adds to one idle session."""
        return self.traced_bytes - self.untraced_bytes


async def idle_per_session(n: int, *, flush: Callable[[], None], rounds: int = 2) -> IdleMemory:
    """Per-session memory of ``n`` idle entered sessions, traced and untraced, alternating.

    The smallest figure of ``rounds`` is kept for each arm (the first round also pays for
    one-time caches).
    """
    await _idle_sessions(5, trace=True, flush=flush)  # one-time: traced class, caches
    await _idle_sessions(5, trace=False, flush=flush)
    untraced: list[float] = []
    traced_: list[float] = []
    tracemalloc.start()
    try:
        for _ in range(rounds):
            untraced.append(await _idle_sessions(n, trace=False, flush=flush))
            traced_.append(await _idle_sessions(n, trace=True, flush=flush))
    finally:
        tracemalloc.stop()
    return IdleMemory(n, min(untraced), min(traced_))


def _delta(response_id: str) -> list[RealtimeModelEvent]:
    return [
        RealtimeModelRawServerEvent(
            data={"type": "response.output_audio.delta", "response_id": response_id}
        ),
        RealtimeModelAudioEvent(
            data=scenarios.AUDIO_CHUNK, response_id=response_id, item_id="item", content_index=0
        ),
    ]


@dataclass
class AudioGrowth:
    """Traced memory after ``first`` and after ``last`` audio deltas, both arms."""

    first: int
    last: int
    untraced: tuple[int, int]
    traced: tuple[int, int]

    def growth_per_delta(self, arm: tuple[int, int]) -> float:
        """Bytes retained per audio delta between the two checkpoints."""
        return (arm[1] - arm[0]) / (self.last - self.first)

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers for the JSON results."""
        return {
            "checkpoints": [self.first, self.last],
            "untraced_bytes": list(self.untraced),
            "traced_bytes": list(self.traced),
            "untraced_growth_per_delta": self.growth_per_delta(self.untraced),
            "traced_growth_per_delta": self.growth_per_delta(self.traced),
        }


async def _growth(
    *, trace: bool, first: int, last: int, chunk: int, flush: Callable[[], None]
) -> tuple[int, int]:
    model = ScriptedRealtimeModel([RealtimeStep(expect=RealtimeModelSendUserInput)])
    session = await RealtimeRunner(scenarios.agents()[0], model=model).run()
    if trace:
        session = traced(session)
    drain = _Drain()
    await session.__aenter__()
    consumer = asyncio.create_task(drain.run(session))
    await session.send_message("hello")
    await model.emit(
        RealtimeModelRawServerEvent(data={"type": "response.created"}),
        RealtimeModelTurnStartedEvent(response_id="r1"),
    )
    sent = 0
    marks: list[int] = []
    for target in (first, last):
        while sent < target:
            batch = min(chunk, target - sent)
            await model.emit(*[event for _ in range(batch) for event in _delta("r1")])
            sent += batch
            await drain.until(sent)
        marks.append(_current(flush))
    await model.emit(RealtimeModelTurnEndedEvent(response_id="r1"))
    await session.close()
    await consumer
    return marks[0], marks[1]


class _Drain:
    """The consumer of a growth session: iterates every event, counts audio deltas."""

    def __init__(self) -> None:
        self.deltas = 0
        self.target = 0
        self.reached = asyncio.Event()

    async def run(self, session: RealtimeSession) -> None:
        async for event in session:
            if event.type == "audio":
                self.deltas += 1
                if self.deltas >= self.target:
                    self.reached.set()

    async def until(self, deltas: int) -> None:
        """Wait until the consumer has taken ``deltas`` audio deltas off the session."""
        self.target = deltas
        if self.deltas < deltas:
            self.reached.clear()
            await self.reached.wait()


async def audio_growth(
    *, first: int = 1_000, last: int = 20_000, chunk: int = 500, flush: Callable[[], None]
) -> AudioGrowth:
    """Memory after ``first`` and ``last`` audio deltas in one open turn, both arms."""
    await _growth(trace=True, first=10, last=20, chunk=chunk, flush=flush)  # warm caches
    tracemalloc.start()
    try:
        untraced = await _growth(trace=False, first=first, last=last, chunk=chunk, flush=flush)
        traced_ = await _growth(trace=True, first=first, last=last, chunk=chunk, flush=flush)
    finally:
        tracemalloc.stop()
    return AudioGrowth(first, last, untraced, traced_)


@dataclass
class AudioSessionPeak:
    """Peak memory of one long session (``minutes`` of audio) in each arm, in bytes."""

    minutes: float
    turn_seconds: float
    peaks: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers for the JSON results."""
        return {"minutes": self.minutes, "turn_seconds": self.turn_seconds, "peaks": self.peaks}


async def _long_session(
    *, minutes: float, turn_seconds: float, flush: Callable[[], None], **options: Any
) -> int:
    """Peak traced memory of a session in which the caller and the agent take turns, each
    speaking ``turn_seconds`` (50 ms chunks), until ``minutes`` of audio have passed. A
    compressed session cannot wait for each response to play out, so the caller cuts each
    response once it is generated (its turn then ends at once)."""
    from agents.realtime.items import InputAudio as RealtimeInputAudio
    from agents.realtime.items import UserMessageItem as RealtimeUserItem
    from agents.realtime.model_events import (
        RealtimeModelAudioInterruptedEvent,
        RealtimeModelInputAudioTranscriptionCompletedEvent,
        RealtimeModelItemUpdatedEvent,
    )

    model = ScriptedRealtimeModel(strict=False)
    settings = {"input_audio_transcription": {"model": "gpt-4o-transcribe"}}
    config: Any = {"model_settings": settings}
    session = await RealtimeRunner(scenarios.agents()[0], model=model, config=config).run()
    session = traced(session, include_sensitive_data=True, **options)
    drain = _Drain()
    await session.__aenter__()
    consumer = asyncio.create_task(drain.run(session))
    chunks = int(turn_seconds * 20)
    turns = int(minutes * 60 / (2 * turn_seconds))
    sent = 0
    gc.collect()
    tracemalloc.reset_peak()
    for number in range(turns):
        for index in range(chunks):
            await session.send_audio(scenarios.AUDIO_CHUNK, commit=index == chunks - 1)
        item = RealtimeUserItem(item_id=f"u{number}", content=[RealtimeInputAudio()])
        response = f"r{number}"
        await model.emit(
            RealtimeModelItemUpdatedEvent(item=item),
            RealtimeModelInputAudioTranscriptionCompletedEvent(
                item_id=f"u{number}", transcript="hi"
            ),
            RealtimeModelTurnStartedEvent(response_id=response),
        )
        for start in range(0, chunks, 100):
            batch = min(100, chunks - start)
            await model.emit(*[event for _ in range(batch) for event in _delta(response)])
            sent += batch
            await drain.until(sent)
        await model.emit(
            RealtimeModelTurnEndedEvent(response_id=response),
            RealtimeModelAudioInterruptedEvent(item_id="item", content_index=0),
        )
    peak = tracemalloc.get_traced_memory()[1]
    await session.close()
    await consumer
    flush()
    return peak


async def long_session_peaks(
    *, minutes: float = 30.0, turn_seconds: float = 10.0, flush: Callable[[], None]
) -> AudioSessionPeak:
    """Peak memory of a ``minutes`` session, audio off and on (``max_audio_seconds`` 300 and
    5, the second cutting every turn)."""
    arms: dict[str, dict[str, Any]] = {
        "audio off": {},
        "audio on, max_audio_seconds=300": {"include_audio": True},
        "audio on, max_audio_seconds=5": {"include_audio": True, "max_audio_seconds": 5},
    }
    await _long_session(minutes=0.5, turn_seconds=1.0, flush=flush, include_audio=True)  # warm
    peaks: dict[str, int] = {}
    tracemalloc.start()
    try:
        for name, options in arms.items():
            peaks[name] = await _long_session(
                minutes=minutes, turn_seconds=turn_seconds, flush=flush, **options
            )
    finally:
        tracemalloc.stop()
    return AudioSessionPeak(minutes, turn_seconds, peaks)
