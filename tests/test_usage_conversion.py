"""The tap's usage conversion: plain token counts (its fast path) come through exactly,
and bad counts from the SDK are cleaned, never raised.

These call the adapter's converter directly on the SDK's own ``RealtimeModelUsageEvent``
(no session needed).
"""

from __future__ import annotations

import pytest
from agents.realtime.model_events import RealtimeModelUsageEvent
from agents.usage import Usage

from realtime_spans.adapters._tap import _usage
from realtime_spans.core import Usage as CoreUsage


def _event(**counts: object) -> RealtimeModelUsageEvent:
    usage = Usage(requests=1, input_tokens=120, output_tokens=80, total_tokens=200)
    for name, value in counts.items():
        object.__setattr__(usage, name, value)  # what a misbehaving SDK or model could send
    return RealtimeModelUsageEvent(usage=usage)


def test_plain_counts_take_the_shortcut_and_keep_every_count() -> None:
    converted = _usage(_event())
    assert converted == CoreUsage(requests=1, input_tokens=120, output_tokens=80, total_tokens=200)


def test_cached_tokens_are_kept_and_zero_cached_is_absent() -> None:
    for cached, expected in ((30, 30), (0, None)):
        event = _event()
        details = event.usage.input_tokens_details.model_copy(update={"cached_tokens": cached})
        object.__setattr__(event.usage, "input_tokens_details", details)
        assert _usage(event).cached_input_tokens == expected


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("input_tokens", -5, 0),  # negative: clamped, as the slow path does
        ("output_tokens", 7.9, 7),  # a float: truncated
        ("total_tokens", True, 0),  # a bool is not a count
        ("requests", None, 0),  # missing
        ("input_tokens", "12", 0),  # not a number at all
    ],
)
def test_bad_counts_are_cleaned_not_raised(name: str, value: object, expected: int) -> None:
    converted = _usage(_event(**{name: value}))
    assert getattr(converted, name) == expected
    others = {"requests": 1, "input_tokens": 120, "output_tokens": 80, "total_tokens": 200}
    del others[name]
    assert {key: getattr(converted, key) for key in others} == others
