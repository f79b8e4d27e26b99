"""The estimators: calibrated boosted trees for risk and needs, baselines, the scoring bundle."""
