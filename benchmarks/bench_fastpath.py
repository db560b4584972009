"""Does audio leave the tap at once? Call counts and the per-event cost of the tap.

Two checks of the issue's item 2 ("audio and other events that cannot change a span leave
the tap at once, without reaching the core"):

* :func:`count_calls` runs one traced audio-heavy session with counting wrappers around
  ``RealtimeSession._put_event``/``_put_event_nowait`` (every session event), the tap's
  ``SessionTap.handle`` (an event that was converted) and ``SpanMachine.feed`` (an event
  that reached the core), and reports, per kind of session event, how far it got. It also
  keeps the core events, the realistic event mix for the core benchmark.
* :func:`per_event_cost` times ``_put_event_nowait`` on an entered session, traced and
  untraced, for single events of each kind: the tap's own cost per event, in nanoseconds.

The wrappers are installed on the classes for the duration of one session, in this
process only; nothing in the library is modified.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import bench_scenarios as scenarios
from agents.realtime.events import RealtimeAudio, RealtimeRawModelEvent
from agents.realtime.model_events import (
    RealtimeModelAudioEvent,
    RealtimeModelRawServerEvent,
    RealtimeModelTurnStartedEvent,
)
from agents.realtime.session import RealtimeSession

from realtime_spans.adapters import traced
from realtime_spans.core import Event, SpanMachine


def kind_of(event: object) -> str:
    """A session event's kind: its type, and the model event's type for raw model events.

    Example:
        >>> from agents.realtime.model_events import RealtimeModelTurnEndedEvent
        >>> kind_of(RealtimeRawModelEvent(data=RealtimeModelTurnEndedEvent(), info=None))
        'raw_model_event(turn_ended)'
    """
    if isinstance(event, RealtimeRawModelEvent):
        return f"raw_model_event({event.data.type})"
    return str(getattr(event, "type", type(event).__name__))


def _tap_class() -> type[Any] | None:
    try:
        from realtime_spans.adapters._tap import SessionTap
    except ImportError:  # the adapters were reorganized: report what can still be seen
        return None
    tap_class: type[Any] = SessionTap
    return tap_class


@dataclass
class CallCounts:
    """How far each kind of session event got in one traced session."""

    put: Counter[str] = field(default_factory=Counter)
    handled: Counter[str] = field(default_factory=Counter)
    fed: Counter[str] = field(default_factory=Counter)
    core_events: list[Event] = field(default_factory=list)
    tap_visible: bool = True

    def rows(self) -> list[tuple[str, int, int]]:
        """(kind, events queued, events that reached ``SessionTap.handle``), most first."""
        return [(kind, count, self.handled[kind]) for kind, count in self.put.most_common()]

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers for the JSON results."""
        return {
            "session_events_by_kind": dict(self.put),
            "reached_tap_handle_by_kind": dict(self.handled),
            "core_events_by_type": dict(self.fed),
            "core_events_total": sum(self.fed.values()),
            "session_events_total": sum(self.put.values()),
            "tap_handle_visible": self.tap_visible,
        }


@contextmanager
def _wrapped(owner: type[Any], name: str, make: Callable[[Any], Any]) -> Iterator[None]:
    original = owner.__dict__[name]
    setattr(owner, name, make(original))
    try:
        yield
    finally:
        setattr(owner, name, original)


async def count_calls(scenario: scenarios.Scenario) -> CallCounts:
    """Run ``scenario`` once, traced, counting how far each session event got."""
    counts = CallCounts()

    def counting_put(original: Any) -> Any:
        def put(self: Any, event: Any) -> Any:
            counts.put[kind_of(event)] += 1
            return original(self, event)

        return put

    def counting_handle(original: Any) -> Any:
        def handle(self: Any, convert: Any, event: Any) -> None:
            counts.handled[kind_of(event)] += 1
            original(self, convert, event)

        return handle

    def counting_feed(original: Any) -> Any:
        def feed(self: Any, event: Event) -> Any:
            counts.fed[type(event).__name__] += 1
            counts.core_events.append(event)
            return original(self, event)

        return feed

    tap_class = _tap_class()
    counts.tap_visible = tap_class is not None and "handle" in tap_class.__dict__
    prepared = await scenarios.prepare(scenario)
    with (
        _wrapped(RealtimeSession, "_put_event", counting_put),
        _wrapped(RealtimeSession, "_put_event_nowait", counting_put),
        _wrapped(SpanMachine, "feed", counting_feed),
    ):
        if counts.tap_visible and tap_class is not None:
            with _wrapped(tap_class, "handle", counting_handle):
                await scenarios.run_timed([prepared], trace=True)
        else:
            await scenarios.run_timed([prepared], trace=True)
    return counts


@dataclass
class EventCost:
    """Nanoseconds per ``_put_event_nowait`` call for one kind of event, both arms."""

    kind: str
    untraced_ns: float
    traced_ns: float

    @property
    def extra_ns(self) -> float:
        """What the tap adds to one event."""
        return self.traced_ns - self.untraced_ns


def _sample_events(session: RealtimeSession) -> dict[str, object]:
    info = session._event_info
    audio = RealtimeModelAudioEvent(
        data=scenarios.AUDIO_CHUNK, response_id="r", item_id="i", content_index=0
    )
    raw_server = RealtimeModelRawServerEvent(data={"type": "response.output_audio.delta"})
    return {
        "audio": RealtimeAudio(info=info, audio=audio, item_id="i", content_index=0),
        "raw_model_event(audio)": RealtimeRawModelEvent(data=audio, info=info),
        "raw_model_event(raw_server_event)": RealtimeRawModelEvent(data=raw_server, info=info),
    }


async def _cost_per_kind(*, trace: bool, calls: int, rounds: int) -> dict[str, float]:
    scenario = scenarios.Scenario("idle", turns=1, audio_per_turn=0, tool_calls=0, handoffs=0)
    prepared = await scenarios.prepare(scenario)
    session = traced(prepared.session) if trace else prepared.session
    await session.__aenter__()
    try:
        queue: Any = session._event_queue
        # an open turn, so the traced session is in its busiest state
        turn = RealtimeModelTurnStartedEvent(response_id="r")
        session._put_event_nowait(RealtimeRawModelEvent(data=turn, info=session._event_info))
        best: dict[str, float] = {}
        put = session._put_event_nowait
        for kind, event in _sample_events(session).items():
            timings = []
            for _ in range(rounds):
                gc.disable()
                start = time.perf_counter_ns()
                for _ in range(calls):
                    put(event)  # type: ignore[arg-type]
                elapsed = time.perf_counter_ns() - start
                gc.enable()
                queue._queue.clear()  # drop what was queued, keep the queue's own state
                timings.append(elapsed / calls)
            best[kind] = min(timings)
        return best
    finally:
        queue._queue.clear()
        await session.close()


def websocket_parse_cost(*, calls: int = 2000, rounds: int = 5) -> float | None:
    """For scale: microseconds the OpenAI WebSocket model spends on one audio delta message.

    ``json.loads``, validation with the SDK's server event type adapter and the base64
    decode, as ``OpenAIRealtimeWebSocketModel`` does for every delta; the scripted model
    used by the benchmarks skips all of it, so its sessions are cheaper per delta than
    real ones, and the measured ratios are upper bounds. ``None`` if the SDK moved it.
    """
    try:
        from agents.realtime.openai_realtime import get_server_event_type_adapter
    except ImportError:  # pragma: no cover - a future SDK
        return None
    adapter = get_server_event_type_adapter()
    message = json.dumps(
        {
            "type": "response.output_audio.delta",
            "event_id": "event_1",
            "response_id": "resp_1",
            "item_id": "item_1",
            "output_index": 0,
            "content_index": 0,
            "delta": base64.b64encode(scenarios.AUDIO_CHUNK).decode("ascii"),
        }
    )
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(calls):
            parsed = adapter.validate_python(json.loads(message))
            base64.b64decode(getattr(parsed, "delta", ""))
        best = min(best, (time.perf_counter_ns() - start) / calls / 1e3)
    return best


async def per_event_cost(*, calls: int = 2000, rounds: int = 15, pairs: int = 3) -> list[EventCost]:
    """The tap's cost per event: best-of timings of ``_put_event_nowait``, both arms.

    Arms alternate ``pairs`` times; for each kind the best (least disturbed) timing of each
    arm is kept, the usual way to measure a cost of tens of nanoseconds.
    """
    untraced: dict[str, float] = {}
    traced_: dict[str, float] = {}
    for _ in range(pairs):
        for trace, into in ((False, untraced), (True, traced_)):
            for kind, value in (
                await _cost_per_kind(trace=trace, calls=calls, rounds=rounds)
            ).items():
                into[kind] = min(value, into.get(kind, value))
        await asyncio.sleep(0)
    return [EventCost(kind, untraced[kind], traced_[kind]) for kind in untraced]
