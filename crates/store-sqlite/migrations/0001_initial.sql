-- Whirl's store schema, version 1.
--
-- Plain SQL on purpose: a PostgreSQL store follows the same tables and indexes (BIGINT for
-- INTEGER, BIGSERIAL for the `seq` keys, TEXT or JSONB for bodies). Bodies are JSON text; every
-- column a query filters or sorts on is a real, indexed column.

-- Entities (actions, packages, triggers, rules) by collection, namespace and relative name.
-- `seq` increases on every write and breaks ties between writes within the same millisecond,
-- so "most recently updated first" is a total order.
CREATE TABLE entities (
    seq        INTEGER PRIMARY KEY,
    collection TEXT    NOT NULL,
    namespace  TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    rev        INTEGER NOT NULL,
    updated    INTEGER NOT NULL,
    body       TEXT    NOT NULL,
    UNIQUE (collection, namespace, name)
);
CREATE INDEX entities_by_updated ON entities (collection, namespace, updated DESC, seq DESC);

-- Activation records. `rel_name` is the action's name relative to its namespace (`pkg/name` or
-- `name`), taken from the record's `path` annotation; `seq` orders records that started in the
-- same millisecond (later stored first).
CREATE TABLE activations (
    seq           INTEGER PRIMARY KEY,
    activation_id TEXT    NOT NULL UNIQUE,
    namespace     TEXT    NOT NULL,
    rel_name      TEXT    NOT NULL,
    start         INTEGER NOT NULL,
    body          TEXT    NOT NULL
);
CREATE INDEX activations_by_start ON activations (namespace, start DESC, seq DESC);
CREATE INDEX activations_by_name ON activations (namespace, rel_name, start DESC, seq DESC);

-- The crash journal: accepted activations without a record yet.
CREATE TABLE activation_journal (
    activation_id TEXT    PRIMARY KEY,
    owner         TEXT    NOT NULL,
    accepted_at   INTEGER NOT NULL,
    body          TEXT    NOT NULL
);
CREATE INDEX activation_journal_by_owner ON activation_journal (owner, accepted_at);

-- Subjects: one row per namespace; the key only as its salted hash.
CREATE TABLE subjects (
    namespace TEXT PRIMARY KEY,
    subject   TEXT NOT NULL,
    uuid      TEXT NOT NULL UNIQUE,
    key_hash  TEXT NOT NULL,
    limits    TEXT NOT NULL
);
