"""Consumer groups: membership, generations, partition assignment and committed offsets.

Written once for both front doors: the gRPC service and the Kafka listener use the same
coordinator.
"""
