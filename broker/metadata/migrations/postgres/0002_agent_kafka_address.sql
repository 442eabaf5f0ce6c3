-- Each agent's Kafka listener (host:port), so Metadata can name every partition leader.
ALTER TABLE agents ADD COLUMN kafka_address TEXT NOT NULL DEFAULT '';
