"""Checks of the package as users get it; ``nox -s package`` runs them (see ``noxfile.py``).

``python tools/check_package.py built DIST``, in the source tree: the sdist and the wheel in
``DIST`` carry the metadata ``pyproject.toml`` declares (name, the version of
``adapters/_version.py``, requirements, the license expression and file, the README as a
Markdown long description), classifiers that exist and agree with ``requires-python`` and
with the Python the check runs on, exactly the project URLs declared (none today: the
repository has no public address); the wheel holds the two packages and nothing else; the
sdist holds every file ``git`` tracks (tests and what they need included), and nothing
untracked but what the build adds.

``python /path/to/tools/check_package.py installed SOURCE``, with the Python of a fresh
environment the wheel was installed into, from a directory outside ``SOURCE``: both
packages import from that environment, not from the source tree, report the installed
version, and are typed (``py.typed``).

Exit status 0 when every check holds; otherwise each failure is printed and the status is 1.
"""

from __future__ import annotations

import ast
import email.parser
import importlib
import importlib.metadata
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from pathlib import Path

NAME = "realtime-spans"
PACKAGES = ("realtime_spans.core", "realtime_spans.adapters")
#: What the build adds to an sdist beside the tracked files.
SDIST_EXTRAS = ("PKG-INFO", "setup.cfg", "realtime_spans.egg-info/")


class Checks:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.passed = 0

    def that(self, holds: bool, what: str) -> None:
        if holds:
            self.passed += 1
        else:
            self.failures.append(what)

    def report(self) -> int:
        for failure in self.failures:
            print(f"FAILED: {failure}")
        print(f"{self.passed} passed, {len(self.failures)} failed")
        return 1 if self.failures else 0


def _source_version(root: Path) -> str:
    tree = ast.parse((root / "adapters" / "_version.py").read_text())
    for node in tree.body:
        names = [t.id for t in getattr(node, "targets", ()) if isinstance(t, ast.Name)]
        if isinstance(node, ast.Assign) and "__version__" in names:
            return str(ast.literal_eval(node.value))
    raise SystemExit("adapters/_version.py has no __version__")


def _metadata(text: str) -> email.message.Message:
    return email.parser.Parser().parsestr(text)


def _check_metadata(checks: Checks, meta: email.message.Message, where: str, root: Path) -> None:
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    from trove_classifiers import classifiers as known
    from trove_classifiers import deprecated_classifiers

    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    version = _source_version(root)
    checks.that(meta["Name"] == NAME, f"{where}: Name is {meta['Name']!r}")
    checks.that(meta["Version"] == version, f"{where}: Version {meta['Version']} != {version}")
    checks.that(
        meta["Requires-Python"] == project["requires-python"],
        f"{where}: Requires-Python is {meta['Requires-Python']!r}",
    )
    required = sorted(str(Requirement(r)) for r in meta.get_all("Requires-Dist") or [])
    declared = sorted(str(Requirement(r)) for r in project["dependencies"])
    checks.that(required == declared, f"{where}: Requires-Dist {required} != {declared}")
    checks.that(meta["Summary"] == project["description"], f"{where}: Summary differs")
    checks.that(
        meta["License-Expression"] == project["license"],
        f"{where}: License-Expression is {meta['License-Expression']!r}",
    )
    checks.that(
        meta.get_all("License-File") == ["LICENSE"],
        f"{where}: License-File is {meta.get_all('License-File')}",
    )
    checks.that(
        meta["Description-Content-Type"] == "text/markdown",
        f"{where}: Description-Content-Type is {meta['Description-Content-Type']!r}",
    )
    checks.that(
        meta.get_payload().strip() == (root / "README.md").read_text().strip(),
        f"{where}: the long description is not the README",
    )

    classifiers = meta.get_all("Classifier") or []
    checks.that(classifiers == project["classifiers"], f"{where}: classifiers differ")
    for classifier in classifiers:
        checks.that(classifier in known, f"{where}: unknown classifier {classifier!r}")
        checks.that(classifier not in deprecated_classifiers, f"{where}: deprecated {classifier!r}")
        checks.that(
            not classifier.startswith("License ::"),
            f"{where}: {classifier!r} beside a license expression (PEP 639 forbids both)",
        )
    supported = SpecifierSet(meta["Requires-Python"] or "")
    prefix = "Programming Language :: Python :: 3."
    minors = [c.removeprefix(prefix) for c in classifiers if c.startswith(prefix)]
    for minor in minors:
        checks.that(
            f"3.{minor}" in supported, f"{where}: classifier Python 3.{minor} outside {supported}"
        )
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    checks.that(
        running.removeprefix("3.") in minors,
        f"{where}: no classifier for Python {running}, the one this check runs on",
    )

    declared_urls = sorted(f"{k}, {v}" for k, v in project.get("urls", {}).items())
    checks.that(
        sorted(meta.get_all("Project-URL") or []) == declared_urls,
        f"{where}: Project-URL {meta.get_all('Project-URL')} != declared {declared_urls}",
    )
    for field in ("Home-page", "Download-URL"):
        checks.that(meta[field] is None, f"{where}: {field} {meta[field]!r} is not declared")


def _tracked(root: Path) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=root, check=True, capture_output=True, text=True
    ).stdout
    return sorted(path for path in listed.split("\0") if path)


def built(dist: Path) -> int:
    """Check the sdist and the wheel in ``dist`` (run from the source tree)."""
    root = Path.cwd()
    checks = Checks()
    version = _source_version(root)
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    checks.that(
        len(wheels) == 1 and len(sdists) == 1, f"one wheel and one sdist: {wheels} {sdists}"
    )
    if checks.failures:
        return checks.report()
    (wheel,), (sdist,) = wheels, sdists
    stem = f"realtime_spans-{version}"
    checks.that(wheel.name == f"{stem}-py3-none-any.whl", f"wheel name {wheel.name}")
    checks.that(sdist.name == f"{stem}.tar.gz", f"sdist name {sdist.name}")

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = f"{stem}.dist-info/"
        _check_metadata(checks, _metadata(archive.read(info + "METADATA").decode()), "wheel", root)
        checks.that(info + "licenses/LICENSE" in names, "the wheel has no licenses/LICENSE")
    shipped = sorted(n for n in names if not n.startswith(info))
    expected = sorted(
        f"realtime_spans/{package}/{path.relative_to(root / package).as_posix()}"
        for package in ("core", "adapters")
        for path in (root / package).iterdir()
        if path.suffix == ".py" or path.name == "py.typed"
    )
    checks.that(shipped == expected, f"the wheel holds {shipped}, not {expected}")

    with tarfile.open(sdist) as archive:
        members = archive.getnames()
        _check_metadata(
            checks,
            _metadata(archive.extractfile(f"{stem}/PKG-INFO").read().decode()),
            "sdist",
            root,
        )
    files = {m.removeprefix(stem + "/") for m in members if m != stem}
    regular = {
        name for name in files if not any(other.startswith(name + "/") for other in files)
    }  # leaves only, not directories
    tracked = set(_tracked(root))
    missing = sorted(tracked - regular)
    checks.that(not missing, f"tracked files missing from the sdist: {missing}")
    extra = sorted(name for name in regular - tracked if not name.startswith(SDIST_EXTRAS))
    checks.that(not extra, f"untracked files in the sdist: {extra}")
    for needed in ("conftest.py", "tests/conftest.py", "property_tests", "integration_tests"):
        checks.that(
            any(name == needed or name.startswith(needed + "/") for name in regular),
            f"the sdist has no {needed}",
        )
    return checks.report()


def installed(source: Path) -> int:
    """Check the installed package, from outside the source tree ``source``."""
    checks = Checks()
    source = source.resolve()
    checks.that(
        not Path.cwd().resolve().is_relative_to(source), f"running inside the source tree {source}"
    )
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    version = importlib.metadata.version(NAME)
    for name in PACKAGES:
        module = importlib.import_module(name)
        where = Path(module.__file__ or "").resolve()
        checks.that(where.is_relative_to(site), f"{name} imported from {where}, not {site}")
        checks.that(not where.is_relative_to(source), f"{name} imported from the source tree")
        checks.that((where.parent / "py.typed").is_file(), f"{name} has no py.typed")
    adapters = importlib.import_module("realtime_spans.adapters")
    checks.that(
        adapters.__version__ == version,
        f"realtime_spans.adapters.__version__ {adapters.__version__} != metadata {version}",
    )
    print(f"{NAME} {version} installed in {site}")
    return checks.report()


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "built":
        return built(Path(argv[1]))
    if len(argv) == 2 and argv[0] == "installed":
        return installed(Path(argv[1]))
    sys.stderr.write(__doc__ or "")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
