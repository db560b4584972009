"""Audio in the trace (issue 12), on real sessions over the SDK's scripted model: the
caller's audio on each utterance's transcription span, the model's audio on a speech span
under each turn, in the session's format, bounded, and only when asked and allowed."""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from typing import Any

import pytest
from agents.realtime import RealtimeAgent, RealtimeRunner
from agents.realtime.model import RealtimePlaybackTracker
from agents.realtime.model_events import (
    RealtimeModelAudioEvent,
    RealtimeModelAudioInterruptedEvent,
    RealtimeModelEvent,
)
from agents.realtime.model_inputs import RealtimeModelSendAudio
from agents.realtime.testing import RealtimeStep, ScriptedRealtimeModel
from agents.tracing import Span

from realtime_spans.adapters import SpanRecorder, traced, wav_bytes
from realtime_spans.adapters._sink import RealtimeSpeechSpanData

from .support import END, of_kind, only, tree_problems
from .test_conversation import SETTINGS, caller_item, ended, said, started, transcribed


def delta(response_id: str, data: bytes, item_id: str = "a1") -> RealtimeModelAudioEvent:
    return RealtimeModelAudioEvent(
        data=data, response_id=response_id, item_id=item_id, content_index=0
    )


def tone(byte: int, ms: int, bytes_per_ms: int = 48) -> bytes:
    """``ms`` milliseconds of audio made of one repeated byte (recognisable on a span)."""
    return bytes([byte]) * (bytes_per_ms * ms)


def decoded(text: str) -> bytes:
    return base64.b64decode(text)


async def converse(
    steps: Sequence[RealtimeStep],
    caller: Sequence[tuple[bytes, bool]],
    *,
    after: Sequence[RealtimeModelEvent] = (),
    settings: dict[str, Any] | None = None,
    model_config: dict[str, Any] | None = None,
    **options: Any,
) -> None:
    """Send the caller's audio chunks ``(audio, commit)``, then emit ``after``."""
    model = ScriptedRealtimeModel(list(steps))
    config = {"model_settings": dict(SETTINGS if settings is None else settings)}
    agent = RealtimeAgent(name="Greeter", instructions="greet")
    runner = RealtimeRunner(agent, model=model, config=config)  # type: ignore[arg-type]
    session = await runner.run(model_config=model_config)  # type: ignore[arg-type]
    async with traced(session, **options):
        for audio, commit in caller:
            await session.send_audio(audio, commit=commit)
        await model.emit(*after, END)
        async for _ in session:
            pass
    model.assert_complete()


def audio_steps(chunks: int) -> list[RealtimeStep]:
    """``chunks`` sends of audio; the last (the commit) answers with one spoken response."""
    quiet = [RealtimeStep(expect=RealtimeModelSendAudio) for _ in range(chunks - 1)]
    return [
        *quiet,
        RealtimeStep(
            expect=RealtimeModelSendAudio,
            emit=[
                caller_item("u1"),
                transcribed("u1", "what time is it"),
                started("r1"),
                *said("r1", "It is ", "noon."),
                delta("r1", tone(1, 40)),
                delta("r1", tone(2, 60)),
                ended("r1"),
            ],
        ),
    ]


def payload(span: Span[Any]) -> dict[str, Any]:
    return span.span_data.export()  # type: ignore[no-any-return]


async def test_each_span_holds_the_audio_sent_and_received_for_its_utterance_and_response(
    recorder: SpanRecorder,
) -> None:
    caller = [(tone(7, 100), False), (tone(8, 50), True)]
    await converse(audio_steps(2), caller, include_audio=True, include_sensitive_data=True)

    assert tree_problems(recorder) == []
    transcription = only(of_kind(recorder, "transcription"))
    exported = payload(transcription)
    assert decoded(exported["input"]["data"]) == tone(7, 100) + tone(8, 50)
    assert exported["input"]["format"] == "pcm"
    assert exported["output"] == "what time is it"
    assert exported["model"] == "gpt-4o-transcribe"
    assert exported["truncated"] is False

    turn = only(of_kind(recorder, "turn"))
    speech = only(of_kind(recorder, "speech"))
    assert speech.parent_id == turn.span_id
    assert speech.ended_at is not None and turn.ended_at is not None
    assert speech.ended_at <= turn.ended_at
    spoken = payload(speech)
    assert decoded(spoken["output"]["data"]) == tone(1, 40) + tone(2, 60)
    assert spoken["output"]["format"] == "pcm"
    assert spoken["input"] == "It is noon."
    assert spoken["model"] == "gpt-realtime"
    assert spoken["first_content_at"] is not None
    assert spoken["truncated"] is False and "audio_heard_ms" not in spoken


async def test_each_utterance_gets_only_the_audio_since_the_previous_commit(
    recorder: SpanRecorder,
) -> None:
    steps = [
        RealtimeStep(expect=RealtimeModelSendAudio, emit=[caller_item("u1")]),
        RealtimeStep(
            expect=RealtimeModelSendAudio,
            emit=[caller_item("u2"), transcribed("u2", "second"), transcribed("u1", "first")],
        ),
    ]
    await converse(
        steps,
        [(tone(3, 20), True), (tone(4, 30), True)],
        include_audio=True,
        include_sensitive_data=True,
    )
    spans = {payload(s)["output"]: payload(s) for s in of_kind(recorder, "transcription")}
    assert decoded(spans["first"]["input"]["data"]) == tone(3, 20)
    assert decoded(spans["second"]["input"]["data"]) == tone(4, 30)


async def test_a_g711_session_records_its_audio_as_g711(recorder: SpanRecorder) -> None:
    settings = {
        **SETTINGS,
        "input_audio_format": "g711_ulaw",
        "output_audio_format": "g711_alaw",
    }
    ulaw, alaw = tone(0x7F, 100, bytes_per_ms=8), tone(0xD5, 200, bytes_per_ms=8)
    steps = [
        RealtimeStep(
            expect=RealtimeModelSendAudio,
            emit=[
                caller_item("u1"),
                transcribed("u1", "hola"),
                started("r1"),
                delta("r1", alaw),
                ended("r1"),
            ],
        )
    ]
    await converse(
        steps, [(ulaw, True)], settings=settings, include_audio=True, include_sensitive_data=True
    )
    heard = payload(only(of_kind(recorder, "transcription")))["input"]
    assert heard["format"] == "g711_ulaw" and decoded(heard["data"]) == ulaw
    spoken = payload(only(of_kind(recorder, "speech")))["output"]
    assert spoken["format"] == "g711_alaw" and decoded(spoken["data"]) == alaw
    # 200 ms of 8 kHz G.711 on the turn, as the audio measures say
    assert payload(only(of_kind(recorder, "turn")))["data"]["audio_generated_ms"] == 200.0


async def test_audio_past_max_audio_seconds_is_cut_and_says_truncated(
    recorder: SpanRecorder,
) -> None:
    caller = [(tone(5, 80), False), (tone(6, 80), True)]
    await converse(
        audio_steps(2),
        caller,
        include_audio=True,
        include_sensitive_data=True,
        max_audio_seconds=0.05,
    )
    heard = payload(only(of_kind(recorder, "transcription")))
    assert heard["truncated"] is True
    assert len(decoded(heard["input"]["data"])) == 48 * 50
    spoken = payload(only(of_kind(recorder, "speech")))
    assert spoken["truncated"] is True
    assert decoded(spoken["output"]["data"]) == (tone(1, 40) + tone(2, 60))[: 48 * 50]


async def test_an_interrupted_response_says_how_much_of_its_audio_was_heard(
    recorder: SpanRecorder,
) -> None:
    steps = [
        RealtimeStep(
            expect=RealtimeModelSendAudio,
            emit=[
                caller_item("u1"),
                started("r1"),
                *said("r1", "A long story"),
                delta("r1", tone(9, 2000)),
                ended("r1"),
            ],
        )
    ]
    after = [RealtimeModelAudioInterruptedEvent(item_id="a1", content_index=0)]
    await converse(
        steps, [(tone(1, 10), True)], after=after, include_audio=True, include_sensitive_data=True
    )
    assert tree_problems(recorder) == []
    turn = payload(only(of_kind(recorder, "turn")))["data"]
    speech = only(of_kind(recorder, "speech"))
    assert isinstance(speech.span_data, RealtimeSpeechSpanData)
    spoken = payload(speech)
    assert turn["interrupted"] is True
    assert spoken["audio_heard_ms"] == turn["audio_heard_ms"]
    assert 0 <= spoken["audio_heard_ms"] < 2000.0
    assert decoded(spoken["output"]["data"]) == tone(9, 2000)  # all that was generated


class _BrokenTracker(RealtimePlaybackTracker):
    def get_state(self) -> Any:
        raise RuntimeError("the player went away")


def _tracker(item_id: str, played_ms: float) -> RealtimePlaybackTracker:
    tracker = RealtimePlaybackTracker()
    tracker.on_play_ms(item_id, 0, played_ms)
    return tracker


@pytest.mark.parametrize(
    ("tracker", "heard"),
    [
        (_tracker("a1", 1234.5), 1234.5),  # what the client played
        (_tracker("a1", 5000.0), 2000.0),  # never more than the audio there was
        (_tracker("a0", 700.0), None),  # another item playing: estimated
        (_tracker("a1", float("nan")), None),  # no number: estimated
        (_BrokenTracker(), None),  # the tracker fails: estimated, tracing goes on
    ],
    ids=["played", "capped", "other-item", "nan", "broken"],
)
async def test_a_playback_tracker_says_how_much_of_an_interrupted_response_was_heard(
    recorder: SpanRecorder, tracker: RealtimePlaybackTracker, heard: float | None
) -> None:
    steps = [
        RealtimeStep(
            expect=RealtimeModelSendAudio,
            emit=[started("r1"), delta("r1", tone(9, 2000)), ended("r1")],
        )
    ]
    after = [RealtimeModelAudioInterruptedEvent(item_id="a1", content_index=0)]
    await converse(
        steps, [(tone(1, 10), True)], after=after, model_config={"playback_tracker": tracker}
    )
    assert tree_problems(recorder) == [] and recorder.open_spans == []
    turn = payload(only(of_kind(recorder, "turn")))["data"]
    assert turn["interrupted"] is True and turn["audio_generated_ms"] == 2000.0
    if heard is None:  # the estimate: the time since the first delta, well under a second here
        assert 0 <= turn["audio_heard_ms"] < 500.0
    else:
        assert turn["audio_heard_ms"] == heard


@pytest.mark.parametrize(
    "options",
    [
        {"include_audio": True, "include_sensitive_data": False},
        {"include_audio": False, "include_sensitive_data": True},
        {"include_sensitive_data": True},
    ],
)
async def test_no_audio_unless_asked_for_and_sensitive_data_is_allowed(
    recorder: SpanRecorder, options: dict[str, Any]
) -> None:
    await converse(audio_steps(2), [(tone(7, 100), False), (tone(8, 50), True)], **options)
    assert tree_problems(recorder) == []
    assert of_kind(recorder, "speech") == []
    transcription = payload(only(of_kind(recorder, "transcription")))
    assert transcription["input"]["data"] == ""
    assert "truncated" not in transcription


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ({"input_audio_format": "pcm16"}, "pcm"),
        ({"input_audio_format": "g711_ulaw"}, "g711_ulaw"),
        ({"audio": {"input": {"format": {"type": "audio/pcma"}}}}, "g711_alaw"),
    ],
)
@pytest.mark.parametrize("include_audio", [False, True])
async def test_a_transcription_span_names_the_format_the_same_with_or_without_audio(
    recorder: SpanRecorder, setting: dict[str, Any], named: str, include_audio: bool
) -> None:
    settings = {**SETTINGS, **setting}
    caller = [(tone(7, 10), True)]
    await converse(audio_steps(1), caller, settings=settings, include_audio=include_audio)
    transcription = payload(only(of_kind(recorder, "transcription")))
    assert transcription["input"]["format"] == named
    assert (transcription["input"]["data"] != "") is include_audio


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"include_audio": "yes"}, TypeError),
        ({"include_audio": 1}, TypeError),
        ({"max_audio_seconds": "300"}, TypeError),
        ({"max_audio_seconds": True}, TypeError),
        ({"max_audio_seconds": 0}, ValueError),
        ({"max_audio_seconds": -1.0}, ValueError),
        ({"max_audio_seconds": float("nan")}, ValueError),
        ({"max_audio_seconds": float("inf")}, ValueError),
    ],
)
async def test_bad_audio_options_fail_at_call_time(
    options: dict[str, Any], error: type[Exception]
) -> None:
    model = ScriptedRealtimeModel([])
    agent = RealtimeAgent(name="Greeter", instructions="greet")
    session = await RealtimeRunner(agent, model=model).run()  # type: ignore[arg-type]
    with pytest.raises(error):
        traced(session, **options)


@pytest.mark.parametrize(
    ("fmt", "tag", "rate", "bits"),
    [("pcm", 1, 24_000, 16), ("g711_ulaw", 7, 8_000, 8), ("g711_alaw", 6, 8_000, 8)],
)
def test_wav_headers_say_the_format(fmt: str, tag: int, rate: int, bits: int) -> None:
    audio = b"\x10\x20" * 100
    wav = wav_bytes(audio, fmt)
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    assert struct.unpack("<I", wav[4:8])[0] == len(wav) - 8
    assert wav[12:16] == b"fmt "
    got_tag, channels, got_rate, byte_rate, align, got_bits = struct.unpack("<HHIIHH", wav[20:36])
    assert (got_tag, channels, got_rate, got_bits) == (tag, 1, rate, bits)
    assert byte_rate == rate * bits // 8 and align == bits // 8
    assert wav.endswith(b"data" + struct.pack("<I", len(audio)) + audio)
