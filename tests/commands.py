"""A command line run in the test process, ended as the interpreter would end it."""

import subprocess
import traceback

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
