"""The OpenTelemetry project's GenAI instrumentation (``opentelemetry-instrumentation-openai-
agents-v2``, checked in 0.1.0): a traced realtime session through its tracing processor
into the OpenTelemetry SDK's in-memory exporter, read back as ``gen_ai.*`` spans.

Its processor makes one OpenTelemetry span per SDK span, parented by the SDK's parent ids
(the trace becomes a root span named after the workflow), and maps by span data type:
``agent`` -> ``invoke_agent <name>``, ``function`` -> ``execute_tool <name>``, ``handoff``
-> ``agent_handoff``, ``guardrail`` -> ``guardrail_check``, ``generation`` -> ``chat``
(or ``text_completion``), ``transcription``, ``speech`` -> ``speech_generation``.
:func:`expected` below is that mapping, span for span, as these tests hold it to; a new
kind of span realtime-spans emits gets its line there.

What is its own, not realtime-spans' (0.1.0):

* session (``task``) and ``turn`` spans, SDK types it predates, come out named
  ``unknown`` with ``gen_ai.operation.name = "unknown"``, and without the turns' usage;
* every span but an agent's carries ``gen_ai.agent.name = "OpenAI Agent"`` (the
  instrumentor's default), and a handoff is named ``agent_handoff OpenAI Agent``;
* it maps token usage from generation spans only, and removes ``total_tokens`` from that
  span's usage dict in place (processors exporting later see the usage without it);
* from transcription and speech spans it reads attribute names the SDK's span data do not
  have (``format``, ``transcript``, ``voice``, ``input_text``): only the operation, the
  model and the output type come through, no transcript or text.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from agents.tracing import (
    Span,
    generation_span,
    set_trace_processors,
    speech_span,
    trace,
    transcription_span,
)
from opentelemetry.instrumentation.openai_agents import OpenAIAgentsInstrumentor
from opentelemetry.sdk.trace import ReadableSpan

from realtime_spans.adapters import SpanRecorder, competing_realtime_instrumentation, traced
from realtime_spans.adapters.demo import WORKFLOW as DEMO_WORKFLOW
from realtime_spans.adapters.demo import run_demo

from ..conftest import OtelPipeline
from ..otel_trees import attribute, nesting_problems, parent_id, span_id, tree
from ..scenario import (
    ANSWER_SAID,
    CALLER_SAID,
    CITY,
    CUT_IN_SAID,
    MODEL,
    TRANSCRIPTION_MODEL,
    TURN_TOKENS,
    WEATHER,
    WORKFLOW,
    run_call,
)

OP = "gen_ai.operation.name"
#: What the instrumentor puts on every span that is not an agent's (its defaults).
DEFAULT_AGENT = "OpenAI Agent"

#: The scenario's call as it shows it: span name [gen_ai.operation.name], by depth.
CALL_TREE = [
    f"{WORKFLOW} [invoke_agent]",  # the trace
    "  unknown [unknown]",  # the session (task) span
    "    invoke_agent Greeter [invoke_agent]",
    f"      agent_handoff {DEFAULT_AGENT} [agent_handoff]",
    "      execute_tool get_weather [execute_tool]",
    "      unknown [unknown]",  # turn 1
    f"        chat {MODEL} [chat]",
    "      unknown [unknown]",  # turn 2
    f"        chat {MODEL} [chat]",
    "    invoke_agent Specialist [invoke_agent]",
    f"      transcription {TRANSCRIPTION_MODEL} [transcription]",
    f"      transcription {TRANSCRIPTION_MODEL} [transcription]",
    "      unknown [unknown]",  # turn 3
    f"        chat {MODEL} [chat]",
    "      unknown [unknown]",  # turn 4
    f"        chat {MODEL} [chat]",
]


#: Whether each generation span (by SDK span id) had input messages when it started: the
#: processor names its span then ("chat" with messages, else "text_completion"), and
#: renames it at the end only when the span has a model; ``gen_ai.operation.name`` is set
#: again from the final data (realtime-spans' generations get their input later).
CHAT_AT_START: dict[str, bool] = {}


class _InputAtStart(SpanRecorder):
    def on_span_start(self, span: Span[Any]) -> None:
        data = span.span_data
        if data.type == "generation":
            first = data.input[0] if data.input else None
            CHAT_AT_START[span.span_id] = isinstance(first, dict) and "role" in first


@pytest.fixture
def genai(otel: OtelPipeline, recorder: SpanRecorder) -> Iterator[OpenAIAgentsInstrumentor]:
    """Its instrumentor, its processor after a recording one (what the SDK itself saw)."""
    CHAT_AT_START.clear()
    set_trace_processors([recorder, _InputAtStart()])
    instrumentor = OpenAIAgentsInstrumentor()
    instrumentor.instrument(tracer_provider=otel.provider)
    try:
        yield instrumentor
    finally:
        instrumentor.uninstrument()


def _label(span: ReadableSpan) -> str:
    return f"{span.name} [{attribute(span, OP)}]"


def _output_messages(span: Any) -> list[tuple[str, str]]:
    """(role, text) of each SDK message with words in it."""
    return [
        (message["role"], message["content"])
        for message in span or ()
        if isinstance(message, dict) and isinstance(message.get("content"), str)
    ]


def expected(span: Span[Any]) -> tuple[str, dict[str, Any]]:
    """The OpenTelemetry span name and the ``gen_ai.*`` attributes its processor makes
    of one of realtime-spans' SDK spans (what the tests check; see the module docstring)."""
    data = span.span_data
    kind = data.type
    if kind == "agent":
        return f"invoke_agent {data.name}", {OP: "invoke_agent", "gen_ai.agent.name": data.name}
    common = {"gen_ai.agent.name": DEFAULT_AGENT}
    if kind == "function":
        attributes = {
            OP: "execute_tool",
            "gen_ai.tool.name": data.name,
            "gen_ai.tool.type": "function",
            "gen_ai.tool.call.id": data.call_id,
        }
        if data.input is not None:
            attributes["gen_ai.tool.call.arguments"] = data.input
        if data.output is not None:
            attributes["gen_ai.tool.call.result"] = str(data.output)
        return f"execute_tool {data.name}", common | attributes
    if kind == "handoff":
        attributes = {
            OP: "agent_handoff",
            "gen_ai.handoff.from_agent": data.from_agent,
            "gen_ai.handoff.to_agent": data.to_agent,
        }
        return f"agent_handoff {DEFAULT_AGENT}", common | attributes
    if kind == "guardrail":
        attributes = {
            OP: "guardrail_check",
            "gen_ai.guardrail.name": data.name,
            "gen_ai.guardrail.triggered": data.triggered,
        }
        return "guardrail_check", common | attributes
    if kind == "generation":
        first = data.input[0] if data.input else None
        operation = "chat" if isinstance(first, dict) and "role" in first else "text_completion"
        attributes = {OP: operation}
        if data.model:
            attributes["gen_ai.request.model"] = data.model
        usage = data.usage or {}
        for key in ("input_tokens", "output_tokens"):
            if usage.get(key) is not None:
                attributes[f"gen_ai.usage.{key}"] = usage[key]
        # renamed at the end from the final data only when a model is known
        at_start = "chat" if CHAT_AT_START[span.span_id] else "text_completion"
        name = f"{operation} {data.model}" if data.model else at_start
        return name, common | attributes
    if kind == "transcription":
        attributes = {OP: "transcription", "gen_ai.output.type": "text"}
        if data.model:
            attributes["gen_ai.request.model"] = data.model
        return (f"transcription {data.model}" if data.model else "transcription"), common | (
            attributes
        )
    if kind == "speech":
        attributes = {OP: "speech_generation", "gen_ai.output.type": "speech"}
        if data.model:
            attributes["gen_ai.request.model"] = data.model
        name = f"speech_generation {data.model}" if data.model else "speech_generation"
        return name, common | attributes
    # task and turn: types it does not know (theirs)
    return "unknown", common | {OP: "unknown"}


def check_one_to_one(recorder: SpanRecorder, exported: tuple[ReadableSpan, ...]) -> None:
    """Every SDK span is one OpenTelemetry span, named and attributed as :func:`expected`
    says, under the span its SDK parent became; the trace is the root."""
    (sdk_trace,) = recorder.traces
    roots = [span for span in exported if span.parent is None]
    assert [span.name for span in roots] == [sdk_trace.name]
    assert nesting_problems(exported) == []
    # SDK and OpenTelemetry spans start in the same order (its processor starts one per
    # SDK span, at once); the root is the trace's
    by_start = sorted((s for s in exported if s.parent is not None), key=lambda s: s.start_time)
    sdk_spans = recorder.started
    assert len(by_start) == len(sdk_spans)
    otel_of = {sdk.span_id: otel for sdk, otel in zip(sdk_spans, by_start, strict=True)}
    for sdk, otel in zip(sdk_spans, by_start, strict=True):
        name, attributes = expected(sdk)
        assert otel.name == name, sdk.span_data.export()
        got = {key: attribute(otel, key) for key in attributes}
        assert got == attributes, sdk.span_data.export()
        parent = otel_of[sdk.parent_id] if sdk.parent_id else roots[0]
        assert parent_id(otel) == span_id(parent), name
        assert (otel.status.status_code.name == "ERROR") == (sdk.error is not None), name


# -- the environment -----------------------------------------------------------------------------


def test_this_environment_has_the_genai_processor_and_it_patches_nothing(
    genai: OpenAIAgentsInstrumentor,
) -> None:
    """It and OpenLLMetry install the same import package; this session must hold the
    former. And it is a processor only: nothing on ``RealtimeSession`` to compete with."""
    import importlib.metadata
    import importlib.util

    assert importlib.metadata.version("opentelemetry-instrumentation-openai-agents-v2")
    assert importlib.util.find_spec("opentelemetry.instrumentation.openai_agents.span_processor")
    assert not importlib.util.find_spec(
        "opentelemetry.instrumentation.openai_agents._realtime_wrappers"
    )
    assert competing_realtime_instrumentation() == ()


# -- a traced call through it ------------------------------------------------------------------


async def test_the_call_is_its_tree_of_genai_spans(
    genai: OpenAIAgentsInstrumentor, otel: OtelPipeline, recorder: SpanRecorder
) -> None:
    await run_call(lambda session: traced(session, workflow_name=WORKFLOW))
    exported = otel.exporter.get_finished_spans()
    assert tree(exported, _label) == CALL_TREE
    check_one_to_one(recorder, exported)
    root = next(span for span in exported if span.parent is None)
    assert root.kind.name == "SERVER"
    assert attribute(root, "gen_ai.provider.name") == "openai"


async def test_agent_and_tool_names_and_call_ids(
    genai: OpenAIAgentsInstrumentor, otel: OtelPipeline
) -> None:
    await run_call(lambda session: traced(session, workflow_name=WORKFLOW))
    exported = otel.exporter.get_finished_spans()
    agents = [s for s in exported if attribute(s, OP) == "invoke_agent" and s.parent is not None]
    assert [attribute(s, "gen_ai.agent.name") for s in agents] == ["Greeter", "Specialist"]
    (tool,) = [s for s in exported if attribute(s, OP) == "execute_tool"]
    assert attribute(tool, "gen_ai.tool.name") == "get_weather"
    assert attribute(tool, "gen_ai.tool.call.id") == "call_weather"
    assert json.loads(attribute(tool, "gen_ai.tool.call.arguments")) == {"city": CITY}
    assert attribute(tool, "gen_ai.tool.call.result") == WEATHER
    (handoff,) = [s for s in exported if attribute(s, OP) == "agent_handoff"]
    assert attribute(handoff, "gen_ai.handoff.from_agent") == "Greeter"
    assert attribute(handoff, "gen_ai.handoff.to_agent") == "Specialist"
    greeter = agents[0]
    assert parent_id(tool) == parent_id(handoff) == span_id(greeter)


async def test_token_usage(
    genai: OpenAIAgentsInstrumentor, otel: OtelPipeline, recorder: SpanRecorder
) -> None:
    """It maps usage from generation spans only: the ``gen_ai.usage.*`` it exports are
    exactly the generation spans' usage. The turns' usage (on realtime-spans' turn spans)
    does not come through: it knows no turn span (its limitation)."""
    await run_call(lambda session: traced(session, workflow_name=WORKFLOW))
    exported = otel.exporter.get_finished_spans()
    generations = [s for s in recorder.started if s.span_data.type == "generation"]
    for key in ("input_tokens", "output_tokens"):
        mapped = [
            attribute(s, f"gen_ai.usage.{key}")
            for s in sorted(exported, key=lambda s: s.start_time)
            if attribute(s, f"gen_ai.usage.{key}") is not None
        ]
        assert mapped == [(g.span_data.usage or {}).get(key) for g in generations]
    turns = [s for s in recorder.started if s.span_data.type == "turn"]
    assert [t.span_data.usage["total_tokens"] for t in turns] == list(TURN_TOKENS)
    unknown = [s for s in exported if attribute(s, OP) == "unknown"]
    assert len(unknown) == len(turns) + 1  # the turns and the session span
    assert not any(key.startswith("gen_ai.usage") for s in unknown for key in s.attributes or {})


async def test_no_tool_data_without_sensitive_data(
    genai: OpenAIAgentsInstrumentor, otel: OtelPipeline
) -> None:
    await run_call(lambda s: traced(s, workflow_name=WORKFLOW, include_sensitive_data=False))
    (tool,) = [s for s in otel.exporter.get_finished_spans() if attribute(s, OP) == "execute_tool"]
    assert attribute(tool, "gen_ai.tool.call.id") == "call_weather"
    assert attribute(tool, "gen_ai.tool.call.arguments") is None
    assert attribute(tool, "gen_ai.tool.call.result") is None


async def test_every_kind_of_span_of_the_demo_maps_one_to_one(
    genai: OpenAIAgentsInstrumentor, otel: OtelPipeline, recorder: SpanRecorder
) -> None:
    """The demo's session (a tripped guardrail too), span for span."""
    await run_demo(recorder)
    exported = otel.exporter.get_finished_spans()
    kinds = {span.span_data.type for span in recorder.started}
    assert {"task", "agent", "turn", "function", "handoff", "guardrail"} <= kinds
    check_one_to_one(recorder, exported)
    (guardrail,) = [s for s in exported if attribute(s, OP) == "guardrail_check"]
    assert attribute(guardrail, "gen_ai.guardrail.triggered") is True
    assert next(s for s in exported if s.parent is None).name == DEMO_WORKFLOW


# -- the span types a realtime conversation adds: how it maps them -------------------------------


def test_how_it_maps_generation_transcription_and_speech_spans(
    genai: OpenAIAgentsInstrumentor, otel: OtelPipeline, recorder: SpanRecorder
) -> None:
    """SDK spans made with the SDK's own factories, shaped as realtime-spans' conversation
    spans are (chat-completions messages, usage with details, a transcript, spoken text):
    what its processor makes of each, attribute by attribute. Pins its behaviour (0.1.0)
    for the conversation's spans; :func:`expected` agrees with it."""
    usage = {
        "requests": 1,
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
        "input_tokens_details": {"audio_tokens": 4},
        "output_tokens_details": {"audio_tokens": 3},
    }
    with trace("conversation"):
        config = {"temperature": 0.8, "voice": "alloy", "max_response_output_tokens": 100}
        with generation_span(model="gpt-realtime", model_config=config) as generation:
            generation.span_data.input = [
                {"role": "system", "content": "greet"},
                {"role": "user", "content": "Weather in Oslo?"},
                {"role": "tool", "tool_call_id": "c0", "content": "sunny"},
                {"role": "user", "content_length": 7},  # words withheld from traces
            ]
            generation.span_data.output = [
                {"role": "assistant", "content": "Let me check."},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": "{}"},
                        }
                    ],
                },
            ]
            generation.span_data.usage = usage
        with generation_span(model=None) as no_input:
            no_input.span_data.output = [{"role": "assistant", "content": "Hello!"}]
        with transcription_span(model="gpt-4o-transcribe", input_format="pcm16") as heard:
            heard.span_data.output = "Weather in Oslo?"
        with speech_span(model="gpt-realtime", output_format="pcm16") as spoken:
            spoken.span_data.input = "Sunny."

    exported = {span.name: span for span in otel.exporter.get_finished_spans()}
    assert set(exported) == {
        "conversation",
        "chat gpt-realtime",
        "text_completion",
        "transcription gpt-4o-transcribe",
        "speech_generation gpt-realtime",
    }
    for sdk in recorder.started:
        name, attributes = expected(sdk)
        assert {key: attribute(exported[name], key) for key in attributes} == attributes

    chat = exported["chat gpt-realtime"]
    assert chat.kind.name == "CLIENT"
    assert attribute(chat, "gen_ai.request.temperature") == 0.8
    # realtime settings other than the sampling ones have no gen_ai.request.* name
    assert not {k for k in chat.attributes or {} if "voice" in k or "max_response" in k}
    assert json.loads(attribute(chat, "gen_ai.system_instructions")) == [
        {"type": "text", "content": "greet"}
    ]
    assert json.loads(attribute(chat, "gen_ai.input.messages")) == [
        {"role": "system", "parts": [{"type": "text", "content": "greet"}]},
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Oslo?"}]},
        {
            "role": "tool",
            "parts": [
                {"type": "text", "content": "sunny"},
                {"type": "tool_call_response", "id": "c0", "result": "sunny"},
            ],
        },
        # the withheld message is dropped
    ]
    # all output messages become one assistant message; a tool call is a Python repr
    (said,) = json.loads(attribute(chat, "gen_ai.output.messages"))
    assert said["role"] == "assistant"
    assert said["parts"][0] == {"type": "text", "content": "Let me check."}
    assert said["parts"][1]["content"].startswith("{'role': 'assistant', 'tool_calls'")
    assert attribute(chat, "gen_ai.output.type") == "text"
    # it took total_tokens out of the span's own usage dict
    assert generation.span_data.usage == {k: v for k, v in usage.items() if k != "total_tokens"}
    assert "gen_ai.usage.total_tokens" not in (chat.attributes or {})

    # no messages in, no model: text_completion, named so
    assert attribute(exported["text_completion"], OP) == "text_completion"
    # no transcript, no spoken text, no audio format
    for name in ("transcription gpt-4o-transcribe", "speech_generation gpt-realtime"):
        keys = set(exported[name].attributes or {})
        assert not {k for k in keys if "transcri" in k.split(".")[-1] or "text" in k}, keys
        assert not {k for k in keys if "format" in k or "voice" in k}, keys


def test_the_session_is_unaffected_by_it(
    genai: OpenAIAgentsInstrumentor, otel: OtelPipeline
) -> None:
    """Same events with and without its processor (it touches no session member)."""
    from tests.support import event_signature, handoff_steps, make_agents, run_script

    def run() -> list[tuple[str, ...]]:
        greeter, _ = make_agents()
        seen, _ = asyncio.run(run_script(greeter, handoff_steps(), trace=traced))
        return event_signature(seen)

    with_it = run()
    genai.uninstrument()
    without = run()
    assert with_it == without
    assert otel.exporter.get_finished_spans()  # it did see the first session


async def test_the_callers_words_and_the_answer_are_its_input_and_output_messages(
    genai: OpenAIAgentsInstrumentor, otel: OtelPipeline
) -> None:
    """The caller's spoken turn: ``gen_ai.input.messages``/``gen_ai.output.messages`` in its
    role+parts shape. The transcription spans keep only the model: the transcript is
    dropped (its processor reads no output of a transcription); turns and the session are
    "unknown" spans without latencies or summary."""
    await run_call(lambda session: traced(session, workflow_name=WORKFLOW), vad_events=True)
    exported = sorted(otel.exporter.get_finished_spans(), key=lambda s: s.start_time or 0)
    chats = [s for s in exported if attribute(s, OP) == "chat"]
    assert json.loads(attribute(chats[-1], "gen_ai.input.messages")) == [
        {"role": "user", "parts": [{"type": "text", "content": CALLER_SAID}]}
    ]
    assert json.loads(attribute(chats[-1], "gen_ai.output.messages")) == [
        {"role": "assistant", "parts": [{"type": "text", "content": ANSWER_SAID}]}
    ]
    # an answer that is only a tool call: its processor writes the whole message as text
    # (Python repr), no tool_call part
    (part,) = json.loads(attribute(chats[0], "gen_ai.output.messages"))[0]["parts"]
    assert part["type"] == "text" and part["content"].startswith("{'role': 'assistant'")
    transcriptions = [s for s in exported if attribute(s, OP) == "transcription"]
    assert len(transcriptions) == 2
    everything = json.dumps([dict(s.attributes or {}) for s in exported])
    assert CUT_IN_SAID not in everything
    for key in ("voice_to_voice_ms", "audio_heard_ms", "interruptions"):
        assert key not in everything
