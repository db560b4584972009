"""Reading OpenTelemetry spans (as an in-memory exporter or Phoenix returns them) as trees."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.trace_id


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def attribute(span: ReadableSpan, key: str) -> Any:
    return (span.attributes or {}).get(key)


def tree(spans: Sequence[ReadableSpan], label: Callable[[ReadableSpan], str]) -> list[str]:
    """The spans as indented lines, children sorted by label (so ties in start time
    cannot reorder them); a span whose parent is not among ``spans`` is a root."""
    ids = {span_id(span) for span in spans}
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        parent = parent_id(span)
        children.setdefault(parent if parent in ids else None, []).append(span)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for child in sorted(children.get(parent, []), key=label):
            lines.append("  " * depth + label(child))
            walk(span_id(child), depth + 1)

    walk(None, 0)
    return lines


def nesting_problems(spans: Iterable[ReadableSpan]) -> list[str]:
    """What is wrong with the parent links and times (empty when well formed): every
    parent is one of the spans, in the same trace, started no later and ended no earlier
    than its child; exactly one root."""
    spans = list(spans)
    by_id = {span_id(span): span for span in spans}
    problems: list[str] = []
    roots = [span.name for span in spans if span.parent is None]
    if len(roots) != 1:
        problems.append(f"roots: {roots}")
    for span in spans:
        parent_span_id = parent_id(span)
        if parent_span_id is None:
            continue
        parent = by_id.get(parent_span_id)
        if parent is None:
            problems.append(f"{span.name}: parent {parent_span_id:x} not exported")
            continue
        if trace_id(parent) != trace_id(span):
            problems.append(f"{span.name}: parent in another trace")
        assert span.start_time is not None and span.end_time is not None
        assert parent.start_time is not None and parent.end_time is not None
        if span.start_time < parent.start_time:
            problems.append(f"{span.name} starts before its parent {parent.name}")
        if span.end_time > parent.end_time:
            problems.append(f"{span.name} ends after its parent {parent.name}")
    return problems
