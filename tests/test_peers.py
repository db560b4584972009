"""``adapters._peers`` without any peer installed: what counts as a peer's patch and what
does not. (With OpenInference's real instrumentor: ``integration_tests/test_peers.py``.)

A stand-in peer is this very module, declared a peer package for the test: its wrappers
are real functions defined here, put on the real ``RealtimeSession`` class.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

import pytest
from agents.realtime.session import RealtimeSession

from realtime_spans.adapters import _peers, instrument, uninstrument
from realtime_spans.adapters._peers import (
    PeerPatch,
    competing_realtime_instrumentation,
    unwrap_competing_instrumentation,
)

SDK_CLOSE = vars(RealtimeSession)["close"]


def _peer_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)  # copies __module__ ("agents.realtime.session"), not globals
    async def close(self: RealtimeSession) -> None:
        await original(self)

    return close


@pytest.fixture
def this_module_is_a_peer(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(_peers, "KNOWN_PEERS", {__name__: "Test peer"})
    return __name__


def test_the_sdk_as_shipped_has_no_competing_patch() -> None:
    assert competing_realtime_instrumentation() == ()
    assert unwrap_competing_instrumentation() == ()


def test_realtime_spans_own_instrument_is_not_a_peer(
    this_module_is_a_peer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    instrument()
    try:
        assert competing_realtime_instrumentation() == ()
        # were realtime-spans listed as a peer, its __init__ patch would be found
        monkeypatch.setattr(_peers, "KNOWN_PEERS", {"realtime_spans.adapters": "itself"})
        (patch,) = competing_realtime_instrumentation()
        assert patch.member == "RealtimeSession.__init__"
    finally:
        uninstrument()


def test_a_functools_wrapper_is_found_by_where_it_was_defined(
    this_module_is_a_peer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrapper = _peer_wrapper(SDK_CLOSE)
    assert wrapper.__module__ == "agents.realtime.session"  # what functools.wraps claims
    monkeypatch.setattr(RealtimeSession, "close", wrapper)
    assert competing_realtime_instrumentation() == (
        PeerPatch("Test peer", "RealtimeSession.close", __name__),
    )
    assert unwrap_competing_instrumentation() == (
        PeerPatch("Test peer", "RealtimeSession.close", __name__),
    )
    assert vars(RealtimeSession)["close"] is SDK_CLOSE
    assert competing_realtime_instrumentation() == ()


def _foreign_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    """A wrapper whose function belongs to another module (``someone.else``)."""
    inner = _peer_wrapper(original)
    namespace = {"__name__": "someone.else"}
    foreign = types.FunctionType(inner.__code__, namespace, "close", None, inner.__closure__)
    return functools.wraps(original)(foreign)


def test_a_peer_layer_under_someone_elses_wrapper_is_found_but_not_unwrapped(
    this_module_is_a_peer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    outer = _foreign_wrapper(_peer_wrapper(SDK_CLOSE))
    monkeypatch.setattr(RealtimeSession, "close", outer)
    (patch,) = competing_realtime_instrumentation()
    assert patch.member == "RealtimeSession.close"
    assert unwrap_competing_instrumentation() == ()
    assert vars(RealtimeSession)["close"] is outer


def test_a_peer_never_imported_is_not_looked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path: no known peer package in ``sys.modules``, no inspection at all."""
    monkeypatch.setattr(_peers, "KNOWN_PEERS", {"never.imported.peer": "Ghost"})
    namespace = {"__name__": "never.imported.peer.patch"}
    ghost = types.FunctionType(SDK_CLOSE.__code__, namespace, "close")
    monkeypatch.setattr(RealtimeSession, "close", ghost)
    assert competing_realtime_instrumentation() == ()


def test_an_uninspectable_member_is_skipped(
    this_module_is_a_peer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Hostile:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError(f"no {name}")

    monkeypatch.setattr(RealtimeSession, "hostile_member", Hostile(), raising=False)
    monkeypatch.setattr(RealtimeSession, "close", _peer_wrapper(SDK_CLOSE))
    (patch,) = competing_realtime_instrumentation()
    assert patch.member == "RealtimeSession.close"
