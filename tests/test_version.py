"""The version the package reports is its metadata's, and the changelog has it."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import realtime_spans.adapters

CHANGELOG = Path(__file__).resolve().parents[1] / "CHANGELOG.md"


def test_the_reported_version_is_the_installed_metadata() -> None:
    version = realtime_spans.adapters.__version__
    assert version == importlib.metadata.version("realtime-spans")
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)


def test_the_changelog_has_the_version_and_an_unreleased_section() -> None:
    headings = re.findall(
        r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", CHANGELOG.read_text(), re.M
    )
    assert headings[0] == ("Unreleased", "")
    released = {name: date for name, date in headings[1:]}
    assert released.get(realtime_spans.adapters.__version__), "no dated entry for this version"
