"""The Kafka wire protocol listener: real Kafka clients produce, consume and run groups."""
