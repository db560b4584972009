"""What the local Realtime server does, per test: "when the client sends X, answer with Y".

A :class:`Script` is a list of rules. Each client message is matched against the rules in
the order they were added; the first rule whose message type (and optional ``match``
predicate) fits, and that has not fired yet (or repeats), fires: its steps run in order.
A step is a server event (a dict, sent as it is after validation), events validated and
encoded ahead of time (:class:`Encoded`, for benchmarks), an action (:class:`Close`,
:class:`Drop`), or a callable given the client message that returns more steps.
``on_connect`` steps run as soon as a connection is accepted; ``refuse`` makes the server
reject the WebSocket handshake with an HTTP error instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeAlias

from .events import validate_server_event

__all__ = ["Close", "Drop", "Encoded", "Reply", "Rule", "Script", "Step"]


@dataclass(frozen=True)
class Close:
    """Close the WebSocket with a close frame (``code`` 1011 "internal error" by default).

    Any code but 1000/1001 makes the SDK's listener see ``ConnectionClosedError``.

    Example:
        >>> Close().code
        1011
    """

    code: int = 1011
    reason: str = "test server closed the connection"


@dataclass(frozen=True)
class Drop:
    """Drop the TCP connection without a close frame (a crashed server or a cut cable).

    Example:
        >>> Drop()
        Drop()
    """


@dataclass(frozen=True)
class Encoded:
    """Server events checked and JSON-encoded once, then sent as they are, each time.

    A dict step is validated and encoded every time it is sent, which is right for a test
    and far too slow for a benchmark streaming thousands of audio deltas per session:
    the server would spend more time per event than the client it is measuring. Build
    with :meth:`of`; the checks are the same (:func:`validate_server_event`), made once.

    Example:
        >>> from tests.realtime_server.events import response
        >>> encoded = Encoded.of(response("resp_1"))
        >>> [event["type"] for event in encoded.events]
        ['response.created', 'response.done']
        >>> encoded.texts[0].startswith('{"type": "response.created"')
        True
    """

    events: tuple[dict[str, Any], ...]
    texts: tuple[str, ...]

    @classmethod
    def of(cls, events: Iterable[Mapping[str, Any]]) -> Encoded:
        """Validate ``events`` (raising :class:`InvalidServerEvent` on a bad one) and
        encode each as the JSON text the server will send."""
        checked = tuple(validate_server_event(event) for event in events)
        return cls(checked, tuple(json.dumps(event) for event in checked))


#: A callable step: given the client message that fired the rule, the steps to run.
Reply: TypeAlias = Callable[[dict[str, Any]], Iterable["Step"]]
#: One thing the server does: send an event, close, drop, or compute more steps.
Step: TypeAlias = Mapping[str, Any] | Encoded | Close | Drop | Reply


@dataclass
class Rule:
    """Steps to run when a client message of ``message_type`` (and ``match``) arrives.

    Example:
        >>> rule = Rule("response.create", ())
        >>> rule.fits({"type": "response.create"})
        True
    """

    message_type: str
    steps: tuple[Step, ...]
    match: Callable[[dict[str, Any]], bool] | None = None
    repeat: bool = False
    fired: int = 0

    def fits(self, message: dict[str, Any]) -> bool:
        """Whether this rule fires for ``message`` now."""
        if self.fired and not self.repeat:
            return False
        if message.get("type") != self.message_type:
            return False
        return self.match is None or bool(self.match(message))


@dataclass
class Script:
    """A test's script for the server; build it with the chaining methods.

    Example:
        >>> from tests.realtime_server.events import response, session_created
        >>> script = (
        ...     Script()
        ...     .on_connect(session_created("sess_1"))
        ...     .when("response.create", *response("resp_1"))
        ... )
        >>> script.unfired()
        ['response.create']
    """

    connect_steps: list[Step] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    refusal: tuple[HTTPStatus, str] | None = None

    def on_connect(self, *steps: Step) -> Script:
        """Run ``steps`` as soon as a connection is accepted (``session.created`` first)."""
        self.connect_steps.extend(steps)
        return self

    def when(
        self,
        message_type: str,
        *steps: Step,
        match: Callable[[dict[str, Any]], bool] | None = None,
    ) -> Script:
        """Once, when the client sends a ``message_type`` message (matching ``match``)."""
        self.rules.append(Rule(message_type, steps, match))
        return self

    def every(
        self,
        message_type: str,
        *steps: Step,
        match: Callable[[dict[str, Any]], bool] | None = None,
    ) -> Script:
        """Each time the client sends a ``message_type`` message (matching ``match``)."""
        self.rules.append(Rule(message_type, steps, match, repeat=True))
        return self

    def refuse(
        self, status: HTTPStatus = HTTPStatus.UNAUTHORIZED, text: str = "Invalid API key\n"
    ) -> Script:
        """Reject every WebSocket handshake with ``status`` (no connection is opened)."""
        self.refusal = (status, text)
        return self

    def rule_for(self, message: dict[str, Any]) -> Rule | None:
        """The rule that fires for ``message`` (marked as fired), or ``None``."""
        for rule in self.rules:
            if rule.fits(message):
                rule.fired += 1
                return rule
        return None

    def unfired(self) -> list[str]:
        """Message types of the one-shot rules that never fired (empty once all ran)."""
        return [rule.message_type for rule in self.rules if not rule.repeat and not rule.fired]
