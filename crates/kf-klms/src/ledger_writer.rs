//! Group commit: one thread owns the ledger's write connection; requests queue
//! their writes and each batch of queued writes is committed in one fsynced
//! transaction ([`LedgerStore::apply_batch`], SQLite or PostgreSQL). A reply is sent only after the
//! commit returned, so "issued" always means durably recorded.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::ledger::{LedgerError, LedgerOp, LedgerOutcome, LedgerStore};

type Reply = oneshot::Sender<Result<LedgerOutcome, LedgerError>>;

struct Job {
    op: LedgerOp,
    reply: Reply,
}

/// Handle to the writer thread; dropping it lets the thread finish the queued
/// jobs and joins it (which closes the database).
pub(crate) struct LedgerWriter {
    queue: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl LedgerWriter {
    /// Starts the writer thread. `queue_len` bounds the waiting jobs (more →
    /// [`LedgerError::Busy`]); `max_batch` bounds the ops per transaction.
    pub(crate) fn start(
        ledger: Box<dyn LedgerStore>,
        queue_len: usize,
        max_batch: usize,
    ) -> std::io::Result<LedgerWriter> {
        let (queue, jobs) = mpsc::sync_channel(queue_len.max(1));
        let thread = std::thread::Builder::new()
            .name("kf-klms-ledger".into())
            .spawn(move || run(ledger, &jobs, max_batch.max(1)))?;
        Ok(LedgerWriter {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queues `op` and waits (without blocking a thread) until its batch committed.
    pub(crate) async fn submit(&self, op: LedgerOp) -> Result<LedgerOutcome, LedgerError> {
        let queue = self.queue.as_ref().ok_or(LedgerError::WriterStopped)?;
        let (reply, outcome) = oneshot::channel();
        queue.try_send(Job { op, reply }).map_err(|e| match e {
            TrySendError::Full(_) => LedgerError::Busy,
            TrySendError::Disconnected(_) => LedgerError::WriterStopped,
        })?;
        // A dropped reply means the writer died mid-batch: the outcome is
        // unknown, which must not be reported as issued.
        outcome.await.map_err(|_| LedgerError::WriterStopped)?
    }
}

impl Drop for LedgerWriter {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            // Err only if the writer panicked; every request it did not
            // answer already gets WriterStopped from its dropped reply.
            let _ = thread.join();
        }
    }
}

fn run(mut ledger: Box<dyn LedgerStore>, jobs: &Receiver<Job>, max_batch: usize) {
    let mut ops = Vec::with_capacity(max_batch);
    let mut replies = Vec::with_capacity(max_batch);
    // No artificial wait: a lone request commits at once; requests arriving
    // while a commit (fsync) runs form the next batch.
    while let Ok(first) = jobs.recv() {
        ops.push(first.op);
        replies.push(first.reply);
        while ops.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) => {
                    ops.push(job.op);
                    replies.push(job.reply);
                }
                Err(_) => break,
            }
        }
        match ledger.apply_batch(&ops) {
            Ok(results) => {
                for (reply, result) in replies.drain(..).zip(results) {
                    // Err: the requester gave up waiting; the write stands.
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                let message = e.to_string();
                tracing::error!(error = %message, ops = ops.len(), "ledger group commit failed");
                for reply in replies.drain(..) {
                    // Err: the requester gave up waiting; nothing was written.
                    let _ = reply.send(Err(LedgerError::CommitFailed(message.clone())));
                }
            }
        }
        ops.clear();
        // Any reply not sent (cannot happen: results has one entry per op)
        // would be dropped here and surface as WriterStopped.
        replies.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::ledger::{Issuance, Ledger};

    fn op_issue(txid: String, uid: String) -> LedgerOp {
        LedgerOp::Issue(Issuance {
            transaction_id: txid,
            fob_uid: uid,
            station: "station-01".to_owned(),
            reader_id: "R1".to_owned(),
            key_version: 1,
            issued_at_ms: 1000,
            expires_at_ms: 60_000,
        })
    }

    /// `n` issuances `{prefix}{i}`, each for its own UID (`i` as 20 hex digits).
    fn issues_to_distinct_uids(prefix: &str, n: usize) -> Vec<LedgerOp> {
        (0..n)
            .map(|i| op_issue(format!("{prefix}{i}"), format!("{i:020X}")))
            .collect()
    }

    async fn submit_all(
        writer: &Arc<LedgerWriter>,
        ops: Vec<LedgerOp>,
    ) -> Vec<Result<LedgerOutcome, LedgerError>> {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, op) in ops.into_iter().enumerate() {
            let writer = Arc::clone(writer);
            tasks.spawn(async move { (i, writer.submit(op).await) });
        }
        let mut results: Vec<_> = Vec::new();
        while let Some(done) = tasks.join_next().await {
            results.push(done.unwrap());
        }
        results.sort_by_key(|(i, _)| *i);
        results.into_iter().map(|(_, r)| r).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_submits_are_committed_and_same_uid_is_issued_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let writer = Arc::new(
            LedgerWriter::start(Box::new(Ledger::open(&path).unwrap()), 1024, 256).unwrap(),
        );
        let results = submit_all(&writer, issues_to_distinct_uids("d", 100)).await;
        assert!(results
            .iter()
            .all(|r| matches!(r, Ok(LedgerOutcome::Issued))));
        let same = (0..50)
            .map(|i| op_issue(format!("s{i}"), "04112233445566778899".to_owned()))
            .collect();
        let results = submit_all(&writer, same).await;
        let issued = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(issued, 1);
        assert!(results
            .iter()
            .filter(|r| r.is_err())
            .all(|r| matches!(r, Err(LedgerError::AlreadyIssued(_)))));
        drop(Arc::into_inner(writer).unwrap()); // joins the writer thread
        let l = Ledger::open(&path).unwrap();
        for i in 0..100 {
            assert_eq!(l.issuance_count(&format!("{i:020X}")).unwrap(), 1);
        }
        assert_eq!(l.issuance_count("04112233445566778899").unwrap(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failed_commit_is_reported_to_every_job() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let ledger = Ledger::open_waiting(&path, Duration::from_millis(50)).unwrap();
        let writer = Arc::new(LedgerWriter::start(Box::new(ledger), 1024, 256).unwrap());
        let other = rusqlite::Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let results = submit_all(&writer, issues_to_distinct_uids("f", 5)).await;
        assert!(results
            .iter()
            .all(|r| matches!(r, Err(LedgerError::CommitFailed(_)))));
        other.execute_batch("ROLLBACK").unwrap();
        // The writer keeps serving once the lock is gone; nothing of the failed batches exists.
        let results = submit_all(&writer, vec![op_issue("ok".into(), format!("{:020X}", 0))]).await;
        assert!(matches!(results[0], Ok(LedgerOutcome::Issued)));
        drop(Arc::into_inner(writer).unwrap());
        let l = Ledger::open(&path).unwrap();
        assert_eq!(l.issuance_count(&format!("{:020X}", 0)).unwrap(), 1);
        for i in 1..5 {
            assert_eq!(l.issuance_count(&format!("{i:020X}")).unwrap(), 0);
        }
    }
}
