"""The Python client of the StreamHouse gRPC API: producer, consumer and admin."""
