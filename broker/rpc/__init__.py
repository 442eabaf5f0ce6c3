"""The gRPC service: admin, produce, fetch and group calls mapped onto the log and groups."""
