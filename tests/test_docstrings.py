"""Every public name documents itself with an example, and every example runs."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import realtime_spans.adapters
import realtime_spans.core

PACKAGES = (realtime_spans.core, realtime_spans.adapters)
MODULES = sorted(
    info.name
    for package in PACKAGES
    for info in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + ".")
) + [package.__name__ for package in PACKAGES]


@pytest.mark.parametrize("name", MODULES)
def test_examples_in_docstrings_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def _public_callables() -> list[tuple[str, object]]:
    found = []
    for package in PACKAGES:
        for name in package.__all__:
            value = getattr(package, name)
            if inspect.isclass(value) or inspect.isfunction(value):
                found.append((f"{package.__name__}.{name}", value))
    return found


@pytest.mark.parametrize(("name", "value"), _public_callables())
def test_public_names_have_a_docstring_with_an_example(name: str, value: object) -> None:
    doc = inspect.getdoc(value) or ""
    assert "Example" in doc, f"{name} has no example in its docstring"
