"""Training jobs: fit, evaluate, audit, log to MLflow, register and promote."""
