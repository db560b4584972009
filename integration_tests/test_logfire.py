"""Logfire: ``logfire.instrument_openai_agents()`` (which wraps the SDK's trace provider)
with realtime-spans, configured to send nothing anywhere: spans go to an in-memory
exporter, no token is needed and no connection is attempted (the ``no_network`` fixture
refuses and records every one)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import logfire
import pytest
from agents.tracing import set_trace_processors
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from realtime_spans.adapters import SpanRecorder, traced

from .conftest import NetworkGuard
from .otel_trees import attribute, nesting_problems, trace_id, tree
from .scenario import CITY, SESSION_TOKENS, TURN_TOKENS, WEATHER, WORKFLOW, run_call


@pytest.fixture(scope="module")
def logfire_exporter(tmp_path_factory: pytest.TempPathFactory) -> InMemorySpanExporter:
    """Logfire configured once for the module: local only, into memory."""
    exporter = InMemorySpanExporter()
    with pytest.MonkeyPatch.context() as env:
        for name in ("LOGFIRE_TOKEN", "LOGFIRE_SEND_TO_LOGFIRE", "LOGFIRE_CONSOLE"):
            env.delenv(name, raising=False)
        logfire.configure(
            send_to_logfire=False,
            console=False,
            metrics=False,
            inspect_arguments=False,
            data_dir=tmp_path_factory.mktemp("logfire"),
            additional_span_processors=[SimpleSpanProcessor(exporter)],
        )
    return exporter


@pytest.fixture
def exported(
    logfire_exporter: InMemorySpanExporter, recorder: SpanRecorder
) -> Iterator[InMemorySpanExporter]:
    """Logfire's OpenAI Agents integration on, next to a recording processor; the SDK's
    own provider comes back after the test (``clean_sdk_tracing``)."""
    set_trace_processors([recorder])
    logfire.instrument_openai_agents()
    logfire_exporter.clear()
    yield logfire_exporter
    logfire_exporter.clear()


def _message(span: ReadableSpan) -> str:
    return str(attribute(span, "logfire.msg"))


def _json(span: ReadableSpan, key: str) -> Any:
    value = attribute(span, key)
    return json.loads(value) if isinstance(value, str) else value


def _one(spans: list[ReadableSpan], message: str) -> ReadableSpan:
    (span,) = [span for span in spans if _message(span) == message]
    return span


EXPECTED_TREE = [
    f"OpenAI Agents trace: {WORKFLOW}",
    f"  Task: {WORKFLOW}",
    "    Agent run: 'Greeter'",
    "      Function: get_weather",
    "      Handoff: Greeter → Specialist",
    "      Turn 1 for agent Greeter",
    "      Turn 2 for agent Greeter",
    "    Agent run: 'Specialist'",
    "      Turn 3 for agent Specialist",
]


async def test_the_call_arrives_as_one_logfire_trace_with_the_session_tree(
    exported: InMemorySpanExporter, recorder: SpanRecorder, no_network: NetworkGuard
) -> None:
    await run_call(lambda session: traced(session, workflow_name=WORKFLOW))
    spans = list(exported.get_finished_spans())

    assert len({trace_id(span) for span in spans}) == 1
    assert tree(spans, _message) == EXPECTED_TREE
    assert nesting_problems(spans) == []
    assert recorder.open_spans == []
    assert no_network.attempts == []

    (sdk_trace,) = recorder.traces
    root = _one(spans, f"OpenAI Agents trace: {WORKFLOW}")
    assert attribute(root, "agent_trace_id") == sdk_trace.trace_id

    greeter = _one(spans, "Agent run: 'Greeter'")
    assert attribute(greeter, "name") == "Greeter"
    assert _json(greeter, "tools") == ["get_weather"]
    assert _json(greeter, "handoffs") == ["Specialist"]
    assert _json(_one(spans, "Agent run: 'Specialist'"), "tools") == []

    tool = _one(spans, "Function: get_weather")
    assert CITY in attribute(tool, "input")
    assert attribute(tool, "output") == WEATHER

    handoff = _one(spans, "Handoff: Greeter → Specialist")
    assert (attribute(handoff, "from_agent"), attribute(handoff, "to_agent")) == (
        "Greeter",
        "Specialist",
    )

    turns = [
        _one(spans, f"Turn {n} for agent {agent}")
        for n, agent in ((1, "Greeter"), (2, "Greeter"), (3, "Specialist"))
    ]
    assert [attribute(turn, "turn") for turn in turns] == [1, 2, 3]
    assert [_json(turn, "usage")["total_tokens"] for turn in turns] == list(TURN_TOKENS)
    session = _one(spans, f"Task: {WORKFLOW}")
    assert _json(session, "usage")["total_tokens"] == SESSION_TOKENS


async def test_logfire_leaves_the_callers_otel_context_alone(
    exported: InMemorySpanExporter,
) -> None:
    before = otel_context.get_current()
    await run_call(lambda session: traced(session, workflow_name=WORKFLOW))
    assert otel_context.get_current() == before
    assert len(exported.get_finished_spans()) == len(EXPECTED_TREE)


def test_logfire_wrote_no_credentials_or_project_files(
    logfire_exporter: InMemorySpanExporter,
) -> None:
    """``send_to_logfire=False`` needs no token and creates no ``.logfire`` directory."""
    assert not (Path.cwd() / ".logfire").exists()
