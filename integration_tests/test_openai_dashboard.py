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
from .scenario import SERVER_SESSION_ID, SESSION_TOKENS, TURN_TOKENS, WORKFLOW, run_call


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
            lambda session: traced(session, workflow_name=WORKFLOW, correlate_server_trace=True)
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
