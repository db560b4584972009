"""Development tasks. Run them with ``python3 tools/nox_bootstrap.py -s NAME`` (or plain ``nox``).

The default run (no ``-s``) is the whole test suite: lint, type checks, the unit, property
and doc tests, and the integration tests with real tracing processors (OpenInference and
OpenLLMetry into OpenTelemetry, Logfire, the OpenAI exporter; the OpenTelemetry GenAI
processor in ``genai``), each on the oldest supported openai-agents (0.22.0) and on the
newest release. ``.ci/run`` then runs ``e2e``
(a real Phoenix server).
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path

import nox

nox.options.default_venv_backend = "virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests", "integrations", "genai"]
nox.options.error_on_missing_interpreters = True

OLDEST_SDK = "openai-agents==0.22.0"
NEWEST_SDK = "openai-agents"
SDKS = {"oldest": OLDEST_SDK, "newest": NEWEST_SDK}
TEST_DEPS = ["pytest>=8.2", "pytest-asyncio>=0.24", "hypothesis>=6.100"]


def _install(session: nox.Session, sdk: str, *extra: str) -> None:
    session.install("--upgrade", ".", SDKS[sdk], *extra)
    session.run("python", "-c", "import agents, sys; print('openai-agents', agents.__version__)")


@nox.session
@nox.parametrize("sdk", list(SDKS))
def tests(session: nox.Session, sdk: str) -> None:
    """Unit, property and doc tests against the oldest and the newest openai-agents."""
    _install(session, sdk, *TEST_DEPS)
    session.run("pytest", "-q", "--hypothesis-profile=ci", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff==0.17.6")  # pinned: a new release may format differently
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy: strict on the core, checked on the adapters."""
    _install(session, "newest", "mypy==2.4.1")
    session.run(
        "mypy",
        "--config-file",
        "pyproject.toml",
        "-p",
        "realtime_spans.core",
        "-p",
        "realtime_spans.adapters",
    )


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: a scripted two-agent realtime session, printed as its span tree."""
    _install(session, "newest")
    session.run("python", "-m", "realtime_spans.adapters.demo")


@nox.session
def soak(session: nox.Session) -> None:
    """The long hypothesis profile over the property tests and generated conversations."""
    _install(session, "newest", *TEST_DEPS)
    session.run("pytest", "-q", "--hypothesis-profile=soak", "property_tests", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Overhead benchmarks (the real WebSocket transport beside the peers' own realtime
    tracing, then the scripted sessions); not part of the default run."""
    _install(
        session,
        "newest",
        "openinference-instrumentation-openai-agents>=2.6",
        "opentelemetry-instrumentation-openai-agents>=0.62",
        "opentelemetry-sdk",
    )
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session
@nox.parametrize("sdk", list(SDKS))
def integrations(session: nox.Session, sdk: str) -> None:
    """With OpenInference and OpenLLMetry (into the OTel SDK), Logfire and the OpenAI
    exporter; offline."""
    _install(
        session,
        sdk,
        *TEST_DEPS,
        "openinference-instrumentation-openai-agents>=2.6",
        "logfire>=5.4",
        "opentelemetry-sdk",
        "opentelemetry-instrumentation-openai-agents>=0.62",
    )
    session.run(
        "pytest",
        "-q",
        "--hypothesis-profile=ci",
        "integration_tests",
        "--ignore=integration_tests/genai",
        *session.posargs,
    )


@nox.session
@nox.parametrize("sdk", list(SDKS))
def genai(session: nox.Session, sdk: str) -> None:
    """Through the OpenTelemetry GenAI processor (openai-agents-v2) into the OTel SDK.

    A session of its own: that package installs the same import package,
    ``opentelemetry.instrumentation.openai_agents``, as OpenLLMetry's (in ``integrations``),
    so the two cannot share an environment.
    """
    _install(
        session,
        sdk,
        *TEST_DEPS,
        "opentelemetry-instrumentation-openai-agents-v2>=0.1",
        "opentelemetry-sdk",
    )
    session.run("pytest", "-q", "integration_tests/genai", *session.posargs)


@nox.session
def package(session: nox.Session) -> None:
    """The package as users install it: sdist and wheel built and checked (``twine check
    --strict``, ``tools/check_package.py``), the wheel installed into a fresh environment
    and used from a directory outside the source tree (imports, the demo), and the
    sdist's own tests run there against it, as a downstream packager would."""
    session.install("build", "twine", "packaging>=24.2", "trove-classifiers", "virtualenv")
    root = Path.cwd()
    work = Path(tempfile.mkdtemp(prefix="realtime-spans-package-"))
    try:
        dist = work / "dist"
        session.run("python", "-m", "build", "--outdir", str(dist), str(root))
        session.run("twine", "check", "--strict", *sorted(str(p) for p in dist.iterdir()))
        session.run("python", "tools/check_package.py", "built", str(dist))

        venv = work / "venv"
        session.run("python", "-m", "virtualenv", "--quiet", str(venv))
        python = str(venv / "bin" / "python")
        (wheel,) = dist.glob("*.whl")
        (sdist,) = dist.glob("*.tar.gz")
        with session.chdir(work):
            session.run(python, "-m", "pip", "install", "--quiet", str(wheel), external=True)
            checker = str(root / "tools" / "check_package.py")
            session.run(python, checker, "installed", str(root), external=True)
            session.run(python, "-m", "realtime_spans.adapters.demo", external=True)
            session.run(python, "-m", "pip", "install", "--quiet", *TEST_DEPS, external=True)
        with tarfile.open(sdist) as archive:
            archive.extractall(work, filter="data")
        unpacked = work / sdist.name.removesuffix(".tar.gz")
        with session.chdir(unpacked):
            session.run(python, "-m", "pytest", "-q", "--hypothesis-profile=ci", external=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@nox.session
def e2e(session: nox.Session) -> None:
    """A traced call exported over OTLP to a real, local, offline Arize Phoenix, read back."""
    _install(
        session,
        "newest",
        "arize-phoenix>=20",
        "openinference-instrumentation-openai-agents>=2.6",
        "opentelemetry-sdk",
        "opentelemetry-exporter-otlp-proto-http",
    )
    session.run("python", "e2e/phoenix_e2e.py", *session.posargs)


@nox.session
def picture(session: nox.Session) -> None:
    """The demo session's trace as a waterfall picture: writes docs/trace.png."""
    _install(session, "newest", "matplotlib>=3.8")
    session.run("python", "docs/render_trace.py", *session.posargs)
