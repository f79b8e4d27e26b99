"""The server's command line where it must refuse to start."""

import os
import subprocess
import sys


def test_serving_without_a_champion_says_what_to_do(tmp_path):
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/empty-mlflow.db",
        "REINTEGRA_AUDIT_URL": f"sqlite:///{tmp_path}/audit.db",
        "REINTEGRA_KEYS_URL": f"sqlite:///{tmp_path}/audit.db",
    }
    result = subprocess.run(
        [sys.executable, "-m", "serving", "--port", "1"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 2
    assert "no model at models:/reintegra@champion; train and promote one first" in result.stderr
    assert "Traceback" not in result.stderr
