-- StreamHouse metadata, PostgreSQL flavour. Times are epoch milliseconds; offsets, ids and
-- times are BIGINT. Runs with search_path set to the store's schema.

-- The store's clock: lease expiry is judged by the server, never by an agent's own clock.
CREATE FUNCTION sh_now_ms() RETURNS BIGINT
    LANGUAGE sql VOLATILE
    AS $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT $$;

CREATE TABLE topics (
    topic_id    BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    partitions  INTEGER NOT NULL CHECK (partitions > 0),
    config      TEXT    NOT NULL,                   -- TopicConfig as JSON
    created_at  BIGINT  NOT NULL
);

CREATE TABLE partitions (
    topic_id          BIGINT  NOT NULL REFERENCES topics (topic_id) ON DELETE CASCADE,
    partition         INTEGER NOT NULL CHECK (partition >= 0),
    log_start_offset  BIGINT  NOT NULL DEFAULT 0,
    next_offset       BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (topic_id, partition)
);

CREATE TABLE leases (
    topic_id    BIGINT  NOT NULL,
    partition   INTEGER NOT NULL,
    holder      TEXT    NOT NULL,
    epoch       BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    PRIMARY KEY (topic_id, partition),
    FOREIGN KEY (topic_id, partition) REFERENCES partitions (topic_id, partition) ON DELETE CASCADE
);
CREATE INDEX leases_by_holder ON leases (holder);

CREATE TABLE segments (
    topic_id       BIGINT  NOT NULL,
    partition      INTEGER NOT NULL,
    base_offset    BIGINT  NOT NULL,
    last_offset    BIGINT  NOT NULL,
    record_count   BIGINT  NOT NULL,
    min_timestamp  BIGINT  NOT NULL,
    max_timestamp  BIGINT  NOT NULL,
    size_bytes     BIGINT  NOT NULL,
    object_key     TEXT    NOT NULL,
    writer_epoch   BIGINT  NOT NULL,
    created_at     BIGINT  NOT NULL,
    PRIMARY KEY (topic_id, partition, base_offset),
    FOREIGN KEY (topic_id, partition) REFERENCES partitions (topic_id, partition) ON DELETE CASCADE
);

CREATE TABLE agents (
    agent_id      TEXT    PRIMARY KEY,
    address       TEXT    NOT NULL,
    heartbeat_at  BIGINT  NOT NULL,
    started_at    BIGINT  NOT NULL
);

CREATE TABLE group_offsets (
    group_id          TEXT    NOT NULL,
    topic             TEXT    NOT NULL,
    partition         INTEGER NOT NULL,
    committed_offset  BIGINT  NOT NULL,
    metadata          TEXT    NOT NULL,
    committed_at      BIGINT  NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
);
CREATE INDEX group_offsets_by_topic ON group_offsets (topic);

CREATE TABLE producers (
    producer_id  BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    epoch        INTEGER NOT NULL,
    updated_at   BIGINT  NOT NULL
);

CREATE TABLE producer_partitions (
    producer_id     BIGINT  NOT NULL REFERENCES producers (producer_id) ON DELETE CASCADE,
    topic           TEXT    NOT NULL,
    partition       INTEGER NOT NULL,
    producer_epoch  INTEGER NOT NULL,
    last_sequence   INTEGER NOT NULL,
    last_offset     BIGINT  NOT NULL,
    PRIMARY KEY (producer_id, topic, partition)
);
CREATE INDEX producer_partitions_by_topic ON producer_partitions (topic);
