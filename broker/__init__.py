"""The durable log: record batches, WAL, segments, object stores, metadata and leases.

`broker` imports nothing from `sql`, `engine` or `workbench` (DESIGN.md, Layout).
"""
