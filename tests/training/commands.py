"""The training jobs' command line, run as an operator runs it."""

import subprocess

from tests.commands import run_in_process
from tests.tracking import tracking_store
from training.cli import app


def cli(*args: str, uri: str) -> subprocess.CompletedProcess:
    """`python -m training ARGS` against the tracking store at `uri`, in this process (a fresh interpreter
    spent 3.5 s importing per call; test_other_layout runs `python -m training` as a process of its own)."""
    with tracking_store(uri):
        return run_in_process(app, "training", *args, env={"MLFLOW_TRACKING_URI": uri})
