"""Prepare ``.venv-autobahn``: a Python 2.7 environment running Autobahn|Testsuite.

The fuzzing server of Autobahn|Testsuite (``wstest -m fuzzingserver``) only
runs on Python 2.7, with the 0.8.2 release (the later 25.x releases do not
start). This module builds that environment and is idempotent:

1. finds a Python 2.7 interpreter: ``$AUTOBAHN_PYTHON2``, else pyenv's
   ``$(pyenv root)/versions/2.7.18/bin/python``, else ``python2.7`` on
   ``PATH`` (Debian 12 ships no Python 2 package; ``pyenv install 2.7.18``
   builds one, given the CPython build dependencies);
2. installs ``virtualenv==20.21.1`` (the last release that creates Python 2
   environments) with the running Python 3 into a temporary directory and
   creates ``.venv-autobahn`` with it;
3. installs ``requirements-autobahn.txt`` (every package pinned) into it;
4. writes a stamp holding a hash of the requirements and the interpreter,
   so later calls return at once, and rebuild when either changes.

A file lock makes concurrent calls (parallel test workers) safe.

Usage: ``python tests/conformance/autobahn_env.py`` prints the path of
``wstest``; ``--check`` only reports whether the environment is ready.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["ENV_DIR", "AutobahnEnvError", "ensure_wstest", "find_python2", "is_ready"]

ROOT = Path(__file__).resolve().parents[2]
ENV_DIR = Path(os.environ.get("AUTOBAHN_VENV", ROOT / ".venv-autobahn"))
REQUIREMENTS = Path(__file__).resolve().parent / "requirements-autobahn.txt"
VIRTUALENV_REQUIREMENTS = [
    "virtualenv==20.21.1",
    "distlib==0.4.4",
    "filelock==3.32.7",
    "platformdirs==3.11.0",
]
PYENV_VERSION = "2.7.18"
_STAMP = ".installed"
_LOCK = ".lock"

PYTHON2_HINT = (
    "Autobahn|Testsuite's fuzzing server needs Python 2.7. Set AUTOBAHN_PYTHON2 to a "
    "python2.7 binary, or install one with pyenv: `pyenv install 2.7.18` (needs the "
    "CPython build dependencies: build-essential libssl-dev zlib1g-dev libbz2-dev "
    "libreadline-dev libsqlite3-dev libffi-dev). Debian 12 has no python2.7 package."
)


class AutobahnEnvError(RuntimeError):
    """The Python 2.7 environment of the fuzzing server cannot be prepared."""


def _wstest() -> Path:
    return ENV_DIR / "bin" / "wstest"


def _pyenv_root() -> Path | None:
    root = os.environ.get("PYENV_ROOT")
    if root:
        return Path(root)
    pyenv = shutil.which("pyenv")
    if pyenv is not None:
        try:
            out = subprocess.run(
                [pyenv, "root"], capture_output=True, text=True, timeout=30, check=True
            )
            return Path(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    default = Path.home() / ".pyenv"
    return default if default.is_dir() else None


def find_python2() -> str:
    """Return the path of a working Python 2.7 interpreter.

    Raises:
        AutobahnEnvError: None found, or the one named by ``AUTOBAHN_PYTHON2``
            is not a working Python 2.7.
    """
    candidates: list[str] = []
    explicit = os.environ.get("AUTOBAHN_PYTHON2")
    if explicit:
        candidates.append(explicit)
    else:
        root = _pyenv_root()
        if root is not None:
            candidates.append(str(root / "versions" / PYENV_VERSION / "bin" / "python"))
        found = shutil.which("python2.7")
        if found:
            candidates.append(found)
    tried = []
    for candidate in candidates:
        try:
            out = subprocess.run(
                [candidate, "-c", "import sys, zlib, ssl; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            tried.append(f"{candidate} ({exc.__class__.__name__})")
            continue
        if out.returncode == 0 and out.stdout.strip() == "2.7":
            return candidate
        tried.append(f"{candidate} (not a working Python 2.7 with zlib and ssl)")
    where = "; tried: " + ", ".join(tried) if tried else ""
    raise AutobahnEnvError(f"no Python 2.7 found{where}. {PYTHON2_HINT}")


def _fingerprint(python2: str) -> str:
    digest = hashlib.sha256()
    digest.update(REQUIREMENTS.read_bytes())
    digest.update("\n".join(VIRTUALENV_REQUIREMENTS).encode())
    digest.update(python2.encode())
    return digest.hexdigest()


def is_ready() -> bool:
    """Whether ``.venv-autobahn`` is built from the current requirements."""
    try:
        python2 = find_python2()
    except AutobahnEnvError:
        return False
    stamp = ENV_DIR / _STAMP
    return (
        _wstest().exists() and stamp.exists() and stamp.read_text().strip() == _fingerprint(python2)
    )


def _run(argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
    out = subprocess.run(argv, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-25:])
        raise AutobahnEnvError(f"{what} failed (exit {out.returncode}):\n{tail}")


def _build(python2: str, log: bool) -> None:
    for entry in ENV_DIR.iterdir():
        if entry.name == _LOCK:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    pip_quiet = ["--quiet", "--disable-pip-version-check", "--no-input"]
    with tempfile.TemporaryDirectory(prefix="virtualenv-tool-") as tool:
        if log:
            print(f"autobahn: installing {VIRTUALENV_REQUIREMENTS[0]}", file=sys.stderr)
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                *pip_quiet,
                "--target",
                tool,
                *VIRTUALENV_REQUIREMENTS,
            ],
            "installing virtualenv",
        )
        env = dict(os.environ, PYTHONPATH=tool)
        if log:
            print(f"autobahn: creating {ENV_DIR} with {python2}", file=sys.stderr)
        _run(
            [sys.executable, "-m", "virtualenv", "--quiet", "-p", python2, str(ENV_DIR)],
            "virtualenv",
            env=env,
        )
    if log:
        print(f"autobahn: installing {REQUIREMENTS.name}", file=sys.stderr)
    python = str(ENV_DIR / "bin" / "python")
    _run(
        [python, "-m", "pip", "install", *pip_quiet, "-r", str(REQUIREMENTS)],
        "installing Autobahn|Testsuite",
    )
    _run(
        [python, "-c", "import autobahntestsuite.wstest"],
        "importing autobahntestsuite",
    )


def ensure_wstest(log: bool = True) -> Path:
    """Build ``.venv-autobahn`` unless it is up to date; return the path of ``wstest``.

    Args:
        log: Print each build step on standard error.

    Raises:
        AutobahnEnvError: No Python 2.7, or a build step failed (the message
            carries the end of its output).
    """
    python2 = find_python2()
    fingerprint = _fingerprint(python2)
    ENV_DIR.mkdir(parents=True, exist_ok=True)
    with open(ENV_DIR / _LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = ENV_DIR / _STAMP
        if _wstest().exists() and stamp.exists() and stamp.read_text().strip() == fingerprint:
            return _wstest()
        _build(python2, log)
        stamp.write_text(fingerprint + "\n")
    return _wstest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report whether it is ready")
    args = parser.parse_args(argv)
    if args.check:
        ready = is_ready()
        print(f"{ENV_DIR}: {'ready' if ready else 'not ready'}")
        return 0 if ready else 1
    try:
        print(ensure_wstest())
    except AutobahnEnvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
