"""The estimators: calibrated boosted trees for risk and needs, baselines, the scoring bundle."""

# Here rather than in models.registry, so that settings can name the default without importing MLflow.
DEFAULT_MODEL_NAME = "reintegra"
