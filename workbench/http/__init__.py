"""The HTTP app: health, readiness, metrics (REST resources join as their issues land)."""
