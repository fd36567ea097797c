-- Issuance ledger, audit store and journal anchors of the KLMS on PostgreSQL.
-- Applied once per database by `kf-klms serve` (table kf_schema_migrations).

CREATE TABLE issuances (
    transaction_id  TEXT PRIMARY KEY,
    fob_uid         TEXT NOT NULL,
    station         TEXT NOT NULL,
    reader_id       TEXT NOT NULL,
    key_version     SMALLINT NOT NULL,
    issued_at_ms    BIGINT NOT NULL,
    expires_at_ms   BIGINT NOT NULL,
    completed_at_ms BIGINT
);
CREATE INDEX issuances_uid ON issuances (fob_uid, issued_at_ms);

-- One row per UID ever issued: its row lock serializes every issuance and
-- audit of that UID across all KLMS instances (the one-time rule).
CREATE TABLE fobs (
    fob_uid TEXT PRIMARY KEY
);

CREATE TABLE reissues (
    id            BIGSERIAL PRIMARY KEY,
    fob_uid       TEXT NOT NULL,
    reason        TEXT NOT NULL,
    operator      TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    consumed_by   TEXT
);
CREATE INDEX reissues_open ON reissues (fob_uid) WHERE consumed_by IS NULL;

CREATE TABLE audits (
    transaction_id TEXT PRIMARY KEY,
    station        TEXT NOT NULL,
    overall_result TEXT NOT NULL,
    body           TEXT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    flag           TEXT
);

CREATE TABLE chain_heads (
    station       TEXT PRIMARY KEY,
    seq           BIGINT NOT NULL,
    link          TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE TABLE chain_links (
    station TEXT NOT NULL,
    seq     BIGINT NOT NULL,
    link    TEXT NOT NULL,
    PRIMARY KEY (station, seq)
);
CREATE TABLE chain_alerts (
    id      BIGSERIAL PRIMARY KEY,
    station TEXT NOT NULL,
    kind    TEXT NOT NULL,
    seq     BIGINT NOT NULL,
    detail  TEXT NOT NULL,
    at_ms   BIGINT NOT NULL
);
CREATE INDEX chain_alerts_station ON chain_alerts (station);
