"""The HTTP app: health, readiness, metrics, and the REST admin API under ``/api/v1``."""
