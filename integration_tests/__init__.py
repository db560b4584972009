"""Integration tests: realtime-spans with the tracing processors its users already run
(OpenInference into OpenTelemetry, Logfire), and with OpenInference's own realtime patches.

They need extra packages (``nox -s integrations`` installs them) and no network: the
model is the SDK's ``ScriptedRealtimeModel`` and every exporter is in memory.
"""
