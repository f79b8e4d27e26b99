"""The scoring service: FastAPI app, API keys, audit trail, model loading and reviewer pages."""
