"""Render the demo session's trace as a waterfall picture: ``nox -s picture``.

Runs the demo (``realtime_spans.adapters.demo``: a scripted two-agent realtime call,
traced, nothing exported), takes the spans a recording processor saw and draws one row
per span, indented by depth, in tree order, with a bar from its start to its end on a
millisecond axis, coloured by span kind. Writes ``docs/trace.png`` (or the path given).
Fully offline; needs matplotlib.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from agents.tracing import Span, set_trace_processors
from matplotlib.patches import Patch

from realtime_spans.adapters import SpanRecorder
from realtime_spans.adapters.demo import WORKFLOW, run_demo
from realtime_spans.adapters.recording import describe

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "trace.png"

COLOURS = {
    "task": "#4C72B0",
    "agent": "#55A868",
    "turn": "#8172B2",
    "function": "#DD8452",
    "handoff": "#C44E52",
    "guardrail": "#937860",
}
OTHER = "#8C8C8C"
WAITED = "#F2B701"  # the caller waiting: from the end of their speech to the first audio


def _measures(span: Span[Any]) -> dict[str, Any]:
    """The latencies a turn span exports (``{}`` for other spans)."""
    if span.span_data.type != "turn":
        return {}
    data = span.span_data.export().get("data")
    return data if isinstance(data, dict) else {}


def _waited(span: Span[Any], start_ms: float) -> tuple[float, float] | None:
    """Where the caller waited on the chart: (from, length) in ms, for a turn that has both
    ``voice_to_voice_ms`` and a first audio (``time_to_first_audio_ms``)."""
    measured = _measures(span)
    waited, first_audio = measured.get("voice_to_voice_ms"), measured.get("time_to_first_audio_ms")
    if not isinstance(waited, (int, float)) or not isinstance(first_audio, (int, float)):
        return None
    heard_at = start_ms + first_audio
    return heard_at - waited, waited


def _time(stamp: str | None) -> datetime:
    assert stamp is not None, "every span of the demo has ended"
    return datetime.fromisoformat(stamp)


def rows(recorder: SpanRecorder) -> list[tuple[int, Span[Any]]]:
    """(depth, span) in tree order: parents before children, siblings by start time."""
    spans = recorder.started
    order = {span.span_id: index for index, span in enumerate(spans)}
    children: dict[str | None, list[Span[Any]]] = {}
    for span in spans:
        children.setdefault(span.parent_id, []).append(span)
    result: list[tuple[int, Span[Any]]] = []

    def walk(parent: str | None, depth: int) -> None:
        for child in sorted(
            children.get(parent, []), key=lambda s: (_time(s.started_at), order[s.span_id])
        ):
            result.append((depth, child))
            walk(child.span_id, depth + 1)

    walk(None, 0)
    return result


def _note(span: Span[Any]) -> str:
    data = span.span_data
    parts: list[str] = []
    usage = getattr(data, "usage", None)
    if usage:
        parts.append(f"{usage.get('total_tokens', 0)} tokens")
    if data.type == "agent":
        tools = list(getattr(data, "tools", None) or [])
        handoffs = list(getattr(data, "handoffs", None) or [])
        if tools:
            parts.append("tools: " + ", ".join(tools))
        if handoffs:
            parts.append("handoffs: " + ", ".join(handoffs))
    waited = _measures(span).get("voice_to_voice_ms")
    if isinstance(waited, (int, float)):
        parts.append(f"caller waited {waited:.0f} ms")
    if getattr(data, "interrupted", False):
        heard = _measures(span).get("audio_heard_ms")
        parts.append("interrupted" + (f" after {heard:.0f} ms heard" if heard is not None else ""))
    if data.type == "guardrail" and getattr(data, "triggered", False):
        parts.append("triggered")
    if span.error is not None:
        parts.append(f"error: {span.error['message']}")
    return "  ".join(parts)


def draw(recorder: SpanRecorder, output: Path) -> int:
    """Draw the recorded trace to ``output``; returns how many spans it drew."""
    laid_out = rows(recorder)
    if not laid_out:
        raise SystemExit("the demo recorded no spans")
    origin = min(_time(span.started_at) for _, span in laid_out)
    end = max(_time(span.ended_at) for _, span in laid_out)
    total_ms = (end - origin).total_seconds() * 1000
    min_width = total_ms / 250  # an instant span still shows as a sliver

    height = 1.6 + 0.42 * len(laid_out)
    figure, (labels, chart) = plt.subplots(
        1,
        2,
        figsize=(15, height),
        gridspec_kw={"width_ratios": [0.8, 2.6], "wspace": 0.02},
        sharey=True,
    )
    for index, (depth, span) in enumerate(laid_out):
        kind, name = describe(span)
        start_ms = (_time(span.started_at) - origin).total_seconds() * 1000
        took_ms = (_time(span.ended_at) - _time(span.started_at)).total_seconds() * 1000
        colour = COLOURS.get(kind, OTHER)
        labels.text(
            0.02 + 0.055 * depth,
            index,
            f"{kind}  {name}",
            va="center",
            ha="left",
            fontsize=10,
            fontweight="bold" if depth <= 1 else "normal",
            color=colour,
        )
        chart.barh(
            index,
            max(took_ms, min_width),
            left=start_ms,
            height=0.62,
            color=colour,
            edgecolor="black" if span.error is not None else colour,
            linewidth=1.5 if span.error is not None else 0,
        )
        wait = _waited(span, start_ms)
        if wait is not None:
            chart.barh(
                index, wait[1], left=wait[0], height=0.62, color=WAITED, hatch="//", alpha=0.9
            )
        note = f"{took_ms:.2f} ms" + (f"   {_note(span)}" if _note(span) else "")
        chart.text(
            start_ms + max(took_ms, min_width) + total_ms * 0.006,
            index,
            note,
            va="center",
            ha="left",
            fontsize=8.5,
            color="#333333",
        )

    labels.set_xlim(0, 1)
    labels.axis("off")
    chart.set_ylim(len(laid_out) - 0.4, -0.6)
    chart.set_xlim(0, total_ms * 1.55)  # room for the notes right of the bars
    chart.set_xlabel("milliseconds since the session was entered (scripted model: no network)")
    chart.grid(axis="x", color="#DDDDDD", linewidth=0.8)
    chart.set_axisbelow(True)
    chart.tick_params(axis="y", left=False, labelleft=False)
    for side in ("top", "right", "left"):
        chart.spines[side].set_visible(False)
    kinds = [kind for kind in COLOURS if any(describe(s)[0] == kind for _, s in laid_out)]
    handles = [Patch(color=COLOURS[kind], label=kind) for kind in kinds]
    handles.append(Patch(color=WAITED, hatch="//", label="caller waiting (voice to voice)"))
    chart.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        fontsize=9,
        frameon=False,
        ncol=len(handles),
        title="span kind",
        title_fontsize=9,
        alignment="left",
    )
    traces = recorder.traces
    figure.suptitle(
        f"trace '{traces[0].name if traces else WORKFLOW}': {len(laid_out)} spans "
        "of one realtime session (realtime-spans)",
        x=0.02,
        ha="left",
        fontsize=13,
    )
    figure.subplots_adjust(left=0.01, right=0.99)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=130, bbox_inches="tight", facecolor="white")
    plt.close(figure)
    return len(laid_out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    recorder = SpanRecorder()
    set_trace_processors([recorder])  # local only: nothing is exported
    asyncio.run(run_demo(recorder))
    if recorder.open_spans:
        raise SystemExit(f"{len(recorder.open_spans)} spans left open")
    count = draw(recorder, args.output)
    print(f"wrote {args.output} ({count} spans)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
