"""The demo (the README's first command) prints the whole span tree of its session and the
conversation: who said what, each turn's latencies, the session's summary."""

from __future__ import annotations

import contextlib
import io
import re
from typing import Any

import pytest
from agents.tracing import set_trace_processors

from realtime_spans.adapters import SpanRecorder, demo


@pytest.fixture(scope="module")
def printed() -> tuple[str, SpanRecorder]:
    """Run ``main()`` once (it takes a few seconds), keeping what it printed and the spans
    it recorded."""
    recorders: list[SpanRecorder] = []

    def keep(processors: list[Any]) -> None:
        recorders.extend(p for p in processors if isinstance(p, SpanRecorder))
        set_trace_processors(processors)

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        patch.setattr(demo, "set_trace_processors", keep)
        assert demo.main() == 0
    (recorder,) = recorders
    return out.getvalue(), recorder


def test_demo_prints_every_kind_of_span_as_a_tree(printed: tuple[str, SpanRecorder]) -> None:
    out, _ = printed
    lines = out.splitlines()
    assert lines[0].startswith(f"trace {demo.WORKFLOW} group_id=group_")
    assert "'realtime_session_id': 'sess_demo'" in lines[0]
    tree = lines[1 : lines.index("")]  # the tree, then a blank line, then the conversation
    shape = [(len(line) - len(line.lstrip()), line.split()[0]) for line in tree]
    assert shape == [
        (2, "task"),
        (4, "agent"),
        (6, "transcription"),
        (6, "turn"),
        (8, "generation"),
        (6, "function"),
        (6, "turn"),
        (8, "generation"),
        (6, "transcription"),
        (6, "turn"),
        (8, "generation"),
        (6, "handoff"),
        (4, "agent"),
        (6, "turn"),
        (8, "generation"),
        (6, "guardrail"),
        (6, "turn"),
        (8, "generation"),
        (6, "transcription"),
        (6, "turn"),
        (8, "generation"),
    ]
    assert all(re.search(r" \d+\.\d ms", line) for line in tree)
    assert all("generation gpt-realtime " in line for line in tree if "generation" in line)
    assert all("gpt-4o-transcribe" in line for line in tree if "transcription" in line)
    assert "handoff Greeter -> Specialist" in out
    assert "guardrail no_unpaid_bookings" in out and "triggered" in out
    assert lines[-1].endswith("spans left open: 0")


def _conversation(out: str) -> list[str]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("turn 1 "))
    end = next(i for i, line in enumerate(lines) if line.startswith("session: "))
    return lines[start : end + 1]


def test_demo_prints_who_said_what_in_order(printed: tuple[str, SpanRecorder]) -> None:
    out, recorder = printed
    text = " ".join(" ".join(_conversation(out)).split())  # wrapped lines joined
    words = [
        'caller "What\'s the weather in Lisbon?"',
        'Greeter "Let me check." -> get_weather({"city": "Lisbon"})',
        'tool "Sunny and 21 degrees in Lisbon."',
        'Greeter "It\'s sunny and 21 degrees in Lisbon today."',
        'caller "Lovely. Can you plan me a weekend there?"',
        'Greeter "Sure, I\'ll pass you to our trip planner." -> transfer_to_specialist({})',
        'Specialist "Hi, I plan trips. Great news: I have booked you a hotel',
        "Specialist \"Sorry, I can't book before payment.",
        'caller "Just hold the hotel, please."',
        'Specialist "Done: it\'s held until Friday. Goodbye!"',
    ]
    positions = [text.find(said) for said in words]
    assert -1 not in positions, [w for w, p in zip(words, positions, strict=True) if p == -1]
    assert positions == sorted(positions)
    # the caller's words are the transcription spans' (the second arrived mid-answer)
    transcripts = [
        s.span_data.output for s in recorder.spans if s.span_data.type == "transcription"
    ]
    assert sorted(transcripts) == sorted(
        [
            "What's the weather in Lisbon?",
            "Lovely. Can you plan me a weekend there?",
            "Just hold the hotel, please.",
        ]
    )


def test_each_latency_printed_is_on_its_turn_span(printed: tuple[str, SpanRecorder]) -> None:
    out, recorder = printed
    turns = {
        s.span_data.turn: s.span_data.export()["data"]
        for s in recorder.spans
        if s.span_data.type == "turn"
    }
    assert sorted(turns) == [1, 2, 3, 4, 5, 6]
    blocks = re.split(r"\n(?=turn \d+ |session: )", "\n".join(_conversation(out)))
    printed_turns: dict[int, dict[str, float]] = {}
    for block in blocks:
        head = re.match(r"turn (\d+) ", block)
        if head is None:
            continue
        figures = re.findall(r"(\w+_ms)=([\d.]+)", block)
        printed_turns[int(head.group(1))] = {name: float(value) for name, value in figures}
    assert sorted(printed_turns) == sorted(turns)
    for number, figures in printed_turns.items():
        latencies = {k: v for k, v in turns[number].items() if k in demo.LATENCIES}
        assert figures == latencies, number  # every one printed, each as recorded
    # the caller spoke before turns 1, 3 and 6: voice to voice and the transcript's delay
    for number in (1, 3, 6):
        assert {"voice_to_voice_ms", "transcription_delay_ms"} <= set(printed_turns[number])
    for number in (2, 4, 5):  # answers to a tool's output and to the guardrail
        assert "voice_to_voice_ms" not in printed_turns[number]
    assert all("time_to_first_audio_ms" in figures for figures in printed_turns.values())
    assert all("audio_generated_ms" in figures for figures in printed_turns.values())


def test_the_barge_in_turn_was_interrupted_after_part_of_its_audio(
    printed: tuple[str, SpanRecorder],
) -> None:
    out, recorder = printed
    turns = {
        s.span_data.turn: s.span_data.export()["data"]
        for s in recorder.spans
        if s.span_data.type == "turn"
    }
    barged = turns[5]
    assert barged["interrupted"] is True and barged["cut_off"] is False
    assert 0 <= barged["audio_heard_ms"] < barged["audio_generated_ms"]
    guarded = turns[4]  # the guardrail's interrupt stopped its playback too
    assert guarded["interrupted"] is True
    assert 0 <= guarded["audio_heard_ms"] < guarded["audio_generated_ms"]
    assert [n for n, data in turns.items() if data["interrupted"]] == [4, 5]
    assert "turn 5 Specialist (interrupted):" in out
    session = next(s for s in recorder.spans if s.span_data.type == "task")
    summary = session.span_data.export()["data"]
    assert summary["turns"] == 6 and summary["interruptions"] == 2
    v2v = sorted(turns[n]["voice_to_voice_ms"] for n in (1, 3, 6))
    assert summary["voice_to_voice_median_ms"] == v2v[1]
    assert summary["voice_to_voice_max_ms"] == v2v[2]
    expected = (
        f"session: turns=6 interruptions=2 voice_to_voice_median_ms={v2v[1]} "
        f"voice_to_voice_max_ms={v2v[2]}"
    )
    assert expected in out.splitlines()
