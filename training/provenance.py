"""What a run needs recorded to be reproduced later: the code's state and the packages that set numbers."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

# The packages whose versions can move a fitted model's numbers (scipy solves the logistic fits).
PINNED_PACKAGES = ("lightgbm", "mlflow", "numpy", "pandas", "scikit-learn", "scipy", "shap")
VERSION_PARAM = "version_{}"
COMMIT_TAG = "mlflow.source.git.commit"
DIRTY_TAG = "git_dirty"
CODE = Path(__file__).resolve().parent
# Where the code that fits and scores lives: a file added there and not yet committed is code the
# commit does not hold (a new module imported, a spec), while one elsewhere (notes, a notebook) is not.
PACKAGES = ("features", "models", "training", "serving")


def environment() -> dict[str, str]:
    """Python's and the pinned packages' versions, as the run's params name them."""
    return {"python": platform.python_version()} | {
        VERSION_PARAM.format(p): metadata.version(p) for p in PINNED_PACKAGES
    }


def git_state() -> tuple[str, bool] | None:
    """The commit this code is at and whether the code differs from it (a tracked file changed, or a file
    added under the packages and not committed); None outside a checkout.

    MLflow tags the commit of the entry script's checkout, if it has one, and never says whether the
    code had changed since, so a run trained from changed code would claim the commit."""
    try:
        commit = _git("rev-parse", "HEAD")
        changed = _git("status", "--porcelain", "--untracked-files=no")
        added = _git("ls-files", "--others", "--exclude-standard", "--", *(f":(top){p}" for p in PACKAGES))
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit, bool(changed or added)


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=CODE, capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
