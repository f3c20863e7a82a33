"""Prepare the Python 3.12 environments that run pywebtransport, the WebTransport peer.

pywebtransport 0.21 (its server and client speak the current
draft-ietf-webtrans-http3) needs Python >= 3.12, newer than the test suite's
minimum, so it runs in an environment of its own, used from the tests and
the benchmark as a subprocess:

- ``.venv-wt312``: pywebtransport 0.21.1 (no other dependency), for the
  ``wt_pywebtransport`` server fixture and the benchmark's client;
- ``.venv-wt08`` (benchmark only, built on demand): pywebtransport 0.8.1
  (the release whose client API webwire's WebTransport client follows) with
  its aioquic stack, every package pinned.

Building is idempotent: a stamp holding a hash of the pins and of the
interpreter makes later calls return at once, and a change of either
rebuilds. A file lock makes concurrent callers (parallel test workers) safe.

The interpreter is ``$WT_PYTHON312`` if set, else pyenv's
``$(pyenv root)/versions/3.12.1/bin/python``, else ``python3.12`` on
``PATH``. ``$WT_VENV`` / ``$WT08_VENV`` override where the environments go.

Usage: ``python tests/integration/wt_env.py [--pywebtransport-08] [--check]``
prints the path of the environment's python.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = [
    "ENV08_DIR",
    "ENV_DIR",
    "PINS",
    "PINS_08",
    "NoPython312",
    "WTEnvError",
    "ensure_python",
    "find_python312",
    "is_ready",
]

ROOT = Path(__file__).resolve().parents[2]
ENV_DIR = Path(os.environ.get("WT_VENV", ROOT / ".venv-wt312"))
ENV08_DIR = Path(os.environ.get("WT08_VENV", ROOT / ".venv-wt08"))
PYENV_VERSION = "3.12.1"

#: pywebtransport 0.21.1 is one abi3 wheel (Rust inside) with no dependencies.
PINS = ["pywebtransport==0.21.1"]
#: pywebtransport 0.8.1 and its dependency tree, as resolved on Python 3.12.
PINS_08 = [
    "pywebtransport==0.8.1",
    "aioquic==1.7.2",
    "attrs==26.1.0",
    "certifi==2026.10.19.post1",
    "cffi==2.1.1",
    "cryptography==45.0.7",
    "pyasn1==0.6.5",
    "pyasn1_modules==0.4.2",
    "pycparser==3.12",
    "pylsqpack==1.0.0",
    "pyOpenSSL==25.3.0",
    "service-identity==24.2.0",
    "typing_extensions==4.16.0",
]
_STAMP = ".installed"
_LOCK = ".lock"

PYTHON312_HINT = (
    "pywebtransport 0.21 needs Python 3.12 or newer. Set WT_PYTHON312 to a python3.12 "
    "binary, or install one with pyenv: `pyenv install 3.12.1`."
)


class WTEnvError(RuntimeError):
    """A pywebtransport environment cannot be prepared."""


class NoPython312(WTEnvError):
    """No Python 3.12 interpreter was found."""


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


def find_python312() -> str:
    """Return the path of a working Python 3.12 interpreter.

    Raises:
        NoPython312: None found, or the one named by ``WT_PYTHON312`` does
            not run or is not 3.12.
    """
    candidates: list[str] = []
    explicit = os.environ.get("WT_PYTHON312")
    if explicit:
        candidates.append(explicit)
    else:
        root = _pyenv_root()
        if root is not None:
            candidates.append(str(root / "versions" / PYENV_VERSION / "bin" / "python"))
        found = shutil.which("python3.12")
        if found:
            candidates.append(found)
    tried = []
    for candidate in candidates:
        try:
            out = subprocess.run(
                [candidate, "-c", "import sys, ssl, venv; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            tried.append(f"{candidate} ({exc.__class__.__name__})")
            continue
        if out.returncode == 0 and out.stdout.strip() == "3.12":
            return candidate
        tried.append(f"{candidate} (not a working Python 3.12 with ssl and venv)")
    where = "; tried: " + ", ".join(tried) if tried else ""
    raise NoPython312(f"no Python 3.12 found{where}. {PYTHON312_HINT}")


def _select(pywebtransport_08: bool) -> tuple[Path, list[str]]:
    return (ENV08_DIR, PINS_08) if pywebtransport_08 else (ENV_DIR, PINS)


def _python(env_dir: Path) -> Path:
    return env_dir / "bin" / "python"


def _fingerprint(python: str, pins: list[str]) -> str:
    digest = hashlib.sha256()
    digest.update("\n".join(pins).encode())
    digest.update(python.encode())
    return digest.hexdigest()


def is_ready(pywebtransport_08: bool = False) -> bool:
    """Whether the environment is built from the current pins."""
    try:
        python = find_python312()
    except WTEnvError:
        return False
    env_dir, pins = _select(pywebtransport_08)
    stamp = env_dir / _STAMP
    return (
        _python(env_dir).exists()
        and stamp.exists()
        and stamp.read_text().strip() == _fingerprint(python, pins)
    )


def _run(argv: list[str], what: str) -> None:
    out = subprocess.run(argv, capture_output=True, text=True)
    if out.returncode != 0:
        tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-25:])
        raise WTEnvError(f"{what} failed (exit {out.returncode}):\n{tail}")


def _build(python: str, env_dir: Path, pins: list[str], log: bool) -> None:
    for entry in env_dir.iterdir():
        if entry.name == _LOCK:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    if log:
        print(f"wt_env: creating {env_dir} with {python}", file=sys.stderr)
    _run([python, "-m", "venv", "--clear", str(env_dir)], "creating the environment")
    if log:
        print(f"wt_env: installing {', '.join(pins[:1])}", file=sys.stderr)
    venv_python = str(_python(env_dir))
    pip_quiet = ["--quiet", "--disable-pip-version-check", "--no-input"]
    _run([venv_python, "-m", "pip", "install", *pip_quiet, *pins], "installing pywebtransport")
    _run([venv_python, "-c", "import pywebtransport"], "importing pywebtransport")


def ensure_python(log: bool = True, pywebtransport_08: bool = False) -> Path:
    """Build the environment unless it is up to date; return the path of its python.

    Args:
        log: Print each build step on standard error.
        pywebtransport_08: The pywebtransport 0.8.1 environment instead of 0.21.1's.

    Raises:
        NoPython312: No Python 3.12 interpreter.
        WTEnvError: A build step failed (the message carries the end of its output).
    """
    python = find_python312()
    env_dir, pins = _select(pywebtransport_08)
    fingerprint = _fingerprint(python, pins)
    env_dir.mkdir(parents=True, exist_ok=True)
    with open(env_dir / _LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = env_dir / _STAMP
        if _python(env_dir).exists() and stamp.exists():
            if stamp.read_text().strip() == fingerprint:
                return _python(env_dir)
        _build(python, env_dir, pins, log)
        stamp.write_text(fingerprint + "\n")
    return _python(env_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report whether it is ready")
    parser.add_argument(
        "--pywebtransport-08", action="store_true", help="the pywebtransport 0.8.1 environment"
    )
    args = parser.parse_args(argv)
    env_dir, _ = _select(args.pywebtransport_08)
    if args.check:
        ready = is_ready(args.pywebtransport_08)
        print(f"{env_dir}: {'ready' if ready else 'not ready'}")
        return 0 if ready else 1
    try:
        print(ensure_python(pywebtransport_08=args.pywebtransport_08))
    except WTEnvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
