"""A local Realtime API server for end-to-end tests over the SDK's WebSocket transport.

Test infrastructure only (not part of the installed library). See ``README.md`` here.
"""

from .driving import SpanWatch, agent_ended, events_until, nth, sdk_errors
from .events import (
    InvalidServerEvent,
    audio_message,
    conversation_item_added,
    function_call,
    item_truncated,
    response,
    response_created,
    response_done,
    server_error,
    session_created,
    speech_started,
    usage,
    validate_server_event,
)
from .script import Close, Drop, Encoded, Reply, Script
from .server import API_KEY, ConnectionRecord, RealtimeServer, ServerError, running_server

__all__ = [
    "API_KEY",
    "Close",
    "ConnectionRecord",
    "Drop",
    "Encoded",
    "InvalidServerEvent",
    "RealtimeServer",
    "Reply",
    "Script",
    "ServerError",
    "SpanWatch",
    "agent_ended",
    "audio_message",
    "conversation_item_added",
    "events_until",
    "function_call",
    "item_truncated",
    "nth",
    "response",
    "response_created",
    "response_done",
    "running_server",
    "sdk_errors",
    "server_error",
    "session_created",
    "speech_started",
    "usage",
    "validate_server_event",
]
