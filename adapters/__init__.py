"""Realtime-spans for the OpenAI Agents SDK: traces for ``RealtimeSession``.

One line gives a realtime session the trace a ``Runner`` run already has: a session span,
agent spans (switching on handoffs and ``update_agent()``), turns, tool calls, handoffs
and guardrails, seen by every registered tracing processor.

Example:
    ```python
    from agents.realtime import RealtimeAgent, RealtimeRunner
    from realtime_spans.adapters import traced

    async with traced(await RealtimeRunner(agent).run()) as session:
        await session.send_message("Hello")
        async for event in session:
            ...
    ```
"""

from ._api import instrument, is_instrumented, traced, uninstrument
from ._audio import wav_bytes, wav_data_uri
from ._options import DEFAULT_WORKFLOW_NAME
from ._peers import (
    CompetingInstrumentationWarning,
    competing_realtime_instrumentation,
    unwrap_competing_instrumentation,
)
from ._sink import (
    RealtimeFunctionSpanData,
    RealtimeSpeechSpanData,
    RealtimeTranscriptionSpanData,
    RealtimeTurnSpanData,
)
from ._version import __version__
from .recording import SpanRecorder

__all__ = [
    "__version__",
    "DEFAULT_WORKFLOW_NAME",
    "CompetingInstrumentationWarning",
    "competing_realtime_instrumentation",
    "unwrap_competing_instrumentation",
    "RealtimeFunctionSpanData",
    "RealtimeSpeechSpanData",
    "RealtimeTranscriptionSpanData",
    "RealtimeTurnSpanData",
    "SpanRecorder",
    "instrument",
    "is_instrumented",
    "traced",
    "uninstrument",
    "wav_bytes",
    "wav_data_uri",
]
