"""End to end: a traced realtime call, exported over OTLP to a real Arize Phoenix server,
read back through Phoenix's REST API and checked as a tree.

Run it with ``nox -s e2e`` (or ``python e2e/phoenix_e2e.py`` where ``arize-phoenix``,
``openinference-instrumentation-openai-agents`` and the OTLP exporter are installed).

1. Phoenix starts on 127.0.0.1 on free ports, in a temporary working directory (its
   SQLite database included), with telemetry, external resources and the agent assistant
   off, under ``offline_guard/sitecustomize.py``: any attempt to reach beyond loopback
   fails at once and is reported.
2. The integration scenario (a greeter calls ``get_weather``, then hands off to a
   specialist; ``integration_tests/scenario.py``) runs traced by realtime-spans, through
   OpenInference's ``OpenAIAgentsInstrumentor`` into an OpenTelemetry SDK tracer provider
   that exports over OTLP/HTTP to Phoenix (and into memory, to compare).
3. ``GET /v1/projects/{project}/spans`` until every span has arrived; then the checks:
   one trace, the exact tree (names, kinds, parent links), the same span ids and parents
   as exported, key attributes, and the caller's spoken turn as an LLM span: the caller's
   transcript its input message, the agent's spoken answer its output message.
4. Phoenix is stopped (SIGTERM, then SIGKILL) whatever happened.

Every wait is bounded (start 120 s, ingestion 30 s, each HTTP call 5 s, the whole run
300 s by a SIGALRM watchdog). Exit status 0 only when every check passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROJECT = "realtime-spans-e2e"
AUDIO_PROJECT = "realtime-spans-e2e-audio"  # the same call, its audio recorded
STARTUP_SECONDS = 120.0
INGEST_SECONDS = 30.0
STOP_SECONDS = 15.0
TOTAL_SECONDS = 300  # a watchdog over everything else, Phoenix's shutdown excepted
HTTP_TIMEOUT = 5.0
NETWORK_LOG = "network-attempts.log"
GUARD_LOADED = "offline-guard-loaded"


class Failed(Exception):
    """A check failed; the message says which."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response:
        return json.load(response)


def phoenix_env(work: Path, port: int, grpc_port: int) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PHOENIX_", "OTEL_"))
        and key.lower() not in ("http_proxy", "https_proxy")
    }
    env.update(
        PHOENIX_WORKING_DIR=str(work),
        PHOENIX_HOST="127.0.0.1",
        PHOENIX_PORT=str(port),
        PHOENIX_GRPC_PORT=str(grpc_port),
        PHOENIX_TELEMETRY_ENABLED="false",
        PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
        PHOENIX_DISABLE_AGENT_ASSISTANT="true",
        PHOENIX_LOG_MIGRATIONS="false",
        PHOENIX_DB_LOGGING_LEVEL="warning",
        NO_PROXY="127.0.0.1,localhost",
        PYTHONPATH=os.pathsep.join(
            [str(Path(__file__).resolve().parent / "offline_guard"), env.get("PYTHONPATH", "")]
        ).rstrip(os.pathsep),
        E2E_NETWORK_LOG=str(work / NETWORK_LOG),
        E2E_GUARD_LOADED=str(work / GUARD_LOADED),
    )
    return env


@contextlib.contextmanager
def phoenix_server(work: Path) -> Iterator[str]:
    """A Phoenix server for the duration of the block; yields its base URL."""
    port, grpc_port = free_port(), free_port()
    network_log = work / NETWORK_LOG
    log_path = work / "phoenix.log"
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "phoenix.server.main", "serve"],
            env=phoenix_env(work, port, grpc_port),
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            started = time.monotonic()
            wait_until_healthy(base, process, started + STARTUP_SECONDS)
            if not (work / GUARD_LOADED).exists():
                raise Failed("the offline guard was not loaded into the Phoenix process")
            print(f"phoenix {get_version(base)} up on {base} in {time.monotonic() - started:.1f} s")
            yield base
            attempts = network_log.read_text().split() if network_log.exists() else []
            if attempts:
                raise Failed(f"Phoenix tried to reach the network: {attempts}")
        except BaseException:
            if network_log.exists():
                print("Phoenix's network attempts:", network_log.read_text(), sep="\n")
            log.flush()
            tail = log_path.read_text(errors="replace").splitlines()[-40:]
            print("---- last lines of the Phoenix log ----", *tail, "----", sep="\n")
            raise
        finally:
            stop(process)


def get_version(base: str) -> str:
    with urllib.request.urlopen(f"{base}/arize_phoenix_version", timeout=HTTP_TIMEOUT) as r:
        return str(r.read().decode().strip())


def wait_until_healthy(base: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Failed(f"Phoenix exited with status {process.returncode} while starting")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{base}/healthz", timeout=HTTP_TIMEOUT) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.25)
    raise Failed(f"Phoenix was not healthy within {STARTUP_SECONDS:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to Phoenix's process group, SIGKILL if it has not exited in time."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_SECONDS)
        # uvicorn shuts down gracefully, then re-raises SIGTERM: -15 is a clean stop
        print(f"phoenix stopped (status {process.returncode})")
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_SECONDS)
        print("phoenix did not stop on SIGTERM: killed")


def export_traced_call(base: str, project: str = PROJECT, **options: Any) -> tuple[list[Any], int]:
    """Run the scripted call traced (with ``options`` for ``traced()``) and export it to
    Phoenix's ``project``; returns the spans as the OpenTelemetry SDK exported them and
    how many SDK spans and traces there were."""
    from agents.tracing import set_trace_processors
    from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from integration_tests.scenario import WORKFLOW, run_call
    from realtime_spans.adapters import SpanRecorder, traced, unwrap_competing_instrumentation

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"openinference.project.name": project}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=5))
    )
    recorder = SpanRecorder()
    set_trace_processors([recorder])  # nothing goes to the OpenAI backend
    detach_errors = _count_records("opentelemetry.context")
    instrumentor = OpenAIAgentsInstrumentor()
    instrumentor.instrument(tracer_provider=provider, exclusive_processor=False)
    # The README's setup: OpenInference exports, realtime-spans alone traces realtime.
    unwrap_competing_instrumentation()
    try:
        asyncio.run(run_call(lambda session: traced(session, workflow_name=WORKFLOW, **options)))
    finally:
        instrumentor.uninstrument()
        provider.force_flush(timeout_millis=10_000)
        provider.shutdown()
        logging.getLogger("opentelemetry.context").removeHandler(detach_errors)
    if detach_errors.count:
        print(
            f"note: OpenTelemetry logged {detach_errors.count} 'Failed to detach context' "
            "errors (known issue: integration_tests/test_openinference.py, xfail)"
        )
    if recorder.open_spans:
        raise Failed(f"{len(recorder.open_spans)} SDK spans left open")
    return list(memory.get_finished_spans()), len(recorder.spans) + len(recorder.traces)


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def _count_records(name: str) -> _Counter:
    """Count a logger's errors instead of printing their tracebacks."""
    counter = _Counter()
    logger = logging.getLogger(name)
    logger.addHandler(counter)
    logger.propagate = False
    return counter


def fetch_spans(base: str, expected: int, project: str = PROJECT) -> list[dict[str, Any]]:
    """Phoenix's spans of ``project``, once ``expected`` of them have been ingested."""
    url = f"{base}/v1/projects/{project}/spans?limit=1000"
    deadline = time.monotonic() + INGEST_SECONDS
    spans: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            spans = list(get_json(url)["data"])
        except urllib.error.HTTPError as error:
            if error.code != 404:  # 404: the project exists once its first span is in
                raise
        if len(spans) >= expected:
            return spans
        time.sleep(0.25)
    raise Failed(f"Phoenix holds {len(spans)} of {expected} spans after {INGEST_SECONDS:.0f} s")


def tree(spans: list[dict[str, Any]]) -> list[str]:
    ids = {span["context"]["span_id"] for span in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        parent = span.get("parent_id")
        children.setdefault(parent if parent in ids else None, []).append(span)

    def label(span: dict[str, Any]) -> str:
        return f"{span['name']} [{span['span_kind']}]"

    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for child in sorted(children.get(parent, []), key=label):
            lines.append("  " * depth + label(child))
            walk(child["context"]["span_id"], depth + 1)

    walk(None, 0)
    return lines


def check(spans: list[dict[str, Any]], exported: list[Any]) -> None:
    from integration_tests.scenario import (
        ANSWER_SAID,
        CALLER_SAID,
        CITY,
        MODEL,
        OPENINFERENCE_TREE,
        WEATHER,
    )

    problems: list[str] = []
    trace_ids = {span["context"]["trace_id"] for span in spans}
    if len(trace_ids) != 1:
        problems.append(f"{len(trace_ids)} traces, expected 1")

    got_tree = tree(spans)
    if got_tree != OPENINFERENCE_TREE:
        problems.append("tree differs:\n" + "\n".join(got_tree))

    as_exported = {
        (
            format(s.context.span_id, "016x"),
            format(s.parent.span_id, "016x") if s.parent else None,
            s.name,
        )
        for s in exported
    }
    in_phoenix = {(s["context"]["span_id"], s.get("parent_id"), s["name"]) for s in spans}
    if in_phoenix != as_exported:
        problems.append(
            f"span ids/parents differ from the export: only in Phoenix {in_phoenix - as_exported}, "
            f"only exported {as_exported - in_phoenix}"
        )

    by_name = {span["name"]: span for span in spans}
    expectations = [
        ("Greeter", "agent.name", "Greeter"),
        ("Specialist", "agent.name", "Specialist"),
        ("Specialist", "graph.node.parent_id", "Greeter"),
        ("get_weather", "tool.name", "get_weather"),
        ("get_weather", "output.value", WEATHER),
        ("handoff to Specialist", "input.value", "Greeter"),
        ("handoff to Specialist", "output.value", "Specialist"),
    ]
    for name, key, value in expectations:
        got = flatten(by_name.get(name, {}).get("attributes", {})).get(key)
        if got != value:
            problems.append(f"{name}: {key} = {got!r}, expected {value!r}")
    tool_input = flatten(by_name.get("get_weather", {}).get("attributes", {})).get("input.value")
    if CITY not in str(tool_input):
        problems.append(f"get_weather: input.value = {tool_input!r}, expected to name {CITY}")
    # the caller's spoken turn: a generation (LLM span) with the caller's transcript as its
    # input message and the agent's spoken answer as its output message
    generations = sorted(
        (span for span in spans if span["name"] == "generation"), key=lambda s: s["start_time"]
    )
    if len(generations) != 4:
        problems.append(f"{len(generations)} generation spans, expected 4 (one per turn)")
    else:
        spoken = flatten(generations[-1].get("attributes", {}))
        if generations[-1].get("span_kind") != "LLM":  # Phoenix returns the kind apart
            problems.append(f"last generation: span_kind = {generations[-1].get('span_kind')!r}")
        for key, value in [
            ("llm.model_name", MODEL),
            ("llm.input_messages.0.message.role", "user"),
            ("llm.input_messages.0.message.content", CALLER_SAID),
            ("llm.output_messages.0.message.role", "assistant"),
            ("llm.output_messages.0.message.content", ANSWER_SAID),
            ("llm.token_count.prompt", 50),
            ("llm.token_count.completion", 12),
        ]:
            if spoken.get(key) != value:
                problems.append(f"last generation: {key} = {spoken.get(key)!r}, expected {value!r}")
        first = flatten(generations[0].get("attributes", {}))
        call = "llm.output_messages.0.message.tool_calls.0.tool_call.function.name"
        if first.get(call) != "get_weather":
            problems.append(f"first generation: {call} = {first.get(call)!r}")
    not_ok = [span["name"] for span in spans if span["status_code"] != "OK"]
    if not_ok:
        problems.append(f"status not OK: {not_ok}")
    if problems:
        raise Failed("\n".join(problems))


def check_audio(spans: list[dict[str, Any]], exported: list[Any]) -> int:
    """Each ``speech`` span read back from Phoenix holds its response's audio, byte for
    byte as exported, as a PCM16 24 kHz WAV ``data:`` URI (``output.audio.url``, OpenInference's
    audio convention), with its mime type and the agent's transcript; returns how many."""
    import base64

    from integration_tests.scenario import ANSWER_SAID

    problems: list[str] = []
    sent = {
        format(s.context.span_id, "016x"): dict(s.attributes or {})
        for s in exported
        if s.name == "speech"
    }
    speeches = [span for span in spans if span["name"] == "speech"]
    if not speeches or len(speeches) != len(sent):
        problems.append(f"{len(speeches)} speech spans in Phoenix, {len(sent)} exported")
    for span in speeches:
        got = flatten(span.get("attributes", {}))
        mine = sent.get(span["context"]["span_id"], {})
        uri = got.get("output.audio.url")
        if not isinstance(uri, str) or not uri.startswith("data:audio/wav;base64,"):
            problems.append(f"speech {span['context']['span_id']}: output.audio.url = {uri!r:.60}")
            continue
        wav = base64.b64decode(uri.split(",", 1)[1])
        if wav[:4] != b"RIFF" or int.from_bytes(wav[24:28], "little") != 24000:
            problems.append("speech: not a PCM16 24 kHz WAV")
        audio = wav[44:]  # the scenario's responses say b"\x00\x01" over and over
        if (
            not audio
            or audio != b"\x00\x01" * (len(audio) // 2)
            or uri != mine.get("output.audio.url")
        ):
            problems.append("speech: the audio differs from the response's, or from the export")
        if got.get("output.audio.mime_type") != "audio/wav":
            problems.append(f"speech: mime type {got.get('output.audio.mime_type')!r}")
        if not isinstance(got.get("output.audio.transcript"), str):
            problems.append("speech: no transcript")
    transcripts = [
        flatten(s.get("attributes", {})).get("output.audio.transcript") for s in speeches
    ]
    if ANSWER_SAID not in transcripts:
        problems.append(f"no speech span's transcript is the spoken answer {ANSWER_SAID!r}")
    if problems:
        raise Failed("\n".join(problems))
    return len(speeches)


def flatten(attributes: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Phoenix may return attributes nested (``{"agent": {"name": ...}}``, lists for
    indexed keys such as ``llm.input_messages``): dot them, list items by index."""
    flat: dict[str, Any] = {}
    for key, value in attributes.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list) and all(isinstance(item, dict) for item in value):
            flat.update(flatten({str(i): item for i, item in enumerate(value)}, f"{name}."))
        else:
            flat[name] = value
    return flat


def _watchdog(signum: int, frame: Any) -> None:
    raise Failed(f"the e2e run took longer than {TOTAL_SECONDS} s")


def main() -> int:
    started = time.monotonic()
    signal.signal(signal.SIGALRM, _watchdog)
    signal.alarm(TOTAL_SECONDS)  # raises Failed wherever it is stuck; Phoenix is still stopped
    try:
        with (
            tempfile.TemporaryDirectory(prefix="phoenix-e2e-") as directory,
            phoenix_server(Path(directory)) as base,
        ):
            exported, expected = export_traced_call(base)
            spans = fetch_spans(base, expected)
            check(spans, exported)
            print(*tree(spans), sep="\n")
            print(f"{len(spans)} spans in Phoenix, tree and parent links as exported")
            exported, expected = export_traced_call(
                base, AUDIO_PROJECT, include_sensitive_data=True, include_audio=True
            )
            heard = check_audio(fetch_spans(base, expected, AUDIO_PROJECT), exported)
            print(
                f"with include_audio: {heard} speech spans hold their WAV, read back from Phoenix"
            )
    except Failed as failure:
        print(f"E2E FAILED: {failure}", file=sys.stderr)
        return 1
    except Exception as error:  # anything unexpected is a failure too, with its traceback
        import traceback

        traceback.print_exc()
        print(f"E2E FAILED: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
    print(f"e2e passed in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
