"""Generated gRPC messages and stubs of the StreamHouse v1 API (see proto/streamhouse/v1)."""
