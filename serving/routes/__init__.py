"""One router per resource, included in serving.app."""
