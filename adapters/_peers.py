"""Other libraries that trace realtime sessions themselves: find them, so that a session
never gets two competing sets of spans without the user being told.

Theory of operation
-------------------
realtime-spans emits SDK spans through the SDK's trace provider; any tracing processor
(OpenInference's included) turns them into its own format. A *peer* is different: it
patches ``agents.realtime.session.RealtimeSession`` itself and builds a second, separate
set of spans for the same session. The ones known today:

* **OpenInference** (``openinference-instrumentation-openai-agents``, checked in 2.6.0):
  ``OpenAIAgentsInstrumentor().instrument()`` registers its tracing processor *and*, when
  ``agents.realtime.events`` imports, wraps three ``RealtimeSession`` methods with
  ``wrapt`` function wrappers defined in ``openinference.instrumentation.openai_agents.
  _realtime``: ``_put_event`` (the wrapper reads raw server events and writes OpenTelemetry
  spans directly, not through the SDK: ``conversation.turn`` (AUDIO), ``user`` (USER),
  ``assistant`` (LLM) and one TOOL span per function call), ``send_audio`` (buffers the
  caller's audio) and ``close`` (ends its open spans). ``uninstrument()`` puts the original
  functions back. What a wrapper replaced is its ``__wrapped__``.
* **OpenLLMetry** (Traceloop's ``opentelemetry-instrumentation-openai-agents``, checked in
  0.62.4): ``OpenAIAgentsInstrumentor().instrument()`` adds its tracing processor *and*
  replaces four ``RealtimeSession`` members by plain assignment (no ``wrapt``), with
  closures defined in ``opentelemetry.instrumentation.openai_agents._realtime_wrappers``:
  ``__aenter__`` (opens a ``Realtime Session`` span), ``__aexit__`` (ends its spans),
  ``_put_event`` (agent, tool, handoff, audio and ``openai.realtime`` LLM spans from
  session events) and ``send_message`` (records the caller's text). The last two are
  further wrapped by its ``utils.dont_throw``, a ``functools.wraps`` wrapper whose
  ``__wrapped__`` is its own closure, not the SDK's method. What it replaced is kept in
  that module's ``_original_methods`` dict (member name -> the class's member before),
  which its ``uninstrument()`` puts back and then clears; the closures look the originals
  up there on every call. The OpenTelemetry project's ``opentelemetry-instrumentation-
  openai-agents-v2`` installs the same import package (so the two cannot share an
  environment) but patches nothing: it is a tracing processor only.

What :func:`competing_realtime_instrumentation` checks, exactly:

1. Fast path: whether any known peer's package (a key of :data:`KNOWN_PEERS`) is in
   ``sys.modules``. A wrapper is a function defined in a module, so a peer whose package
   was never imported cannot have patched anything: one dictionary lookup per peer, and
   the answer is "none".
2. Otherwise, every entry of ``vars(RealtimeSession)`` (the SDK class itself; subclasses
   inherit what it holds). Each entry is unwrapped layer by layer: a ``wrapt`` wrapper's
   wrapper function (``_self_wrapper``) and what it wraps (``__wrapped__``), a
   ``functools.wraps`` function's ``__wrapped__``, a ``staticmethod``/``classmethod``'s
   ``__func__``. A layer belongs to the module whose globals its function was defined in
   (``__globals__["__name__"]``, which ``functools.wraps`` does not rewrite, unlike
   ``__module__``). An entry is reported when a layer belongs to a known peer's package.

It never imports a peer, never calls a wrapper and never raises: an entry that cannot be
inspected is skipped. Tracing processors registered with the SDK are not peers (they
consume realtime-spans' spans), nor is realtime-spans' own :func:`instrument`.

What :func:`unwrap_competing_instrumentation` puts back: for a member whose outermost
layer is a known peer's, exactly what that peer replaced, found the way the peer's own
``uninstrument()`` finds it (OpenInference: the wrapper's ``__wrapped__``; OpenLLMetry:
its ``_original_methods`` entry, left in place so that its ``uninstrument()`` still puts
back the same function and its re-``instrument()`` still starts afresh). It repeats while a
pass undoes something, so peers instrumented one over the other are all undone. A member
whose outermost layer is someone else's, or whose original cannot be found, is left alone.
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
from agents.realtime.session import RealtimeSession

#: Packages known to patch ``RealtimeSession`` to produce their own realtime spans,
#: mapped to the name a user knows them by.
KNOWN_PEERS: Mapping[str, str] = {
    "openinference.instrumentation.openai_agents": (
        "OpenInference's OpenAIAgentsInstrumentor (openinference-instrumentation-openai-agents)"
    ),
    "opentelemetry.instrumentation.openai_agents": (
        "OpenLLMetry's OpenAIAgentsInstrumentor (opentelemetry-instrumentation-openai-agents)"
    ),
}

#: Where OpenLLMetry keeps what it replaced (checked in 0.62.4).
_OPENLLMETRY_WRAPPERS = "opentelemetry.instrumentation.openai_agents._realtime_wrappers"
_OPENLLMETRY_ORIGINALS = "_original_methods"

_MAX_LAYERS = 16  # wrappers of wrappers; a cycle or a pathological proxy stops here


@attrs.frozen
class PeerPatch:
    """One ``RealtimeSession`` member that a peer library has wrapped.

    Attributes:
        peer: the peer's name, as in :data:`KNOWN_PEERS`.
        member: the wrapped member, e.g. ``"RealtimeSession._put_event"``.
        module: the module that defines the wrapper function.

    Example:
        >>> PeerPatch("OpenInference", "RealtimeSession.close", "openinference.x").member
        'RealtimeSession.close'
    """

    peer: str
    member: str
    module: str


class CompetingInstrumentationWarning(UserWarning):
    """Warned once per process when a peer also traces realtime sessions.

    Filter it like any warning once the choice is deliberate.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.filterwarnings("ignore", category=CompetingInstrumentationWarning)
        ...     warnings.warn("both on purpose", CompetingInstrumentationWarning)
    """


def _defining_module(function: Any) -> str | None:
    namespace = getattr(function, "__globals__", None)
    if isinstance(namespace, dict):
        name = namespace.get("__name__")
        if isinstance(name, str):
            return name
    return None


def _layer_modules(member: Any) -> Iterator[str]:
    """The modules of every function in ``member``'s chain of wrappers (outermost first)."""
    layer = member
    for _ in range(_MAX_LAYERS):
        if isinstance(layer, (staticmethod, classmethod)):
            layer = layer.__func__
            continue
        wrapper = getattr(layer, "_self_wrapper", None)  # a wrapt FunctionWrapper
        if wrapper is not None:
            module = _defining_module(wrapper)
            if module is not None:
                yield module
        else:
            module = _defining_module(layer)
            if module is not None:
                yield module
        inner = getattr(layer, "__wrapped__", None)
        if inner is None or inner is layer:
            return
        layer = inner


def _peer_of(module: str, peers: Mapping[str, str]) -> str | None:
    for package, name in peers.items():
        if module == package or module.startswith(package + "."):
            return name
    return None


def competing_realtime_instrumentation(
    session_class: type[Any] = RealtimeSession,
) -> tuple[PeerPatch, ...]:
    """The ``RealtimeSession`` members that a known peer has wrapped (empty: none).

    Cheap enough to call on every ``traced()``: when no peer package has been imported it
    is one ``sys.modules`` lookup per known peer (about 0.2 µs); otherwise it inspects the
    class's own members (about 50 µs; see the module docstring for exactly what is
    checked). Never raises.

    Args:
        session_class: the class to inspect; the SDK's ``RealtimeSession`` by default.

    Example:
        >>> competing_realtime_instrumentation()  # nothing else patched RealtimeSession
        ()

        With OpenInference's instrumentor active (``OpenAIAgentsInstrumentor().instrument()``,
        2.6.0) it returns one ``PeerPatch`` each for ``RealtimeSession._put_event``,
        ``RealtimeSession.send_audio`` and ``RealtimeSession.close`` (in the class's member
        order), each with ``module='openinference.instrumentation.openai_agents._realtime'``.
        With OpenLLMetry's (0.62.4): ``__aenter__`` and ``__aexit__`` (its
        ``_realtime_wrappers``), ``send_message`` and ``_put_event`` (its ``utils``, the
        outermost of their two layers).
    """
    peers = {package: name for package, name in KNOWN_PEERS.items() if package in sys.modules}
    if not peers:
        return ()
    found: list[PeerPatch] = []
    try:
        members = list(vars(session_class).items())
    except TypeError:
        return ()
    for name, member in members:
        try:
            for module in _layer_modules(member):
                peer = _peer_of(module, peers)
                if peer is not None:
                    found.append(PeerPatch(peer, f"{session_class.__name__}.{name}", module))
                    break
        except Exception:  # an exotic object that cannot be inspected: not a known wrapper
            continue
    return tuple(found)


def describe(patches: tuple[PeerPatch, ...]) -> str:
    """The warning text for what :func:`competing_realtime_instrumentation` found.

    Example:
        >>> text = describe((PeerPatch("Peer X", "RealtimeSession.close", "x.y"),))
        >>> text.startswith("Peer X also traces realtime sessions (it wraps RealtimeSession.close)")
        True
    """
    by_peer: dict[str, list[str]] = {}
    for patch in patches:
        by_peer.setdefault(patch.peer, []).append(patch.member)
    parts = [
        f"{peer} also traces realtime sessions (it wraps {', '.join(members)})"
        for peer, members in by_peer.items()
    ]
    return (
        "; ".join(parts)
        + ": each session traced by realtime-spans gets a second, separate set of spans "
        "from it. Keep one of the two (see 'Realtime tracing from two libraries' in the "
        "realtime-spans README), or filter CompetingInstrumentationWarning to keep both."
    )


class _Once:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.warned = False


_once = _Once()


def warn_once_if_competing(stacklevel: int = 3) -> tuple[PeerPatch, ...]:
    """Check for peers; warn the first time in the process that one is found.

    Meant for ``traced()`` and ``instrument()``: it checks on every call (a peer can be
    instrumented after the first session) and warns at most once per process with a
    :class:`CompetingInstrumentationWarning`. Returns what it found, warned or not.

    Args:
        stacklevel: passed to ``warnings.warn``; 3 points at the caller of the function
            that calls this one.

    Example:
        >>> warn_once_if_competing()
        ()
    """
    patches = competing_realtime_instrumentation()
    if not patches:
        return patches
    with _once.lock:
        if _once.warned:
            return patches
        _once.warned = True
    warnings.warn(describe(patches), CompetingInstrumentationWarning, stacklevel=stacklevel)
    return patches


def _wrapped_original(session_class: type[Any], name: str, member: Any) -> Any:
    """What a ``wrapt`` or ``functools.wraps`` wrapper replaced: its ``__wrapped__``."""
    original = getattr(member, "__wrapped__", None)
    return None if original is member else original


def _openllmetry_original(session_class: type[Any], name: str, member: Any) -> Any:
    """What OpenLLMetry replaced: its ``_original_methods`` entry (of the SDK class only)."""
    if session_class is not RealtimeSession:
        return None
    stored = getattr(sys.modules.get(_OPENLLMETRY_WRAPPERS), _OPENLLMETRY_ORIGINALS, None)
    return stored.get(name) if isinstance(stored, dict) else None


_ORIGINALS: Mapping[str, Callable[[type[Any], str, Any], Any]] = {
    "openinference.instrumentation.openai_agents": _wrapped_original,
    "opentelemetry.instrumentation.openai_agents": _openllmetry_original,
}


def _package_of(module: str) -> str | None:
    for package in KNOWN_PEERS:
        if module == package or module.startswith(package + "."):
            return package
    return None


def _unwrap_outermost(session_class: type[Any]) -> list[PeerPatch]:
    undone: list[PeerPatch] = []
    for patch in competing_realtime_instrumentation(session_class):
        name = patch.member.rpartition(".")[2]
        member = vars(session_class).get(name)
        outermost = next(_layer_modules(member), None)
        package = _package_of(outermost) if outermost is not None else None
        if package is None or KNOWN_PEERS[package] != patch.peer:
            continue  # someone else's wrapper is outside the peer's
        find = _ORIGINALS.get(package, _wrapped_original)
        original = find(session_class, name, member)
        if original is None or original is member:
            continue
        setattr(session_class, name, original)
        undone.append(patch)
    return undone


def unwrap_competing_instrumentation(
    session_class: type[Any] = RealtimeSession,
) -> tuple[PeerPatch, ...]:
    """Put back the ``RealtimeSession`` members a known peer replaced; returns what it undid.

    For users who keep a peer for everything else but want realtime sessions traced by
    realtime-spans only: call it right after the peer's ``instrument(...)``
    (OpenInference's or OpenLLMetry's ``OpenAIAgentsInstrumentor``). The peer's tracing
    processor stays registered (it still exports realtime-spans' spans and ``Runner``
    runs); only its own realtime spans stop. Each member gets back exactly what the peer
    replaced, which is what the peer's own ``uninstrument()`` restores too, so that call
    still works afterwards. A member is left alone when the peer's wrapper is not the
    outermost layer (something else wrapped it afterwards) or its original cannot be found.
    Peers instrumented one over the other are all undone.

    Example:
        >>> unwrap_competing_instrumentation()  # nothing to undo
        ()

        With OpenLLMetry's instrumentor active (0.62.4) it returns one ``PeerPatch`` each
        for ``RealtimeSession.__aenter__``, ``__aexit__``, ``_put_event`` and
        ``send_message``, and those four are the SDK's own functions again.
    """
    undone: list[PeerPatch] = []
    for _ in range(_MAX_LAYERS):
        step = _unwrap_outermost(session_class)
        if not step:
            break
        undone.extend(step)
    return tuple(undone)
