"""The training jobs' command line, run as an operator runs it."""

import os
import subprocess
import sys


def cli(*args: str, uri: str) -> subprocess.CompletedProcess:
    """`python -m training ARGS` against the tracking store at `uri`."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    return subprocess.run(
        [sys.executable, "-m", "training", *args], capture_output=True, text=True, env=env, timeout=600
    )
