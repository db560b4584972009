"""The conversation beside the span tree: which words belong to which response, and the clocks.

Theory of operation
-------------------
The machine (:mod:`~realtime_spans.core.machine`) decides the spans; this module keeps
what a response's spans say about the conversation, and nothing else:

* **Inputs.** What the model receives between two responses (the caller's audio items as
  they are committed, typed messages, tool outputs) waits in :class:`Conversation` until
  the next response starts, which takes it all as its input. A caller's item is matched
  by its conversation item id, never by arrival order: its transcript, which a separate
  model produces and which often arrives after the response started (sometimes after it
  ended), fills the input of the response that took the item, if that response's
  generation is still open, and always the item's own transcription span.
* **Outputs.** What the response said (its transcript or text) and the function calls
  it made.
* **Clocks.** Every event carries the monotonic time at which the session received it;
  a duration is the difference of two of them, never a clock read here. The latencies
  (milliseconds, on the turn span) follow ``DESIGN.md``:

  ``voice_to_voice_ms``
      the answered item's ``speech_stopped`` to the response's first audio delta;
  ``time_to_first_audio_ms`` / ``time_to_first_text_ms``
      the response's start to its first audio (or, with no audio, text) delta;
  ``transcription_delay_ms``
      the answered item's ``speech_stopped`` to its transcript;
  ``audio_generated_ms``
      the duration of the response's audio;
  ``audio_heard_ms``
      for an interrupted response, how long its audio had been playing (from its first
      delta) when the caller barged in, at most what was generated.

  A measure is absent when one of its events did not happen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import attrs

#: How long after its audio should have played out a turn waits for a barge-in before it
#: ends: the playback estimate is the wall clock from the first delta, and a client's
#: player starts a little later (network, jitter buffer).
PLAYBACK_GRACE_S: Final = 1.0

Message = Mapping[str, object]


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 1)


@attrs.define
class CallerItem:
    """One utterance of the caller: a conversation item made of their audio."""

    item_id: str
    span_id: int | None = None  # its transcription span, while open
    agent_span: int | None = None  # the agent span that span hangs under
    started_at: float | None = None
    stopped_at: float | None = None
    transcribed_at: float | None = None
    transcript: str | None = None
    done: bool = False  # transcribed, failed, or its span ended with the session
    answered: bool = False  # a response took it as input


@attrs.define
class Exchange:
    """One response's side of the conversation: what went in, what came out, its clocks."""

    generation_span: int
    started_at: float | None
    inputs: list[Message | CallerItem]
    generating: bool = True
    tool_calls: list[Message] = attrs.field(factory=list)
    said: str | None = None
    audio_ms: float | None = None
    audio_item: str | None = None
    first_audio_at: float | None = None
    first_text_at: float | None = None
    heard_ms: float | None = None

    def input_messages(self) -> tuple[Message, ...]:
        """The messages the model received for this response, in order."""
        return tuple(
            {"role": "user", "content": item.transcript} if isinstance(item, CallerItem) else item
            for item in self.inputs
        )

    def output_messages(self) -> tuple[Message, ...]:
        """What the response answered: one assistant message, with its function calls."""
        if (
            self.said is None
            and not self.tool_calls
            and self.first_audio_at is None
            and self.first_text_at is None
        ):
            return ()  # the response said nothing
        message: dict[str, object] = {"role": "assistant", "content": self.said}
        if self.tool_calls:
            message["tool_calls"] = list(self.tool_calls)
        return (message,)

    def answered_speech(self) -> CallerItem | None:
        """The latest caller item this response answers whose speech the server saw stop."""
        for item in reversed(self.inputs):
            if isinstance(item, CallerItem) and item.stopped_at is not None:
                return item
        return None

    def playback_due(self) -> float | None:
        """When the caller will have heard all of the response's audio (plus a grace)."""
        if self.first_audio_at is None or not self.audio_ms:
            return None
        return self.first_audio_at + self.audio_ms / 1000.0 + PLAYBACK_GRACE_S

    def heard(
        self, at: float | None, generated_ms: float | None, played_ms: float | None = None
    ) -> float | None:
        """How much of the audio the caller heard if playback was cut at ``at``: what the
        client played (``played_ms``) when it counts it, else the time since the first
        audio; never more than the audio there was."""
        if played_ms is not None:
            played = played_ms
        elif at is None or self.first_audio_at is None:
            return None
        else:
            played = max(0.0, (at - self.first_audio_at) * 1000.0)
        available = self.audio_ms if self.audio_ms is not None else generated_ms
        if available is not None:
            played = min(played, available)
        return round(played, 1)

    def measures(self, silence_ms: int | float | None) -> dict[str, float | int]:
        """The turn's latencies, as far as their events happened, in order (a clock whose
        stop came before its start is no latency: it is left out, never negative).

        Example:
            >>> exchange = Exchange(generation_span=4, started_at=1.0, inputs=[])
            >>> exchange.first_audio_at = 1.25
            >>> exchange.measures(None)
            {'time_to_first_audio_ms': 250.0}
            >>> exchange.first_audio_at = 0.5  # before the turn started: not a latency
            >>> exchange.measures(None)
            {}
        """
        out: dict[str, float | int] = {}
        started = self.started_at
        first_audio = self.first_audio_at
        if started is not None:
            if first_audio is not None:
                _put_span(out, "time_to_first_audio_ms", started, first_audio)
            elif self.first_text_at is not None:
                _put_span(out, "time_to_first_text_ms", started, self.first_text_at)
        speech = self.answered_speech()
        if speech is not None:
            assert speech.stopped_at is not None
            if first_audio is not None and first_audio >= speech.stopped_at:
                out["voice_to_voice_ms"] = _ms(first_audio - speech.stopped_at)
                if silence_ms is not None:
                    out["silence_duration_ms"] = silence_ms
            if speech.transcribed_at is not None:
                _put_span(out, "transcription_delay_ms", speech.stopped_at, speech.transcribed_at)
        if self.audio_ms is not None:
            out["audio_generated_ms"] = round(self.audio_ms, 1)
        if self.heard_ms is not None:  # cut while generating: at most what it came to
            heard = self.heard_ms
            out["audio_heard_ms"] = (
                heard if self.audio_ms is None else round(min(heard, self.audio_ms), 1)
            )
        return out


def _put_span(out: dict[str, float | int], name: str, start: float, stop: float) -> None:
    if stop >= start:
        out[name] = _ms(stop - start)


@attrs.define
class Conversation:
    """What is said in one session, between the responses: the inputs waiting for the
    next response, the caller's items by id, the model's settings, and the session's
    summary figures.

    Example:
        >>> conversation = Conversation()
        >>> conversation.pending.append({"role": "user", "content": "Hi"})
        >>> exchange = conversation.begin(generation_span=4, at=1.0)
        >>> exchange.input_messages()
        ({'role': 'user', 'content': 'Hi'},)
        >>> conversation.pending
        []
    """

    model: str | None = None
    model_config: Mapping[str, object] = attrs.field(factory=dict)
    transcription_model: str | None = None
    input_format: str | None = None
    pending: list[Message | CallerItem] = attrs.field(factory=list)
    callers: dict[str, CallerItem] = attrs.field(factory=dict)
    voice_to_voice: list[float] = attrs.field(factory=list)
    interruptions: int = 0

    @property
    def silence_ms(self) -> int | float | None:
        """The server VAD's silence window, when the settings give one."""
        detection = self.model_config.get("turn_detection")
        if isinstance(detection, Mapping):
            value = detection.get("silence_duration_ms")
            if isinstance(value, int | float) and not isinstance(value, bool):
                return value
        return None

    def caller(self, item_id: str) -> CallerItem:
        """The caller's item ``item_id``, made on first sight."""
        item = self.callers.get(item_id)
        if item is None:
            item = self.callers[item_id] = CallerItem(item_id)
        return item

    def commit(self, item: CallerItem) -> None:
        """The caller's item is in the conversation: the next response answers it."""
        if not item.answered and all(entry is not item for entry in self.pending):
            self.pending.append(item)

    def begin(self, generation_span: int, at: float | None) -> Exchange:
        """A response starts: it takes every input waiting since the previous one."""
        inputs, self.pending = self.pending, []
        for entry in inputs:
            if isinstance(entry, CallerItem):
                entry.answered = True
        return Exchange(generation_span, at, inputs)

    def summary(self, turns: int) -> dict[str, float | int]:
        """The session span's summary: turns, interruptions, voice-to-voice median and max.

        Example:
            >>> conversation = Conversation(voice_to_voice=[300.0, 500.0, 900.0])
            >>> conversation.summary(turns=3)["voice_to_voice_median_ms"]
            500.0
        """
        out: dict[str, float | int] = {"turns": turns, "interruptions": self.interruptions}
        latencies = sorted(self.voice_to_voice)
        if latencies:
            middle = len(latencies) // 2
            median = (
                latencies[middle]
                if len(latencies) % 2
                else (latencies[middle - 1] + latencies[middle]) / 2
            )
            out["voice_to_voice_median_ms"] = round(median, 1)
            out["voice_to_voice_max_ms"] = latencies[-1]
        return out
