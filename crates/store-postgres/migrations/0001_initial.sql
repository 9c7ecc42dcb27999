-- Whirl's store schema for PostgreSQL, version 1: the same tables, columns and indexes as the
-- SQLite store's (crates/store-sqlite/migrations/0001_initial.sql), BIGINT for its INTEGER.
--
-- Bodies are JSON text (TEXT, not JSONB): they come back byte for byte as written, and JSONB
-- would reject the escaped NUL (\u0000) that JSON strings may hold. Every column a query filters
-- or sorts on is a real, indexed column.

-- Entities (actions, packages, triggers, rules) by collection, namespace and relative name.
-- `seq` is taken from `entity_writes` on every write (insert and update) and breaks ties between
-- writes within the same millisecond, so "most recently updated first" is a total order.
CREATE SEQUENCE entity_writes;
CREATE TABLE entities (
    seq        BIGINT PRIMARY KEY DEFAULT nextval('entity_writes'),
    collection TEXT   NOT NULL,
    namespace  TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    rev        BIGINT NOT NULL,
    updated    BIGINT NOT NULL,
    body       TEXT   NOT NULL,
    UNIQUE (collection, namespace, name)
);
ALTER SEQUENCE entity_writes OWNED BY entities.seq;
CREATE INDEX entities_by_updated ON entities (collection, namespace, updated DESC, seq DESC);
-- Prefix filters (`pkg/`) run within one namespace's rows, found through the UNIQUE index.

-- Activation records. `rel_name` is the action's name relative to its namespace (`pkg/name` or
-- `name`), taken from the record's `path` annotation; `seq` orders records that started in the
-- same millisecond (later stored first).
CREATE TABLE activations (
    seq           BIGSERIAL PRIMARY KEY,
    activation_id TEXT   NOT NULL UNIQUE,
    namespace     TEXT   NOT NULL,
    rel_name      TEXT   NOT NULL,
    start         BIGINT NOT NULL,
    body          TEXT   NOT NULL
);
CREATE INDEX activations_by_start ON activations (namespace, start DESC, seq DESC);
CREATE INDEX activations_by_name ON activations (namespace, rel_name, start DESC, seq DESC);

-- The crash journal: accepted activations without a record yet.
CREATE TABLE activation_journal (
    activation_id TEXT   PRIMARY KEY,
    owner         TEXT   NOT NULL,
    accepted_at   BIGINT NOT NULL,
    body          TEXT   NOT NULL
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
