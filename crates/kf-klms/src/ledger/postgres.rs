//! The ledger on PostgreSQL: several KLMS instances share one database.
//!
//! Same rules as the SQLite [`Ledger`](super::Ledger) (see the module
//! documentation of [`crate::ledger`]); what changes is how they hold across
//! processes:
//!
//! - **One-time issuance across instances: a row lock per UID.** Every
//!   issuance and every audit of a UID first runs
//!   `INSERT INTO fobs … ON CONFLICT (fob_uid) DO UPDATE` on that UID's row,
//!   which takes the row lock (as `SELECT … FOR UPDATE` would, and also for
//!   a UID never seen) until the transaction ends. A second instance's
//!   transaction for the same UID waits there; under READ COMMITTED its next
//!   statement sees the first one's committed issuance, so the one-time check
//!   refuses it. The primary key of `issuances` (transaction id) stays the
//!   last line of defence.
//! - **Audit ingest is idempotent across instances** by the primary key of
//!   `audits`: `INSERT … ON CONFLICT DO NOTHING`, then the stored body decides
//!   between duplicate and conflicting record.
//! - **Journal anchors** lock the station's `chain_heads` row the same way.
//! - **Group commit**: a batch from the ledger writer is one transaction, each
//!   op in its own savepoint. A deadlock between two instances' batches
//!   (SQLSTATE 40P01) or a serialization failure (40001) aborts the batch,
//!   which is then retried whole (at most [`BATCH_ATTEMPTS`] times).
//!
//! Database round trips per issuance (prepared statements, one per round
//! trip): savepoint, UID lock, conditional insert, release = 4, plus the
//! batch's `BEGIN` and `COMMIT` shared by every op of the batch; a refused
//! or re-issued UID costs 1–3 more.
//!
//! Schema changes live in `migrations/postgres/` of this crate and are applied
//! at connect time under an advisory lock (instances starting together apply
//! each migration once).

use postgres::config::SslMode;
use postgres::error::SqlState;
use postgres::{Client, NoTls, Statement, Transaction};
use tokio_postgres_rustls::MakeRustlsConnect;
use zeroize::Zeroizing;

use super::{
    already_issued, audit_flag_for, audit_stored_again, check_audit_issuance, AnchorRequest,
    AuditRecord, AuditStored, LedgerError, LedgerOp, LedgerOutcome, LedgerStore, NewIssuance,
    OperatorAction,
};
use crate::anchor::{self, Alert, AnchorStep, ChainRefusal, ChainState};

/// The migrations, in order: (version, SQL).
const MIGRATIONS: &[(i32, &str)] =
    &[(1, include_str!("../../migrations/postgres/0001_ledger.sql"))];

/// Key of the advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x6b66_6b6c_6d73; // "kfklms"

/// Attempts of a batch aborted by a deadlock or serialization failure.
pub const BATCH_ATTEMPTS: usize = 5;

/// A description of the ledger URL for logs: host, port, database and user,
/// never the password.
pub fn describe(url: &str) -> String {
    match url.parse::<postgres::Config>() {
        Ok(c) => {
            let hosts: Vec<String> = c
                .get_hosts()
                .iter()
                .map(|h| match h {
                    postgres::config::Host::Tcp(name) => name.clone(),
                    #[cfg(unix)]
                    postgres::config::Host::Unix(path) => path.display().to_string(),
                })
                .collect();
            let ports: Vec<String> = c.get_ports().iter().map(u16::to_string).collect();
            format!(
                "host={} port={} dbname={} user={}",
                hosts.join(","),
                ports.join(","),
                c.get_dbname().unwrap_or("(default)"),
                c.get_user().unwrap_or("(default)")
            )
        }
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

/// Prepared statements (one round trip each).
struct Statements {
    lock_fob: Statement,
    insert_if_free: Statement,
    blocking: Statement,
    open_reissue: Statement,
    consume_reissue: Statement,
    insert_issuance: Statement,
    issued: Statement,
    insert_audit: Statement,
    stored_body: Statement,
    complete: Statement,
    lock_head: Statement,
    link_at: Statement,
    insert_link: Statement,
    set_head: Statement,
    insert_alert: Statement,
}

impl Statements {
    fn prepare(c: &mut Client) -> Result<Statements, LedgerError> {
        Ok(Statements {
            lock_fob: c.prepare(
                "INSERT INTO fobs (fob_uid) VALUES ($1)
                 ON CONFLICT (fob_uid) DO UPDATE SET fob_uid = EXCLUDED.fob_uid",
            )?,
            // The common case in one statement: insert unless a package blocks.
            insert_if_free: c.prepare(
                "INSERT INTO issuances (transaction_id, fob_uid, station, reader_id, key_version,
                                        issued_at_ms, expires_at_ms)
                 SELECT $1, $2, $3, $4, $5, $6, $7
                 WHERE NOT EXISTS (SELECT 1 FROM issuances WHERE fob_uid = $2
                                   AND (completed_at_ms IS NOT NULL OR expires_at_ms > $6))",
            )?,
            blocking: c.prepare(
                "SELECT completed_at_ms FROM issuances
                 WHERE fob_uid = $1 AND (completed_at_ms IS NOT NULL OR expires_at_ms > $2)
                 ORDER BY issued_at_ms DESC LIMIT 1",
            )?,
            open_reissue: c.prepare(
                "SELECT id FROM reissues WHERE fob_uid = $1 AND consumed_by IS NULL
                 ORDER BY id LIMIT 1",
            )?,
            consume_reissue: c.prepare("UPDATE reissues SET consumed_by = $2 WHERE id = $1")?,
            insert_issuance: c.prepare(
                "INSERT INTO issuances (transaction_id, fob_uid, station, reader_id, key_version,
                                        issued_at_ms, expires_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )?,
            issued: c.prepare(
                "SELECT i.station, i.fob_uid, i.expires_at_ms,
                        EXISTS (SELECT 1 FROM issuances j WHERE j.fob_uid = i.fob_uid
                                AND j.issued_at_ms > i.issued_at_ms
                                AND j.transaction_id <> i.transaction_id)
                 FROM issuances i WHERE i.transaction_id = $1",
            )?,
            insert_audit: c.prepare(
                "INSERT INTO audits (transaction_id, station, overall_result, body,
                                     received_at_ms, flag)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (transaction_id) DO NOTHING",
            )?,
            stored_body: c.prepare("SELECT body FROM audits WHERE transaction_id = $1")?,
            complete: c
                .prepare("UPDATE issuances SET completed_at_ms = $2 WHERE transaction_id = $1")?,
            lock_head: c.prepare(
                "INSERT INTO chain_heads (station, seq, link, updated_at_ms)
                 VALUES ($1, 0, $2, 0)
                 ON CONFLICT (station) DO UPDATE SET station = EXCLUDED.station
                 RETURNING seq, link",
            )?,
            link_at: c.prepare("SELECT link FROM chain_links WHERE station = $1 AND seq = $2")?,
            insert_link: c
                .prepare("INSERT INTO chain_links (station, seq, link) VALUES ($1, $2, $3)")?,
            set_head: c.prepare(
                "UPDATE chain_heads SET seq = $2, link = $3, updated_at_ms = $4 WHERE station = $1",
            )?,
            insert_alert: c.prepare(
                "INSERT INTO chain_alerts (station, kind, seq, detail, at_ms)
                 VALUES ($1, $2, $3, $4, $5)",
            )?,
        })
    }
}

/// The PostgreSQL ledger: one connection (the writer's, or a reader's).
pub struct PgLedger {
    target: PgTarget,
    read_only: bool,
    client: Client,
    st: Statements,
}

/// Where and how the ledger is reached: the connection URL (may hold a
/// password: zeroized on drop, never printed) and, when a CA is configured,
/// TLS that verifies the server's certificate against that CA.
#[derive(Clone)]
pub struct PgTarget {
    url: Zeroizing<String>,
    tls: Option<MakeRustlsConnect>,
}

impl PgTarget {
    /// A target for `url`; with `ca_pem`, every connection uses TLS
    /// (`sslmode=require` whatever the URL says, so a server or a party in the
    /// middle cannot downgrade it) and the server certificate must chain to
    /// `ca_pem` and name the URL's host. Without it, a URL that asks for
    /// `sslmode=require` is refused here rather than at the first connection.
    pub fn new(url: Zeroizing<String>, ca_pem: Option<&str>) -> Result<PgTarget, LedgerError> {
        let config = parse_url(&url)?;
        let tls = match ca_pem {
            Some(pem) => Some(MakeRustlsConnect::new(
                crate::tls::ledger_client_config(pem)
                    .map_err(|e| LedgerError::Config(format!("ledger CA: {e}")))?,
            )),
            None if config.get_ssl_mode() == SslMode::Require => {
                return Err(LedgerError::Config(
                    "the ledger URL asks for sslmode=require: set ledger_ca_file to the CA \
                     that signs the PostgreSQL server certificate"
                        .into(),
                ))
            }
            None => None,
        };
        Ok(PgTarget { url, tls })
    }

    /// Host, port, database, user and transport, for logs (never the password).
    pub fn describe(&self) -> String {
        let transport = if self.tls.is_some() { "TLS" } else { "no TLS" };
        format!("{} ({transport})", describe(&self.url))
    }

    fn connect(&self) -> Result<Client, LedgerError> {
        let mut config = parse_url(&self.url)?;
        Ok(match &self.tls {
            Some(tls) => {
                config.ssl_mode(SslMode::Require);
                config.connect(tls.clone())?
            }
            None => config.connect(NoTls)?,
        })
    }
}

fn parse_url(url: &str) -> Result<postgres::Config, LedgerError> {
    url.parse()
        .map_err(|_| LedgerError::Config("the PostgreSQL ledger URL cannot be parsed".into()))
}

fn connect_client(target: &PgTarget, read_only: bool) -> Result<Client, LedgerError> {
    let mut client = target.connect()?;
    if read_only {
        client.batch_execute("SET default_transaction_read_only = on")?;
    } else {
        // An issuance is answered only once its commit is on disk, whatever the server's
        // default (`synchronous_commit = off` would answer before the flush).
        client.batch_execute("SET synchronous_commit = on")?;
    }
    Ok(client)
}

fn migrate(client: &mut Client) -> Result<(), LedgerError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS kf_schema_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )?;
    for (version, sql) in MIGRATIONS {
        let done = tx
            .query_opt(
                "SELECT 1 FROM kf_schema_migrations WHERE version = $1",
                &[version],
            )?
            .is_some();
        if !done {
            tx.batch_execute(sql)?;
            tx.execute(
                "INSERT INTO kf_schema_migrations (version) VALUES ($1)",
                &[version],
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Whether a batch failed only because of concurrency and can be retried.
fn is_retryable(e: &LedgerError) -> bool {
    matches!(e, LedgerError::Postgres(pg) if matches!(
        pg.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    ))
}

impl PgLedger {
    /// Connects, applies pending migrations and prepares the statements.
    pub fn connect(target: &PgTarget) -> Result<PgLedger, LedgerError> {
        let mut client = connect_client(target, false)?;
        migrate(&mut client)?;
        let st = Statements::prepare(&mut client)?;
        Ok(PgLedger {
            target: target.clone(),
            read_only: false,
            client,
            st,
        })
    }

    /// Connects a read-only session (the schema must exist).
    pub fn connect_reader(target: &PgTarget) -> Result<PgLedger, LedgerError> {
        let mut client = connect_client(target, true)?;
        let st = Statements::prepare(&mut client)?;
        Ok(PgLedger {
            target: target.clone(),
            read_only: true,
            client,
            st,
        })
    }

    /// Reconnects after the server closed the connection (restart, failover).
    fn ensure_connected(&mut self) -> Result<(), LedgerError> {
        if self.client.is_closed() {
            tracing::warn!("PostgreSQL ledger connection lost; reconnecting");
            let mut client = connect_client(&self.target, self.read_only)?;
            self.st = Statements::prepare(&mut client)?;
            self.client = client;
        }
        Ok(())
    }

    fn run_batch(
        &mut self,
        ops: &[LedgerOp],
    ) -> Result<Vec<Result<LedgerOutcome, LedgerError>>, LedgerError> {
        let st = &self.st;
        let mut tx = self.client.transaction()?;
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            let mut sp = tx.transaction()?;
            let result = match op {
                LedgerOp::Issue(new) => {
                    issue_in(&mut sp, st, &new.borrowed()).map(|()| LedgerOutcome::Issued)
                }
                LedgerOp::Audit(a) => store_audit_in(&mut sp, st, a).map(LedgerOutcome::Audit),
                LedgerOp::Anchor(a) => anchor_in(&mut sp, st, a).map(LedgerOutcome::Anchored),
            };
            let result = match result {
                // Aborts the whole batch (rolled back on return); the caller retries it.
                Err(e) if is_retryable(&e) => return Err(e),
                r => r,
            };
            if result.is_ok() {
                sp.commit()?;
            } else {
                sp.rollback()?;
            }
            if let (LedgerOp::Anchor(a), Err(LedgerError::ChainRefused(why))) = (op, &result) {
                record_alert(
                    &mut tx,
                    st,
                    &Alert::refused(&a.station, a.seq, why, a.now_ms),
                )?;
            }
            results.push(result);
        }
        tx.commit()?;
        Ok(results)
    }

    /// One op in its own transaction (the single-op calls of [`LedgerStore`]).
    fn single(&mut self, op: LedgerOp) -> Result<LedgerOutcome, LedgerError> {
        let mut results = self.apply_batch(std::slice::from_ref(&op))?;
        results.pop().unwrap_or(Err(LedgerError::WriterStopped))
    }
}

/// Takes the row lock of `fob_uid` until the transaction (or savepoint) ends.
fn lock_fob(tx: &mut Transaction<'_>, st: &Statements, fob_uid: &str) -> Result<(), LedgerError> {
    tx.execute(&st.lock_fob, &[&fob_uid])?;
    Ok(())
}

/// Check + insert of one issuance, under the UID's row lock.
fn issue_in(
    tx: &mut Transaction<'_>,
    st: &Statements,
    new: &NewIssuance<'_>,
) -> Result<(), LedgerError> {
    lock_fob(tx, st, new.fob_uid)?;
    let kv = i16::from(new.key_version);
    let params: [&(dyn postgres::types::ToSql + Sync); 7] = [
        &new.transaction_id,
        &new.fob_uid,
        &new.station,
        &new.reader_id,
        &kv,
        &new.issued_at_ms,
        &new.expires_at_ms,
    ];
    if tx.execute(&st.insert_if_free, &params)? == 1 {
        return Ok(());
    }
    let blocking = tx.query_opt(&st.blocking, &[&new.fob_uid, &new.issued_at_ms])?;
    if let Some(row) = blocking {
        let completed: Option<i64> = row.try_get(0)?;
        let Some(reissue) = tx.query_opt(&st.open_reissue, &[&new.fob_uid])? else {
            return Err(already_issued(completed.is_some()));
        };
        let id: i64 = reissue.try_get(0)?;
        tx.execute(&st.consume_reissue, &[&id, &new.transaction_id])?;
    }
    tx.execute(&st.insert_issuance, &params)?;
    Ok(())
}

/// Checks and stores one audit record, under the UID's row lock.
fn store_audit_in(
    tx: &mut Transaction<'_>,
    st: &Statements,
    record: &AuditRecord,
) -> Result<AuditStored, LedgerError> {
    // UIDs are stored upper-case; a record naming another UID is refused below.
    lock_fob(tx, st, &record.fob_uid.to_ascii_uppercase())?;
    let Some(row) = tx.query_opt(&st.issued, &[&record.transaction_id])? else {
        return Err(LedgerError::UnknownTransaction);
    };
    let issued_station: String = row.try_get(0)?;
    let issued_uid: String = row.try_get(1)?;
    let expires_at_ms: i64 = row.try_get(2)?;
    let later_issuance: bool = row.try_get(3)?;
    check_audit_issuance(record, &issued_station, &issued_uid)?;
    let success = record.overall_result == "SUCCESS";
    let flag = audit_flag_for(success, later_issuance, record.now_ms, expires_at_ms);
    let inserted = tx.execute(
        &st.insert_audit,
        &[
            &record.transaction_id,
            &record.station,
            &record.overall_result,
            &record.body,
            &record.now_ms,
            &flag.map(super::AuditFlag::as_str),
        ],
    )?;
    if inserted == 0 {
        let existing: String = tx
            .query_one(&st.stored_body, &[&record.transaction_id])?
            .try_get(0)?;
        return audit_stored_again(&existing, &record.body);
    }
    if success && flag != Some(super::AuditFlag::Superseded) {
        tx.execute(&st.complete, &[&record.transaction_id, &record.now_ms])?;
    }
    Ok(flag.map_or(AuditStored::New, AuditStored::Flagged))
}

/// Applies the anchor rule under the station's head row lock.
fn anchor_in(
    tx: &mut Transaction<'_>,
    st: &Statements,
    req: &AnchorRequest,
) -> Result<AuditStored, LedgerError> {
    let genesis = anchor::link_hex(&anchor::GENESIS);
    let row = tx.query_one(&st.lock_head, &[&req.station, &genesis])?;
    let (seq, link) = anchor::parse_head(Some((row.try_get(0)?, row.try_get(1)?)))
        .map_err(LedgerError::ChainRefused)?;
    let link_hex = anchor::link_hex(&req.link);
    let req_seq = i64::try_from(req.seq)
        .map_err(|_| LedgerError::ChainRefused(ChainRefusal::Gap { expected: seq + 1 }))?;
    let step = anchor::anchor_step(seq, &link, req.seq, &req.prev_link)
        .map_err(LedgerError::ChainRefused)?;
    if step == AnchorStep::Replay {
        let stored: Option<String> = tx
            .query_opt(&st.link_at, &[&req.station, &req_seq])?
            .map(|r| r.try_get(0))
            .transpose()?;
        return super::anchoring::replay_outcome(stored.as_deref(), &link_hex, seq);
    }
    let stored = match &req.audit {
        Some(a) => store_audit_in(tx, st, a)?,
        None => AuditStored::New,
    };
    tx.execute(&st.insert_link, &[&req.station, &req_seq, &link_hex])?;
    tx.execute(
        &st.set_head,
        &[&req.station, &req_seq, &link_hex, &req.now_ms],
    )?;
    Ok(stored)
}

/// Logs and records an alert.
fn record_alert(
    tx: &mut Transaction<'_>,
    st: &Statements,
    alert: &Alert<'_>,
) -> Result<(), LedgerError> {
    alert.log();
    let seq = i64::try_from(alert.seq).unwrap_or(i64::MAX);
    tx.execute(
        &st.insert_alert,
        &[
            &alert.station,
            &alert.kind,
            &seq,
            &alert.detail,
            &alert.now_ms,
        ],
    )?;
    Ok(())
}

impl LedgerStore for PgLedger {
    fn check_issuable(&mut self, fob_uid: &str, now_ms: i64) -> Result<(), LedgerError> {
        self.ensure_connected()?;
        let Some(row) = self
            .client
            .query_opt(&self.st.blocking, &[&fob_uid, &now_ms])?
        else {
            return Ok(());
        };
        let completed: Option<i64> = row.try_get(0)?;
        if self
            .client
            .query_opt(&self.st.open_reissue, &[&fob_uid])?
            .is_some()
        {
            return Ok(());
        }
        Err(already_issued(completed.is_some()))
    }

    fn try_issue(&mut self, new: &NewIssuance<'_>) -> Result<(), LedgerError> {
        self.single(LedgerOp::Issue(new.to_owned_issuance()))
            .map(|_| ())
    }

    fn apply_batch(
        &mut self,
        ops: &[LedgerOp],
    ) -> Result<Vec<Result<LedgerOutcome, LedgerError>>, LedgerError> {
        let mut attempt = 1;
        loop {
            self.ensure_connected()?;
            match self.run_batch(ops) {
                Err(e) if is_retryable(&e) && attempt < BATCH_ATTEMPTS => {
                    tracing::info!(
                        attempt,
                        "ledger batch hit a concurrent transaction; retrying"
                    );
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn record_reissue(
        &mut self,
        fob_uid: &str,
        action: &OperatorAction<'_>,
    ) -> Result<i64, LedgerError> {
        action.check_reason()?;
        self.ensure_connected()?;
        let row = self.client.query_one(
            "INSERT INTO reissues (fob_uid, reason, operator, created_at_ms)
             VALUES ($1, $2, $3, $4) RETURNING id",
            &[&fob_uid, &action.reason, &action.operator, &action.now_ms],
        )?;
        Ok(row.try_get(0)?)
    }

    fn store_audit(&mut self, record: &AuditRecord) -> Result<AuditStored, LedgerError> {
        match self.single(LedgerOp::Audit(record.clone()))? {
            LedgerOutcome::Audit(stored) => Ok(stored),
            _ => Err(LedgerError::CommitFailed(
                "unexpected ledger outcome".into(),
            )),
        }
    }

    fn audit_body(&mut self, transaction_id: &str) -> Result<Option<String>, LedgerError> {
        self.ensure_connected()?;
        Ok(self
            .client
            .query_opt(&self.st.stored_body, &[&transaction_id])?
            .map(|r| r.try_get(0))
            .transpose()?)
    }

    fn audit_flag(&mut self, transaction_id: &str) -> Result<Option<String>, LedgerError> {
        self.ensure_connected()?;
        Ok(self
            .client
            .query_opt(
                "SELECT flag FROM audits WHERE transaction_id = $1",
                &[&transaction_id],
            )?
            .map(|r| r.try_get::<_, Option<String>>(0))
            .transpose()?
            .flatten())
    }

    fn is_completed(&mut self, transaction_id: &str) -> Result<bool, LedgerError> {
        self.ensure_connected()?;
        let row = self.client.query_opt(
            "SELECT completed_at_ms FROM issuances WHERE transaction_id = $1",
            &[&transaction_id],
        )?;
        Ok(match row {
            Some(r) => r.try_get::<_, Option<i64>>(0)?.is_some(),
            None => false,
        })
    }

    fn chain_states(&mut self) -> Result<Vec<ChainState>, LedgerError> {
        self.ensure_connected()?;
        let genesis = anchor::link_hex(&anchor::GENESIS);
        // Rows at seq 0 are heads locked by a refused first upload or a reset.
        let rows = self.client.query(
            "SELECT s.station, COALESCE(h.seq, 0), COALESCE(h.link, $1),
                    COALESCE(h.updated_at_ms, 0),
                    (SELECT COUNT(*) FROM chain_alerts a WHERE a.station = s.station)
             FROM (SELECT station FROM chain_heads WHERE seq > 0
                   UNION SELECT station FROM chain_alerts) s
             LEFT JOIN chain_heads h ON h.station = s.station ORDER BY s.station",
            &[&genesis],
        )?;
        rows.iter()
            .map(|r| Ok(ChainState::from_row(|i| r.try_get(i), |i| r.try_get(i))?))
            .collect()
    }

    fn chain_head(&mut self, station: &str) -> Result<(u64, [u8; 32]), LedgerError> {
        self.ensure_connected()?;
        let row = self.client.query_opt(
            "SELECT seq, link FROM chain_heads WHERE station = $1",
            &[&station],
        )?;
        let row = match row {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        };
        anchor::parse_head(row).map_err(LedgerError::ChainRefused)
    }

    fn reset_chain(
        &mut self,
        station: &str,
        action: &OperatorAction<'_>,
    ) -> Result<u64, LedgerError> {
        let detail = super::anchoring::reset_detail(action)?;
        self.ensure_connected()?;
        let st = &self.st;
        let mut tx = self.client.transaction()?;
        let genesis = anchor::link_hex(&anchor::GENESIS);
        let row = tx.query_one(&st.lock_head, &[&station, &genesis])?;
        let seq = anchor::reset_seq(Some(row.try_get(0)?));
        tx.execute("DELETE FROM chain_links WHERE station = $1", &[&station])?;
        tx.execute("DELETE FROM chain_heads WHERE station = $1", &[&station])?;
        record_alert(
            &mut tx,
            st,
            &Alert::reset(station, seq, detail, action.now_ms),
        )?;
        tx.commit()?;
        Ok(seq)
    }

    fn issuance_count(&mut self, fob_uid: &str) -> Result<u64, LedgerError> {
        self.ensure_connected()?;
        let n: i64 = self
            .client
            .query_one(
                "SELECT COUNT(*) FROM issuances WHERE fob_uid = $1",
                &[&fob_uid],
            )?
            .try_get(0)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// The writer commits durably even on a server whose default is not to (the test
    /// server runs with `synchronous_commit = off`).
    #[test]
    fn the_writer_session_commits_synchronously() {
        let pg = kf_testkit::postgres::Postgres::shared().unwrap();
        let target = PgTarget::new(Zeroizing::new(pg.fresh_database().unwrap()), None).unwrap();
        let mut default = target.connect().unwrap();
        let server_default: String = default
            .query_one("SHOW synchronous_commit", &[])
            .unwrap()
            .get(0);
        assert_eq!(server_default, "off", "the control: the server's default");
        let mut ledger = PgLedger::connect(&target).unwrap();
        let writer: String = ledger
            .client
            .query_one("SHOW synchronous_commit", &[])
            .unwrap()
            .get(0);
        assert_eq!(writer, "on");
    }
}
