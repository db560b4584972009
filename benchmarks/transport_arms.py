"""The arms of the transport benchmark: one tracer set-up each, made in its own process.

Instrumentors patch ``RealtimeSession`` for the whole process, so each arm lives in a
worker process of its own (:mod:`transport_worker`) and is set up once there by
:func:`setup`. Every arm starts from the same state: the SDK's default processor (which
would export to the OpenAI API) is replaced, nothing leaves the machine.

=================  ==========================================================================
arm                what is installed
=================  ==========================================================================
untraced           the SDK's ``BatchTraceProcessor`` with a dropping exporter; no tracer
realtime-spans     the same processor; ``traced(session)`` (the library's defaults)
rs+audio           the same with ``traced(session, include_audio=True)``, when the
                   installed library has that option (else the arm is not run)
openinference      ``openinference-instrumentation-openai-agents``'
                   ``OpenAIAgentsInstrumentor().instrument(tracer_provider=...)``: its own
                   realtime patch (``_put_event``, ``send_audio``, ``close``) active
openllmetry        ``opentelemetry-instrumentation-openai-agents``' (Traceloop's)
                   ``OpenAIAgentsInstrumentor().instrument(tracer_provider=...)``: its own
                   realtime patch (``__aenter__``, ``__aexit__``, ``_put_event``,
                   ``send_message``) active
rs+phoenix         the README's Phoenix set-up: OpenInference's instrumentor,
                   ``unwrap_competing_instrumentation()``, then ``traced(session)``:
                   OpenInference's processor renders realtime-spans' spans
=================  ==========================================================================

OpenTelemetry arms use an SDK ``TracerProvider`` with a ``BatchSpanProcessor`` (what
every exporter guide sets up) into an exporter that counts spans and keeps none. Each arm
also names its *tracing calls*: the synchronous functions through which the tracer runs
on the event loop, which :mod:`transport_worker` can wrap to attribute event-loop stalls.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

ARMS = ("untraced", "realtime-spans", "rs+audio", "openinference", "openllmetry", "rs+phoenix")
#: A second untraced arm (``--aa``): its ratio to untraced is the noise floor of the run.
AA = "untraced-aa"

#: What each arm is, for the report.
DESCRIPTIONS = {
    "untraced": "no tracer (the SDK's BatchTraceProcessor registered, idle)",
    AA: "untraced again, in a worker of its own: the A/A noise floor",
    "realtime-spans": "traced(session): SDK spans -> BatchTraceProcessor, dropping exporter",
    "rs+audio": "traced(session, include_audio=True), same processor",
    "openinference": "OpenInference's own realtime patch -> OTel BatchSpanProcessor",
    "openllmetry": "OpenLLMetry's (Traceloop) own realtime patch -> OTel BatchSpanProcessor",
    "rs+phoenix": (
        "README's Phoenix set-up: OpenInference instrumentor + unwrap + traced(session)"
        " -> OTel BatchSpanProcessor"
    ),
}


def has_include_audio() -> bool:
    """Whether the installed realtime-spans has the ``include_audio`` option.

    Example:
        >>> isinstance(has_include_audio(), bool)
        True
    """
    import attrs

    from realtime_spans.adapters._options import Options

    return "include_audio" in attrs.fields_dict(Options)


def available_arms(*, aa: bool = False) -> list[str]:
    """The arms this installation can run (``rs+audio`` only with ``include_audio``);
    with ``aa``, the A/A arm too."""
    found = [arm for arm in ARMS if arm != "rs+audio" or has_include_audio()]
    return [*found, AA] if aa else found


@dataclass
class Setup:
    """One arm, installed in this process."""

    name: str
    wrap: Callable[[Any], Any]
    count_spans: Callable[[], Counter[str]]
    tracing_calls: list[tuple[Any, str]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


class _DroppingSdkExporter:
    """The SDK-side exporter: counts what it is given by span type, keeps nothing."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()

    def export(self, items: Sequence[Any]) -> None:
        for item in items:
            data = getattr(item, "span_data", None)
            self.kinds["trace" if data is None else data.type] += 1


def _sdk_processor() -> tuple[Any, _DroppingSdkExporter]:
    from agents.tracing import set_trace_processors
    from agents.tracing.processor_interface import TracingExporter
    from agents.tracing.processors import BatchTraceProcessor

    exporter = _DroppingSdkExporter()

    class Exporter(TracingExporter):
        def export(self, items: list[Any]) -> None:
            exporter.export(items)

    processor = BatchTraceProcessor(Exporter())
    set_trace_processors([processor])
    return processor, exporter


def _sdk_counter(processor: Any, exporter: _DroppingSdkExporter) -> Callable[[], Counter[str]]:
    def count() -> Counter[str]:
        processor.force_flush()
        kinds = exporter.kinds
        exporter.kinds = Counter()
        return kinds

    return count


def _otel_provider() -> tuple[Any, Callable[[], Counter[str]]]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class CountingExporter(SpanExporter):
        """Counts exported spans by name; keeps none (no network, no growth)."""

        def __init__(self) -> None:
            self.names: Counter[str] = Counter()

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            for span in spans:
                self.names[span.name] += 1
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            """Nothing to release."""

    exporter = CountingExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))

    def count() -> Counter[str]:
        provider.force_flush()
        names = exporter.names
        exporter.names = Counter()
        return names

    return provider, count


def _methods(owner: Any) -> list[tuple[Any, str]]:
    """Every plain function defined on ``owner`` itself (a class), by name."""
    return [
        (owner, name)
        for name, value in vars(owner).items()
        if callable(value) and not isinstance(value, type) and not name.startswith("__")
    ]


def _realtime_spans_calls() -> list[tuple[Any, str]]:
    """realtime-spans on the loop: the event queue's ``_put`` (every session event, audio
    included), and every method of the session tap (entry, agent switches, tool tasks,
    tool outputs, close), which run the core and the sink inside them."""
    tap = importlib.import_module("realtime_spans.adapters._tap")
    calls = [(tap.TappedEventQueue, "_put")]
    calls.extend(_methods(tap.SessionTap))
    return calls


def _traced(options: dict[str, Any]) -> Callable[[Any], Any]:
    from realtime_spans.adapters import traced

    def wrap(session: Any) -> Any:
        return traced(session, **options)

    return wrap


def _untraced() -> Setup:
    processor, exporter = _sdk_processor()
    return Setup("untraced", lambda session: session, _sdk_counter(processor, exporter))


def _realtime_spans(name: str, **options: Any) -> Setup:
    processor, exporter = _sdk_processor()
    return Setup(
        name,
        _traced(options),
        _sdk_counter(processor, exporter),
        _realtime_spans_calls(),
        {"options": options},
    )


def _openinference() -> Setup:
    from agents.tracing import set_trace_processors
    from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor

    from realtime_spans.adapters import competing_realtime_instrumentation

    set_trace_processors([])
    provider, count = _otel_provider()
    OpenAIAgentsInstrumentor().instrument(tracer_provider=provider)
    patched = [patch.member for patch in competing_realtime_instrumentation()]
    if not patched:
        raise AssertionError("OpenInference's realtime patch is not active")
    realtime = importlib.import_module("openinference.instrumentation.openai_agents._realtime")
    calls = [
        (realtime, "_dispatch_event"),
        (realtime._RealtimeSessionState, "on_send_audio"),
        (realtime._RealtimeSessionState, "on_session_close"),
    ]
    version = importlib.metadata.version("openinference-instrumentation-openai-agents")
    return Setup(
        "openinference",
        lambda session: session,
        count,
        calls,
        {"version": version, "patched": patched},
    )


def _openllmetry() -> Setup:
    from agents.realtime.session import RealtimeSession
    from agents.tracing import set_trace_processors
    from opentelemetry.instrumentation.openai_agents import OpenAIAgentsInstrumentor

    set_trace_processors([])
    provider, count = _otel_provider()
    OpenAIAgentsInstrumentor().instrument(tracer_provider=provider)
    wrappers = importlib.import_module(
        "opentelemetry.instrumentation.openai_agents._realtime_wrappers"
    )
    patched = [
        name
        for name in ("__aenter__", "__aexit__", "_put_event", "send_message")
        if getattr(vars(RealtimeSession)[name], "__module__", "") == wrappers.__name__
    ]
    if "_put_event" not in patched:
        raise AssertionError("OpenLLMetry's realtime patch is not active")
    version = importlib.metadata.version("opentelemetry-instrumentation-openai-agents")
    return Setup(
        "openllmetry",
        lambda session: session,
        count,
        _methods(wrappers.RealtimeTracingState),
        {"version": version, "patched": patched},
    )


def _phoenix() -> Setup:
    from agents.tracing import set_trace_processors
    from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor

    from realtime_spans.adapters import (
        competing_realtime_instrumentation,
        unwrap_competing_instrumentation,
    )

    set_trace_processors([])
    provider, count = _otel_provider()
    OpenAIAgentsInstrumentor().instrument(tracer_provider=provider)
    undone = [patch.member for patch in unwrap_competing_instrumentation()]
    if not undone or competing_realtime_instrumentation():
        raise AssertionError("OpenInference's realtime patch was not undone")
    processor = importlib.import_module("openinference.instrumentation.openai_agents._processor")
    version = importlib.metadata.version("openinference-instrumentation-openai-agents")
    return Setup(
        "rs+phoenix",
        _traced({}),
        count,
        [*_realtime_spans_calls(), *_methods(processor.OpenInferenceTracingProcessor)],
        {"version": version, "unwrapped": undone},
    )


def setup(name: str) -> Setup:
    """Install arm ``name`` in this process (once: instrumentors patch globally)."""
    import importlib.metadata  # noqa: F401 - used by the peers' set-ups

    if name in ("untraced", AA):
        return _untraced()
    if name == "realtime-spans":
        return _realtime_spans(name)
    if name == "rs+audio":
        return _realtime_spans(name, include_audio=True)
    if name == "openinference":
        return _openinference()
    if name == "openllmetry":
        return _openllmetry()
    if name == "rs+phoenix":
        return _phoenix()
    raise ValueError(f"unknown arm {name!r}; arms: {', '.join(ARMS)}")
