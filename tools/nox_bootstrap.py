"""Run nox with nothing but Python 3.11+ and pip: ``python3 tools/nox_bootstrap.py -s tests``.

On first use it builds ``.nox-tools/venv`` beside this repository and installs nox there,
then runs nox from it with the given arguments. It needs no virtualenv, no ``venv``
module and no permission to install into the system Python: ``virtualenv`` is first put
into ``.nox-tools/`` with ``pip install --target`` (which works even where the system
Python refuses ``pip install``), and that ``virtualenv`` builds the venv.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".nox-tools"
VENV = TOOLS / "venv"
REQUIREMENTS = ("nox>=2024.10.9", "virtualenv>=20.26")
PIP_QUIET = ("--quiet", "--disable-pip-version-check")


def _venv_python() -> Path:
    scripts = "Scripts" if os.name == "nt" else "bin"
    return VENV / scripts / ("python.exe" if os.name == "nt" else "python")


def _ensure_nox() -> Path:
    python = _venv_python()
    marker = TOOLS / ".installed"
    wanted = " ".join(REQUIREMENTS)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    seed = TOOLS / "seed"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            *PIP_QUIET,
            "--target",
            str(seed),
            REQUIREMENTS[1],
        ],
        check=True,
    )
    subprocess.run(
        [sys.executable, "-m", "virtualenv", "--quiet", "--clear", str(VENV)],
        check=True,
        env={**os.environ, "PYTHONPATH": str(seed)},
    )
    subprocess.run([str(python), "-m", "pip", "install", *PIP_QUIET, *REQUIREMENTS], check=True)
    marker.write_text(wanted)
    return python


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may run on any Python
        sys.stderr.write("realtime-spans needs Python 3.11 or newer\n")
        return 2
    python = _ensure_nox()
    return subprocess.run([str(python), "-m", "nox", *argv], cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
