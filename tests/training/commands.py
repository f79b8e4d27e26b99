"""The training jobs' command line, run as an operator runs it."""

import subprocess
import traceback

from typer.testing import CliRunner

from tests.tracking import tracking_store
from training.cli import app


def cli(*args: str, uri: str) -> subprocess.CompletedProcess:
    """`python -m training ARGS` against the tracking store at `uri`, run in this process: a fresh
    interpreter per call spent 3.5 s importing (test_other_layout runs `python -m training` itself). An
    exception the command does not handle ends it as in the interpreter: exit 1, traceback on stderr."""
    with tracking_store(uri):
        result = CliRunner().invoke(
            app, list(args), env={"MLFLOW_TRACKING_URI": uri}, prog_name="python -m training"
        )
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(
        ["python", "-m", "training", *args], result.exit_code, result.stdout, stderr
    )
