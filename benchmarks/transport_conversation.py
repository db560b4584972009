"""Voice conversations over the real transport: what the server says, what the caller does.

A :class:`Conversation` is one phone call, seen from both ends:

* the **server** (the local Realtime server of ``tests/realtime_server``, in its own
  process) answers as the Realtime API does with server VAD: when the caller's audio
  starts it sends ``input_audio_buffer.speech_started``; when the utterance's audio is in,
  ``speech_stopped``, ``committed`` and the user item (``conversation.item.added``), the
  caller's transcript (``conversation.item.input_audio_transcription.completed``: before
  the response on even utterances, after its ``response.done`` on odd ones, as the real
  transcription model does when it is slower than the response), then the response it
  creates itself: ``response.created``, the assistant item, transcript deltas, audio
  deltas, the audio and transcript ``done`` events, a function call when the plan says so,
  and ``response.done`` with usage. It answers ``session.update`` with
  ``session.updated``, each created item (tool outputs) with ``conversation.item.added``,
  ``conversation.item.retrieve`` (which the SDK sends on each input transcription) with
  ``conversation.item.retrieved``, and the ``response.create`` the SDK sends after a tool
  output or a handoff with the next response of the plan.
* the **caller** (:func:`converse`, the same code in every arm): enters the session,
  streams each utterance as 20 ms ``send_audio`` chunks, one per event-loop turn (a
  microphone loop hands the session one chunk per callback), then iterates the session's
  events until every response answering that utterance has ended (tool calls and
  handoffs run on the SDK's own background tasks in between), and closes.

Everything the server sends is built with ``tests/realtime_server/events.py`` (so each
event is checked against the ``openai`` package's models) and encoded once per
conversation (:class:`~tests.realtime_server.script.Encoded`): per session the server
only frames and writes.

Not modelled: audio content (silence; no tracer here looks at samples), the audio data a
real server puts in ``conversation.item.retrieved`` (omitted: it would add the same
parse cost to every arm and make every ratio look better), barge-ins and pacing in real
time (the conversation runs as fast as both ends can go, which is what a benchmark of
CPU cost wants).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.realtime_server import (  # noqa: E402
    Encoded,
    Script,
    audio_message,
    conversation_item_added,
    function_call,
    response,
    session_created,
    usage,
    validate_server_event,
)
from tests.realtime_server.events import (  # noqa: E402
    caller_utterance,
    input_transcription_completed,
)

#: 20 ms of the caller's voice: 24 kHz mono PCM16, what a microphone loop sends each time.
CALLER_CHUNK = bytes(960)
#: 50 ms of the agent's voice, one output audio delta (as in the scripted benchmark).
AGENT_CHUNK = bytes(2400)
#: The caller's words (numbered per utterance); the agent's (:func:`agent_words`, its own
#: words in each response) are sent in several transcript deltas.
CALLER_WORDS = "Hi, what is the weather like in Oslo tomorrow, and should I bring a coat?"
AGENT_WORDS = (
    "Tomorrow in Oslo it will be sunny in the morning with clouds later in the day, "
    "around twelve degrees, so yes, a light coat would be a good idea."
)
#: Session events whose place in the stream depends on how the session's concurrent
#: tasks were scheduled, in any arm: those a tool call's own task emits (tool start and
#: end, handoff, and the history updates of the tool output it sends), and the server's
#: answers to messages the client sends from more than one task (``session.updated``,
#: ``conversation.item.added``, ``conversation.item.retrieved``). They are compared as
#: counts; every other event (each response's stream, the caller's speech events), in
#: order.
UNORDERED = frozenset(
    {
        "tool_start",
        "tool_end",
        "handoff",
        "raw:item_updated",
        "history_updated",
        "history_added",
        "raw:server:session.updated",
        "raw:server:conversation.item.added",
        "raw:server:conversation.item.retrieved",
    }
)


@dataclass(frozen=True)
class Turn:
    """One model response: who started it, what it ends with, who speaks it."""

    index: int
    started_by: str  # "caller" (an utterance) or "tool" (the SDK's response.create)
    call: str | None  # "tool", "handoff" or None
    agent: str


@dataclass(frozen=True)
class Conversation:
    """A voice call: ``responses`` model responses with ``audio_per_response`` deltas each,
    ``tool_calls`` tool calls and ``handoffs`` handoffs spread over them, each response not
    following a call answering a caller utterance of ``caller_chunks`` 20 ms chunks.
    Each repeat of the benchmark runs ``rounds`` sessions of it per arm, each round
    interleaved across the arms on its own.

    Example:
        >>> call = Conversation("demo", responses=4, audio_per_response=2, tool_calls=1,
        ...                     handoffs=1)
        >>> [(t.started_by, t.call, t.agent) for t in call.turns()]
        ... # doctest: +NORMALIZE_WHITESPACE
        [('caller', 'tool', 'Greeter'), ('tool', 'handoff', 'Greeter'),
         ('tool', None, 'Specialist'), ('caller', None, 'Specialist')]
        >>> call.exchanges()
        [3, 1]
    """

    name: str
    responses: int
    audio_per_response: int
    tool_calls: int
    handoffs: int
    caller_chunks: int = 100
    transcript_deltas: int = 12
    rounds: int = 1
    description: str = ""

    def call_plan(self) -> list[str | None]:
        """For each response, the call it ends with (the last response has none)."""
        count = self.tool_calls + self.handoffs
        if count > max(0, self.responses - 1):
            raise ValueError(f"{self.name}: more calls than responses (the last has none)")
        handoff_at = {
            ((index + 1) * count) // (self.handoffs + 1) for index in range(self.handoffs)
        }
        plan: list[str | None] = [None] * self.responses
        for index in range(count):
            at = (index * (self.responses - 1)) // count
            plan[at] = "handoff" if index in handoff_at else "tool"
        return plan

    def turns(self) -> list[Turn]:
        """Every response in order, with what starts it and which agent speaks it."""
        agents = ("Greeter", "Specialist")
        speaking = 0
        turns: list[Turn] = []
        previous: str | None = None
        for index, call in enumerate(self.call_plan()):
            started_by = "caller" if previous is None else "tool"
            turns.append(Turn(index, started_by, call, agents[speaking]))
            if call == "handoff":
                speaking = 1 - speaking
            previous = call
        return turns

    def exchanges(self) -> list[int]:
        """For each caller utterance, how many responses answer it (calls chain them)."""
        counts: list[int] = []
        for turn in self.turns():
            if turn.started_by == "caller":
                counts.append(0)
            counts[-1] += 1
        return counts

    @property
    def audio_deltas(self) -> int:
        """Output audio deltas per session."""
        return self.responses * self.audio_per_response

    def summary(self) -> str:
        """One line: what a session of this conversation holds."""
        return (
            f"{self.responses} responses x {self.audio_per_response} audio deltas (50 ms), "
            f"{self.tool_calls} tool calls, {self.handoffs} handoffs, "
            f"{len(self.exchanges())} caller utterances x {self.caller_chunks} chunks (20 ms), "
            f"{self.transcript_deltas} transcript deltas per response; "
            f"{self.rounds} session(s) per arm per repeat"
        )


# -- the server's side -------------------------------------------------------------------


def _session_updated(created: dict[str, Any]) -> dict[str, Any]:
    return validate_server_event(
        {"type": "session.updated", "event_id": "event_session_updated", "session": created}
    )


def agent_words(index: int) -> str:
    """What the agent says in response ``index`` (each response its own words, as in a
    real call: a tracer that skips repeated text must not get an easier time here).

    Example:
        >>> agent_words(0).split(".")[0]
        'Answer 1'
    """
    return f"Answer {index + 1}. {AGENT_WORDS}"


def _item_retrieved(item_id: str, index: int) -> dict[str, Any]:
    return validate_server_event(
        {
            "type": "conversation.item.retrieved",
            "event_id": f"event_retrieved_{item_id}",
            "item": {
                "id": item_id,
                "object": "realtime.item",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_audio", "transcript": agent_words(index)}],
            },
        }
    )


@dataclass
class _ServerTurns:
    """What the server sends, encoded once per conversation and shared by connections."""

    created: Encoded
    updated: Encoded
    speech_started: list[Encoded | None]  # per turn; None for tool-started turns
    answers: list[Encoded]  # per turn: rest of the utterance (if any) and the response
    retrieved: dict[str, Encoded] = field(default_factory=dict)


def _tool_name(turn: Turn) -> str:
    if turn.call == "handoff":
        return "transfer_to_specialist" if turn.agent == "Greeter" else "transfer_to_greeter"
    return "get_weather"


def _server_turns(conversation: Conversation) -> _ServerTurns:
    created = session_created("sess_bench")
    turns = conversation.turns()
    starts: list[Encoded | None] = []
    answers: list[Encoded] = []
    utterance = 0
    previous_item: str | None = None
    for turn in turns:
        response_id = f"resp_{turn.index + 1}"
        message_id = f"msg_{turn.index + 1}"
        body: list[Any] = [
            audio_message(
                response_id,
                item_id=message_id,
                chunks=conversation.audio_per_response,
                transcript=agent_words(turn.index),
                transcript_deltas=conversation.transcript_deltas,
                audio=AGENT_CHUNK,
            )
        ]
        if turn.call is not None:
            body.append(
                function_call(
                    response_id,
                    call_id=f"call_{turn.index + 1}",
                    name=_tool_name(turn),
                    arguments='{"city": "Oslo"}' if turn.call == "tool" else "{}",
                    output_index=1,
                )
            )
        spoken = response(
            response_id,
            *body,
            usage=usage(
                input_text=120 + 40 * turn.index,
                input_audio=60,
                cached_text=64,
                output_text=30,
                output_audio=5 * conversation.audio_per_response,
            ),
        )
        if turn.started_by == "caller":
            utterance += 1
            item_id = f"item_caller_{utterance}"
            start_ms = 1000 * utterance * 10
            vad = caller_utterance(
                item_id,
                audio_start_ms=start_ms,
                audio_end_ms=start_ms + 20 * conversation.caller_chunks,
                previous_item_id=previous_item,
            )
            heard = input_transcription_completed(item_id, f"{CALLER_WORDS} ({utterance})")
            late = utterance % 2 == 0
            events = [*vad[1:], *([] if late else [heard]), *spoken, *([heard] if late else [])]
            starts.append(Encoded.of(vad[:1]))
            previous_item = item_id
        else:
            starts.append(None)
            events = spoken
        answers.append(Encoded.of(events))
        previous_item = message_id
    retrieved = {
        f"msg_{t.index + 1}": Encoded.of([_item_retrieved(f"msg_{t.index + 1}", t.index)])
        for t in turns
    }
    return _ServerTurns(
        Encoded.of([created]),
        Encoded.of([_session_updated(created["session"])]),
        starts,
        answers,
        retrieved,
    )


class _Call:
    """One connection's progress through the conversation (the server's side)."""

    def __init__(self, conversation: Conversation, encoded: _ServerTurns) -> None:
        self.turns = conversation.turns()
        self.encoded = encoded
        self.chunks = conversation.caller_chunks
        self.speech_at = min(5, self.chunks)
        self.next_turn = 0
        self.heard = 0
        self.items = itertools.count(1)

    def session_updated(self, _message: dict[str, Any]) -> list[Any]:
        return [self.encoded.updated]

    def item_added(self, message: dict[str, Any]) -> list[Any]:
        item_id = f"item_client_{next(self.items)}"
        return [conversation_item_added(message["item"], item_id=item_id)]

    def item_retrieved(self, message: dict[str, Any]) -> list[Any]:
        return [self.encoded.retrieved[message["item_id"]]]

    def caller_audio(self, _message: dict[str, Any]) -> list[Any]:
        self.heard += 1
        turn = self._turn("caller")
        if self.heard == self.speech_at:
            start = self.encoded.speech_started[turn.index]
            assert start is not None
            return [start]
        if self.heard < self.chunks:
            return []
        self.heard = 0
        self.next_turn += 1
        return [self.encoded.answers[turn.index]]

    def response_requested(self, _message: dict[str, Any]) -> list[Any]:
        turn = self._turn("tool")
        self.next_turn += 1
        return [self.encoded.answers[turn.index]]

    def _turn(self, started_by: str) -> Turn:
        if self.next_turn >= len(self.turns):
            raise AssertionError(f"the client asked for more than {len(self.turns)} responses")
        turn = self.turns[self.next_turn]
        if turn.started_by != started_by:
            raise AssertionError(
                f"response {turn.index + 1} is started by the {turn.started_by}, "
                f"but the {started_by} started one"
            )
        return turn


def script_factory(conversation: Conversation) -> Callable[[], Script]:
    """A fresh server script per connection (``RealtimeServer.script_per_connection``).

    The events are built and encoded here, once; each script only keeps its place.
    """
    encoded = _server_turns(conversation)

    def make() -> Script:
        call = _Call(conversation, encoded)
        return (
            Script()
            .on_connect(encoded.created)
            .every("session.update", call.session_updated)
            .every("conversation.item.create", call.item_added)
            .every("conversation.item.retrieve", call.item_retrieved)
            .every("input_audio_buffer.append", call.caller_audio)
            .every("response.create", call.response_requested)
        )

    return make


# -- the caller's side -------------------------------------------------------------------


@dataclass
class Seen:
    """What the caller saw: every session event as a kind (its type, and for raw model
    events what they carry), in order.

    Example:
        >>> seen = Seen()
        >>> seen.kinds = ["agent_start", "tool_start", "agent_end"]
        >>> seen.ordered()
        ['agent_start', 'agent_end']
    """

    kinds: list[str] = field(default_factory=list)
    audio_bytes: int = 0

    def add(self, event: Any) -> None:
        """Record one event."""
        kind = event.type
        if kind == "raw_model_event":
            data = event.data
            kind = f"raw:{data.type}"
            if data.type == "raw_server_event":
                kind = f"raw:server:{data.data.get('type')}"
        elif kind == "audio":
            self.audio_bytes += len(event.audio.data)
        self.kinds.append(kind)

    def ordered(self) -> list[str]:
        """The events compared in order (all but :data:`UNORDERED`)."""
        return [kind for kind in self.kinds if kind not in UNORDERED]

    def signature(self) -> tuple[int, str, str]:
        """Comparable digests: the number of events, the count of each kind, and the
        order of the events compared in order."""
        counts = sorted(Counter(self.kinds).items())
        return (
            len(self.kinds),
            _digest(repr(counts)),
            _digest("\n".join(self.ordered())),
        )


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


async def converse(
    session: Any, conversation: Conversation, seen: Seen, *, seconds: float = 120.0
) -> None:
    """The caller, the same in every arm: enter, speak, listen, close.

    Each utterance is streamed as ``caller_chunks`` ``send_audio`` calls, yielding to the
    event loop after each (one chunk per microphone callback); then the events are
    iterated until every response answering it has ended (``agent_end``).
    """
    async with asyncio.timeout(seconds), session:
        events = session.__aiter__()
        try:
            for answers in conversation.exchanges():
                for _ in range(conversation.caller_chunks):
                    await session.send_audio(CALLER_CHUNK)
                    await asyncio.sleep(0)
                ended = 0
                while ended < answers:
                    event = await events.__anext__()
                    seen.add(event)
                    ended += event.type == "agent_end"
        finally:
            await events.aclose()


# -- the scenarios -----------------------------------------------------------------------


def audio_heavy() -> Conversation:
    """20 responses x 500 audio deltas (25 s each), 10 tool calls, 2 handoffs."""
    return Conversation(
        "audio-heavy",
        responses=20,
        audio_per_response=500,
        tool_calls=10,
        handoffs=2,
        description="the scripted benchmark's audio volume, over the socket",
    )


def audio_light() -> Conversation:
    """As :func:`audio_heavy` with 100 audio deltas per response: the second audio volume
    of the per-delta slope."""
    return Conversation(
        "audio-light",
        responses=20,
        audio_per_response=100,
        tool_calls=10,
        handoffs=2,
        description="audio-heavy with a fifth of the audio: the slope's second point",
    )


def lifecycle() -> Conversation:
    """Turns, tool calls and handoffs with little audio: 20 responses x 5 deltas."""
    return Conversation(
        "lifecycle",
        responses=20,
        audio_per_response=5,
        tool_calls=10,
        handoffs=2,
        caller_chunks=25,
        rounds=4,
        description="the span lifecycle, little audio",
    )


def all_conversations() -> list[Conversation]:
    """The three transport scenarios, in report order."""
    return [audio_heavy(), audio_light(), lifecycle()]


def by_name() -> dict[str, Conversation]:
    """The scenarios by name."""
    return {conversation.name: conversation for conversation in all_conversations()}
