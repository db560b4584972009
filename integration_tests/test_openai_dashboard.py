"""The OpenAI traces dashboard: the SDK's own exporter (``BackendSpanExporter`` behind a
``BatchTraceProcessor``, what the SDK registers by default) sends realtime-spans' trace
as the ingest API expects it. The endpoint is a local HTTP server that keeps what it is
sent, so nothing leaves the machine."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from agents.tracing import set_trace_processors
from agents.tracing.processors import BackendSpanExporter, BatchTraceProcessor

from realtime_spans.adapters import traced

from .conftest import NetworkGuard
from .scenario import (
    ANSWER_AUDIO_MS,
    ANSWER_SAID,
    CALLER_SAID,
    CUT_IN_SAID,
    MODEL,
    SERVER_SESSION_ID,
    SESSION_TOKENS,
    SETTINGS,
    TRANSCRIPTION_MODEL,
    TURN_TOKENS,
    WORKFLOW,
    run_call,
)

TURN_AGENTS = ((1, "Greeter"), (2, "Greeter"), (3, "Specialist"), (4, "Specialist"))


class _Ingest(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def ingest(no_network: NetworkGuard) -> Iterator[tuple[str, list[tuple[dict[str, str], Any]]]]:
    """A local stand-in for ``https://api.openai.com/v1/traces/ingest``."""
    received: list[tuple[dict[str, str], Any]] = []
    handler = type("Ingest", (_Ingest,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    host, port = server.server_address[:2]
    no_network.allow(str(host), int(port))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{port}/v1/traces/ingest", received
    finally:
        server.shutdown()
        server.server_close()


async def test_the_default_exporter_sends_the_session_tree(
    ingest: tuple[str, list[tuple[dict[str, str], Any]]],
) -> None:
    endpoint, received = ingest
    processor = BatchTraceProcessor(BackendSpanExporter(api_key="sk-test", endpoint=endpoint))
    set_trace_processors([processor])
    try:
        await run_call(
            lambda session: traced(session, workflow_name=WORKFLOW, correlate_server_trace=True),
            vad_events=True,
        )
        processor.force_flush()
    finally:
        processor.shutdown()

    assert received, "nothing was exported"
    assert all(headers["Authorization"] == "Bearer sk-test" for headers, _ in received)
    items = [item for _, body in received for item in body["data"]]
    (trace,) = [item for item in items if item["object"] == "trace"]
    assert trace["workflow_name"] == WORKFLOW
    assert trace["group_id"]  # shared with the server-side trace
    assert SERVER_SESSION_ID in json.dumps(trace.get("metadata"))

    spans = [item for item in items if item["object"] == "trace.span"]
    assert {span["trace_id"] for span in spans} == {trace["id"]}
    by_id = {span["id"]: span for span in spans}

    def kind(span: dict[str, Any]) -> str:
        data = span["span_data"]
        return str(data.get("data", {}).get("sdk_span_type") or data["type"])

    def describe(span: dict[str, Any]) -> str:
        data = span["span_data"]
        if kind(span) == "handoff":
            return f"handoff {data['from_agent']}->{data['to_agent']}"
        if kind(span) == "turn":  # newer span kinds export as "custom", details in "data"
            return f"turn {data['data']['turn']} {data['data']['agent_name']}"
        if kind(span) == "task":
            return f"task {data['data']['name']}"
        if kind(span) == "generation":
            return f"generation {data['model']}"
        if kind(span) == "transcription":
            return f"transcription {data['output']}"
        return f"{kind(span)} {data['name']}"

    def parent(span: dict[str, Any]) -> str:
        return describe(by_id[span["parent_id"]]) if span["parent_id"] else "trace"

    assert sorted((describe(span), parent(span)) for span in spans) == sorted(
        [
            (f"task {WORKFLOW}", "trace"),
            ("agent Greeter", f"task {WORKFLOW}"),
            ("agent Specialist", f"task {WORKFLOW}"),
            ("turn 1 Greeter", "agent Greeter"),
            ("turn 2 Greeter", "agent Greeter"),
            ("turn 3 Specialist", "agent Specialist"),
            ("turn 4 Specialist", "agent Specialist"),
            *[(f"generation {MODEL}", f"turn {n} {agent}") for n, agent in TURN_AGENTS],
            (f"transcription {CALLER_SAID}", "agent Specialist"),
            (f"transcription {CUT_IN_SAID}", "agent Specialist"),
            ("function get_weather", "agent Greeter"),
            ("handoff Greeter->Specialist", "agent Greeter"),
        ]
    )
    assert all(span["ended_at"] and span["error"] is None for span in spans)
    turns = sorted(
        (span["span_data"]["data"] for span in spans if kind(span) == "turn"),
        key=lambda data: data["turn"],
    )
    assert [data["usage"]["total_tokens"] for data in turns] == list(TURN_TOKENS)
    (session,) = [span for span in spans if kind(span) == "task"]
    assert session["span_data"]["data"]["usage"]["total_tokens"] == SESSION_TOKENS

    # the payload of the caller's spoken turn: as the span data exports it
    generations = sorted(
        (span for span in spans if kind(span) == "generation"), key=lambda s: s["started_at"]
    )
    settings = {key: value for key, value in SETTINGS.items() if key != "model_name"}
    assert generations[-1]["span_data"] == {
        "type": "generation",
        "model": MODEL,
        "model_config": settings,
        "input": [{"role": "user", "content": CALLER_SAID}],
        "output": [{"role": "assistant", "content": ANSWER_SAID}],
        "usage": {
            "requests": 1,
            "input_tokens": 50,
            "output_tokens": 12,
            "total_tokens": 62,
            "input_text_tokens": 50,
            "input_audio_tokens": 0,
            "cached_input_tokens": 0,
            "output_text_tokens": 12,
            "output_audio_tokens": 0,
        },
    }
    assert generations[0]["span_data"]["output"][0]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Oslo"}',
    }
    transcriptions = sorted(
        (span for span in spans if kind(span) == "transcription"), key=lambda s: s["started_at"]
    )
    assert transcriptions[0]["span_data"] == {
        "type": "transcription",
        "input": {"data": "", "format": "pcm"},
        "output": CALLER_SAID,
        "model": TRANSCRIPTION_MODEL,
        "model_config": None,
    }
    # the turn the caller cut into: its latencies as keys of its data
    answer = turns[-1]
    assert answer["interrupted"] is True and answer["cut_off"] is False
    assert answer["response_id"] == "resp_4"
    assert answer["audio_generated_ms"] == ANSWER_AUDIO_MS
    assert 0 <= answer["audio_heard_ms"] < ANSWER_AUDIO_MS
    assert answer["silence_duration_ms"] == 500
    for key in ("voice_to_voice_ms", "time_to_first_audio_ms", "transcription_delay_ms"):
        assert answer[key] >= 0, key
    assert "time_to_first_text_ms" not in answer  # an audio response: no text deltas
    summary = session["span_data"]["data"]
    assert (summary["turns"], summary["interruptions"]) == (4, 1)
    assert summary["voice_to_voice_median_ms"] == answer["voice_to_voice_ms"]  # one v2v
