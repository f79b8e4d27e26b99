"""Command lines as the tests run them: in the test process, or as a process of their own whose imports
are listed."""

import os
import subprocess
import sys
import traceback
from pathlib import Path

import typer
from typer.testing import CliRunner


def run_in_process(
    app: typer.Typer, module: str, *args: str, env: dict | None = None
) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS` without a fresh interpreter, which spends seconds importing before each call.
    An exception the command does not handle ends it as in the interpreter: exit 1, traceback on stderr."""
    result = CliRunner().invoke(app, list(args), env=env, prog_name=f"python -m {module}")
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(
        ["python", "-m", module, *args], result.exit_code, result.stdout, stderr
    )


def modules_imported(module: str, *args: str, folder: Path, env: dict | None = None) -> tuple[int, set[str]]:
    """The exit code of `python -m MODULE ARGS`, run in `folder` as a process of its own, and every module
    it imported (from the interpreter's -X importtime log)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", module, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=folder,
        timeout=120,
    )
    return result.returncode, {
        line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line
    }
