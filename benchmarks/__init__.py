"""Benchmarks: each module exposes ``run(report)``; ``python -m benchmarks.run`` runs them all."""
