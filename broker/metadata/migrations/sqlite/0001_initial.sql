-- StreamHouse metadata, SQLite flavour. Times are epoch milliseconds; INTEGER is 64-bit here.

CREATE TABLE topics (
    topic_id    INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids are never reused
    name        TEXT    NOT NULL UNIQUE,
    partitions  INTEGER NOT NULL CHECK (partitions > 0),
    config      TEXT    NOT NULL,                   -- TopicConfig as JSON
    created_at  INTEGER NOT NULL
);

CREATE TABLE partitions (
    topic_id          INTEGER NOT NULL REFERENCES topics (topic_id) ON DELETE CASCADE,
    partition         INTEGER NOT NULL CHECK (partition >= 0),
    log_start_offset  INTEGER NOT NULL DEFAULT 0,
    next_offset       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (topic_id, partition)
);

CREATE TABLE leases (
    topic_id    INTEGER NOT NULL,
    partition   INTEGER NOT NULL,
    holder      TEXT    NOT NULL,
    epoch       INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (topic_id, partition),
    FOREIGN KEY (topic_id, partition) REFERENCES partitions (topic_id, partition) ON DELETE CASCADE
);
CREATE INDEX leases_by_holder ON leases (holder);

CREATE TABLE segments (
    topic_id       INTEGER NOT NULL,
    partition      INTEGER NOT NULL,
    base_offset    INTEGER NOT NULL,
    last_offset    INTEGER NOT NULL,
    record_count   INTEGER NOT NULL,
    min_timestamp  INTEGER NOT NULL,
    max_timestamp  INTEGER NOT NULL,
    size_bytes     INTEGER NOT NULL,
    object_key     TEXT    NOT NULL,
    writer_epoch   INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (topic_id, partition, base_offset),
    FOREIGN KEY (topic_id, partition) REFERENCES partitions (topic_id, partition) ON DELETE CASCADE
);

CREATE TABLE agents (
    agent_id      TEXT    PRIMARY KEY,
    address       TEXT    NOT NULL,
    heartbeat_at  INTEGER NOT NULL,
    started_at    INTEGER NOT NULL
);

CREATE TABLE group_offsets (
    group_id          TEXT    NOT NULL,
    topic             TEXT    NOT NULL,
    partition         INTEGER NOT NULL,
    committed_offset  INTEGER NOT NULL,
    metadata          TEXT    NOT NULL,
    committed_at      INTEGER NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
);
CREATE INDEX group_offsets_by_topic ON group_offsets (topic);

CREATE TABLE producers (
    producer_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    epoch        INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE producer_partitions (
    producer_id     INTEGER NOT NULL REFERENCES producers (producer_id) ON DELETE CASCADE,
    topic           TEXT    NOT NULL,
    partition       INTEGER NOT NULL,
    producer_epoch  INTEGER NOT NULL,
    last_sequence   INTEGER NOT NULL,
    last_offset     INTEGER NOT NULL,
    PRIMARY KEY (producer_id, topic, partition)
);
CREATE INDEX producer_partitions_by_topic ON producer_partitions (topic);
