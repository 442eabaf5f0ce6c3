-- Declared streams and tables (CREATE STREAM/TABLE): a typed reading of a topic, kept apart
-- from the topic itself (ksqlDB's namespaces). Streams and tables share one namespace, and
-- names are unique ignoring case, so name_key is the lower-cased name.
CREATE TABLE sources (
    name_key    TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,                   -- as declared
    kind        TEXT    NOT NULL CHECK (kind IN ('stream', 'table')),
    topic       TEXT    NOT NULL,                   -- no foreign key: a topic may go, the
                                                    -- declaration stays (as in ksqlDB)
    columns     TEXT    NOT NULL,                   -- JSON list of {name, type, key}
    properties  TEXT    NOT NULL,                   -- JSON object: formats, timestamp, ...
    created_at  INTEGER NOT NULL
);
