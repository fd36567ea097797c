//! Store-and-forward: a background thread that sends pending outcome records to a sink.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{AuditError, Journal, JournalKey, JournalRecord};

/// Why an upload failed, and so whether to retry it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// Worth retrying later (endpoint down, timeout, 5xx).
    #[error("transient upload failure: {0}")]
    Transient(String),
    /// The endpoint refused the record; retrying the same bytes cannot help.
    #[error("permanent upload failure: {0}")]
    Permanent(String),
}

/// Where acknowledged records go (the KLMS `/v1/audit` endpoint in production).
pub trait AuditSink: Send + 'static {
    /// Uploads one outcome record; `Ok` means the far side has it durably and
    /// carries its receipt (JSON text, stored with the acknowledgement; empty
    /// when the sink gives none).
    fn upload(&mut self, record: &JournalRecord) -> Result<String, UploadError>;
}

/// Retry and polling policy of the [`Uploader`].
#[derive(Debug, Clone)]
pub struct UploaderConfig {
    /// First wait after a transient failure.
    pub initial_backoff: Duration,
    /// Upper bound of the doubling backoff.
    pub max_backoff: Duration,
    /// How often to look for new records when not notified.
    pub poll_interval: Duration,
    /// Records fetched per round.
    pub batch: u32,
}

impl Default for UploaderConfig {
    fn default() -> Self {
        UploaderConfig {
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            poll_interval: Duration::from_secs(2),
            batch: 32,
        }
    }
}

/// Counters of an [`Uploader`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploaderStats {
    /// Records acknowledged by the sink.
    pub uploaded: u64,
    /// Records the sink refused permanently.
    pub rejected: u64,
    /// Transient failures seen (each followed by a backoff).
    pub transient_failures: u64,
    /// Outcome records still pending after the last round.
    pub pending: u64,
    /// The last error (transient or permanent, or a journal error).
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Shared {
    stop: bool,
    wake: bool,
    rounds: u64,
    stats: UploaderStats,
}

type SharedState = Arc<(Mutex<Shared>, Condvar)>;

fn lock(state: &SharedState) -> MutexGuard<'_, Shared> {
    // A poisoned lock only means the worker panicked; the counters are still usable.
    state.0.lock().unwrap_or_else(|p| p.into_inner())
}

/// Background uploader: the station keeps appending while the sink is down;
/// records go out, oldest first, once it is back.
pub struct Uploader {
    state: SharedState,
    thread: Option<JoinHandle<()>>,
}

impl Uploader {
    /// Starts the uploader on its own journal connection to `journal_path`.
    pub fn spawn<S: AuditSink>(
        journal_path: impl AsRef<Path>,
        key: JournalKey,
        sink: S,
        config: UploaderConfig,
    ) -> Result<Uploader, AuditError> {
        let path: PathBuf = journal_path.as_ref().to_owned();
        // Open here so a bad path is reported to the caller, not lost in the thread.
        let journal = Journal::open(&path, key)?;
        let state: SharedState = Arc::default();
        let worker_state = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("kf-audit-uploader".into())
            .spawn(move || run(journal, sink, config, worker_state))
            .map_err(|e| AuditError::Thread(e.to_string()))?;
        Ok(Uploader {
            state,
            thread: Some(thread),
        })
    }

    /// Wakes the uploader (call after an append).
    pub fn notify(&self) {
        lock(&self.state).wake = true;
        self.state.1.notify_all();
    }

    /// Current counters.
    pub fn stats(&self) -> UploaderStats {
        lock(&self.state).stats.clone()
    }

    /// Waits until a full round found nothing pending, or `timeout` passed.
    /// Returns true when the queue was seen empty.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = lock(&self.state);
        guard.wake = true;
        self.state.1.notify_all();
        // A round that started after this call must complete with nothing pending.
        let start_round = guard.rounds;
        loop {
            if guard.rounds > start_round + 1 && guard.stats.pending == 0 {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = self
                .state
                .1
                .wait_timeout(guard, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Stops the thread after its current attempt and returns the final counters.
    pub fn shutdown(mut self) -> UploaderStats {
        self.stop_and_join();
        self.stats()
    }

    fn stop_and_join(&mut self) {
        lock(&self.state).stop = true;
        self.state.1.notify_all();
        // A panic on the upload thread has nothing to return to; it is said, and the
        // journal keeps every record it did not upload.
        if let Some(Err(_)) = self.thread.take().map(std::thread::JoinHandle::join) {
            tracing::error!("the journal upload thread panicked; its records stay pending");
        }
    }
}

impl Drop for Uploader {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Sleeps until woken, stopped or `wait` passed; returns false when stopping.
fn idle(state: &SharedState, wait: Duration, wake_counts: bool) -> bool {
    let deadline = Instant::now() + wait;
    let mut guard = lock(state);
    loop {
        if guard.stop {
            return false;
        }
        if wake_counts && guard.wake {
            guard.wake = false;
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        guard = state
            .1
            .wait_timeout(guard, deadline - now)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
}

fn run<S: AuditSink>(
    mut journal: Journal,
    mut sink: S,
    config: UploaderConfig,
    state: SharedState,
) {
    let mut backoff = config.initial_backoff;
    loop {
        if lock(&state).stop {
            return;
        }
        let (outcome, pending) = upload_round(&mut journal, &mut sink, &config, &state);
        {
            let mut guard = lock(&state);
            guard.rounds += 1;
            guard.stats.pending = pending;
        }
        state.1.notify_all();
        let keep_going = match outcome {
            RoundOutcome::Drained => {
                backoff = config.initial_backoff;
                idle(&state, config.poll_interval, true)
            }
            RoundOutcome::MoreWork => {
                backoff = config.initial_backoff;
                true
            }
            RoundOutcome::Failed => {
                // Backoff is not shortened by notifications: the sink is down.
                let wait = backoff;
                backoff = (backoff * 2).min(config.max_backoff);
                idle(&state, wait, false)
            }
        };
        if !keep_going {
            return;
        }
    }
}

enum RoundOutcome {
    Drained,
    MoreWork,
    Failed,
}

fn upload_round<S: AuditSink>(
    journal: &mut Journal,
    sink: &mut S,
    config: &UploaderConfig,
    state: &SharedState,
) -> (RoundOutcome, u64) {
    let records = match journal.pending_uploads(config.batch) {
        Ok(r) => r,
        Err(e) => {
            lock(state).stats.last_error = Some(e.to_string());
            return (RoundOutcome::Failed, u64::MAX);
        }
    };
    let fetched = records.len();
    for record in records {
        if lock(state).stop {
            break;
        }
        if !journal.link_verifies(&record) {
            // A record edited after it was appended never leaves the station.
            let why = format!(
                "journal record {} does not verify against its link; uploads stopped",
                record.seq
            );
            tracing::error!(seq = record.seq, "{why}");
            lock(state).stats.last_error = Some(why);
            return (RoundOutcome::Failed, pending_or_unknown(journal));
        }
        let result = sink.upload(&record);
        let mut guard = lock(state);
        match result {
            Ok(receipt) => {
                drop(guard);
                if let Err(e) = journal.mark_acknowledged(record.seq, &receipt) {
                    lock(state).stats.last_error = Some(e.to_string());
                    return (RoundOutcome::Failed, pending_or_unknown(journal));
                }
                lock(state).stats.uploaded += 1;
            }
            Err(UploadError::Permanent(why)) => {
                tracing::warn!(seq = record.seq, reason = %why, "audit record rejected by the sink");
                guard.stats.rejected += 1;
                guard.stats.last_error = Some(why.clone());
                drop(guard);
                if let Err(e) = journal.mark_rejected(record.seq, &why) {
                    lock(state).stats.last_error = Some(e.to_string());
                    return (RoundOutcome::Failed, pending_or_unknown(journal));
                }
            }
            Err(UploadError::Transient(why)) => {
                tracing::debug!(seq = record.seq, reason = %why, "audit upload deferred");
                guard.stats.transient_failures += 1;
                guard.stats.last_error = Some(why);
                drop(guard);
                return (RoundOutcome::Failed, pending_or_unknown(journal));
            }
        }
    }
    let pending = pending_or_unknown(journal);
    if fetched as u64 >= u64::from(config.batch) && pending > 0 {
        (RoundOutcome::MoreWork, pending)
    } else {
        (RoundOutcome::Drained, pending)
    }
}

fn pending_or_unknown(journal: &Journal) -> u64 {
    journal.pending_count().unwrap_or(u64::MAX)
}
