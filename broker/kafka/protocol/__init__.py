"""Kafka request/response codec compiled from the generated spec tables (see codec.py)."""
