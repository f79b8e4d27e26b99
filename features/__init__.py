"""Feature pipeline: dataset specs, validation, need labels, encoding, synthetic data."""
