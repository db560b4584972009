"""Everything that depends on the openai-agents release, in one place (0.22 and later).

The session tap relies on a few private members of ``RealtimeSession`` that have been
stable since 0.22; they are named here, and :func:`missing_session_members` lets the tap
refuse to instrument an SDK that no longer has them instead of failing mid-session.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from agents.realtime.session import RealtimeSession

_sdk_trace_name: Callable[[Any], str | None] | None
try:  # 0.22+: the name the Runner writes into agent spans
    from agents._tool_identity import get_tool_trace_name_for_tool as _sdk_trace_name
except ImportError:  # pragma: no cover - a future SDK that moved it
    _sdk_trace_name = None

#: Private ``RealtimeSession`` members the tap overrides or reads (present since 0.22).
SESSION_MEMBERS = (
    "__aenter__",
    "_handle_tool_call",
    "_send_pending_tool_output",
    "_send_tool_rejection",
    "_run_tool_input_guardrails",
    "_dispatch_snapshot_from_settings",
    "_cleanup",
)

#: The session's ``asyncio.Queue`` of events (an instance attribute since 0.22): the tap
#: gives the session a :class:`~._tap.TappedEventQueue` in its place before entry.
EVENT_QUEUE_ATTRIBUTE = "_event_queue"


def has_tool_output_guardrails(cls: type[Any]) -> bool:
    """Whether realtime sessions of ``cls`` run tool output guardrails (0.23 and later); the
    tap reports their rejections only there.

    Example:
        >>> isinstance(has_tool_output_guardrails(RealtimeSession), bool)
        True
    """
    return callable(getattr(cls, "_run_tool_output_guardrails", None))


def missing_session_members(cls: type[Any]) -> list[str]:
    """The members the tap needs that ``cls`` lacks (empty on every supported SDK).

    Example:
        >>> missing_session_members(RealtimeSession)
        []
    """
    return [name for name in SESSION_MEMBERS if not callable(getattr(cls, name, None))]


def tool_trace_name(tool: Any) -> str | None:
    """A tool's name as the SDK's ``Runner`` writes it into agent spans.

    Example:
        >>> from agents import function_tool
        >>> @function_tool
        ... def lookup(order: str) -> str:
        ...     return order
        >>> tool_trace_name(lookup)
        'lookup'
    """
    if _sdk_trace_name is not None:
        return _sdk_trace_name(tool)
    name = getattr(tool, "trace_name", None) or getattr(tool, "name", None)  # pragma: no cover
    return name if isinstance(name, str) and name else None  # pragma: no cover


def sensitive_data_default() -> bool:
    """The SDK's default for tracing sensitive data.

    Read as the SDK reads it, from ``OPENAI_AGENTS_TRACE_INCLUDE_SENSITIVE_DATA``.

    Example:
        >>> isinstance(sensitive_data_default(), bool)
        True
    """
    value = os.getenv("OPENAI_AGENTS_TRACE_INCLUDE_SENSITIVE_DATA", "true")
    return value.strip().lower() in ("1", "true", "yes", "on")


def session_has_started(session: RealtimeSession) -> bool:
    """Whether the session was already entered (or closed): too late to trace it.

    Example:
        >>> from agents.realtime import RealtimeAgent
        >>> from agents.realtime.testing import ScriptedRealtimeModel
        >>> session = RealtimeSession(ScriptedRealtimeModel(), RealtimeAgent(name="a"), None)
        >>> session_has_started(session)
        False
    """
    state = vars(session)
    return bool(
        state.get("_current_dispatch_snapshot") is not None
        or state.get("_closing")
        or state.get("_closed")
    )


def model_settings(session: RealtimeSession) -> dict[str, Any]:
    """The settings every agent of the session starts from (run config + initial settings).

    Example:
        >>> from agents.realtime import RealtimeAgent
        >>> from agents.realtime.testing import ScriptedRealtimeModel
        >>> session = RealtimeSession(
        ...     ScriptedRealtimeModel(), RealtimeAgent(name="a"), None,
        ...     model_config={"initial_model_settings": {"tracing": {"workflow_name": "w"}}},
        ... )
        >>> model_settings(session)["tracing"]
        {'workflow_name': 'w'}
    """
    settings = vars(session).get("_base_model_settings")
    return dict(settings) if isinstance(settings, dict) else {}


def model_config(session: RealtimeSession) -> dict[str, Any]:
    """The session's model config (empty when none was given)."""
    config = vars(session).get("_model_config")
    return config if isinstance(config, dict) else {}


def trace_is_current_somewhere(trace: object) -> bool:
    """Whether a trace was made current by ``with trace(...)``/``start(mark_as_current=True)``
    and has not been finished since.

    The SDK keeps no public "finished" flag on traces; a ``TraceImpl`` holds the context
    token of ``start(mark_as_current=True)`` until ``finish(reset_current=True)`` drops it.

    Example:
        >>> from agents.tracing import trace
        >>> with trace("t") as t:
        ...     trace_is_current_somewhere(t)
        True
        >>> trace_is_current_somewhere(t)
        False
    """
    return getattr(trace, "_prev_context_token", None) is not None


def playback_tracker(session: RealtimeSession) -> Any:
    """The ``RealtimePlaybackTracker`` the application gave the session's model config
    (``None``: none, and the transport estimates playback from when audio arrived).

    Example:
        >>> from agents.realtime import RealtimeAgent
        >>> from agents.realtime.model import RealtimePlaybackTracker
        >>> from agents.realtime.testing import ScriptedRealtimeModel
        >>> tracker = RealtimePlaybackTracker()
        >>> session = RealtimeSession(
        ...     ScriptedRealtimeModel(), RealtimeAgent(name="a"), None,
        ...     model_config={"playback_tracker": tracker},
        ... )
        >>> playback_tracker(session) is tracker
        True
    """
    config = vars(session).get("_model_config")
    tracker = config.get("playback_tracker") if isinstance(config, dict) else None
    return tracker if callable(getattr(tracker, "get_state", None)) else None


def run_config(session: RealtimeSession) -> dict[str, Any]:
    """The session's run config (empty when none was given)."""
    config = vars(session).get("_run_config")
    return config if isinstance(config, dict) else {}
