"""The demo (the README's first command) prints the whole span tree of its session."""

from __future__ import annotations

import re

import pytest

from realtime_spans.adapters import demo


def test_demo_prints_every_kind_of_span_as_a_tree(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main() == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert lines[0].startswith(f"trace {demo.WORKFLOW} group_id=group_")
    assert "'realtime_session_id': 'sess_demo'" in lines[0]
    tree = [line for line in lines[1:] if line.startswith("  ")]
    shape = [(len(line) - len(line.lstrip()), line.split()[0]) for line in tree]
    assert shape == [
        (2, "task"),
        (4, "agent"),
        (6, "turn"),
        (6, "function"),
        (6, "turn"),
        (6, "handoff"),
        (4, "agent"),
        (6, "turn"),
        (6, "guardrail"),
        (6, "turn"),
    ]
    assert all(re.search(r" \d+\.\d ms", line) for line in tree)
    assert "handoff Greeter -> Specialist" in printed
    assert "guardrail no_unpaid_bookings" in printed and "triggered" in printed
    assert lines[-1].endswith("spans left open: 0")
