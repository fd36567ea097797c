//! The reader workers of the line station (PC/SC builds).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use kf_perso::pipeline::{FobOutcome, PipelineOptions};
use kf_source::ProvisioningSource;
use kf_transport::error::TransportError;
use kf_transport::pcsc::{CardDisposition, CardWatch, PcscCanceller, PcscContext, ReaderEvent};
use kf_transport::transport::{RawApdu, Transport, SHORT_APDU_MAX};

use super::ReaderSelection;
use crate::console::{Console, ReaderConsole};
use crate::station::{outcome_line, Recorder};

/// Where each reader's keys come from.
pub enum Sources<'a> {
    /// One source for every reader (a pool handed out under one lock).
    Shared(kf_source::SharedSource),
    /// A KLMS source per reader, naming it in its requests.
    Klms(&'a std::sync::Arc<kf_source::klms::KlmsClient>),
}

impl Sources<'_> {
    fn for_reader(&self, reader_id: &str) -> Box<dyn ProvisioningSource + Send> {
        match self {
            Sources::Shared(pool) => Box::new(pool.clone()),
            Sources::Klms(client) => Box::new(crate::klms::source(client, reader_id)),
        }
    }
}

/// What every worker shares.
pub struct Line<'a> {
    setup: LineSetup<'a>,
    good: AtomicU64,
    failed: AtomicU64,
    fatal: Mutex<Option<anyhow::Error>>,
}

/// What a [`Line`] runs with.
pub struct LineSetup<'a> {
    /// The readers to drive.
    pub selection: ReaderSelection,
    /// The journal (and audit copy, and uploader).
    pub recorder: &'a Recorder,
    /// Pipeline options; each worker sets its `reader_id`.
    pub options: &'a PipelineOptions,
    /// Key sources.
    pub sources: Sources<'a>,
    /// The operator console, if served.
    pub console: Option<&'a Console>,
    /// Set by Ctrl-C (or a journal failure): workers stop after their fob.
    pub stop: &'a AtomicBool,
    /// Cancellers of every blocking PC/SC wait, for Ctrl-C.
    pub cancellers: &'a Mutex<Vec<PcscCanceller>>,
}

/// Lists an item (a canceller for Ctrl-C) while the registration lives:
/// dropping it takes the item off the list again, so a worker or context
/// that ended leaves nothing behind.
struct Registration<'a, T: PartialEq> {
    list: &'a Mutex<Vec<T>>,
    item: T,
}

impl<'a, T: PartialEq + Clone> Registration<'a, T> {
    fn new(list: &'a Mutex<Vec<T>>, item: T) -> Self {
        if let Ok(mut listed) = list.lock() {
            listed.push(item.clone());
        }
        Registration { list, item }
    }
}

impl<T: PartialEq> Drop for Registration<'_, T> {
    fn drop(&mut self) {
        if let Ok(mut listed) = self.list.lock() {
            if let Some(at) = listed.iter().position(|x| *x == self.item) {
                listed.remove(at);
            }
        }
    }
}

/// How often a wait returns to look at the stop flag, when the cancel of a
/// blocking wait is not delivered.
const LOOK: Duration = Duration::from_millis(500);

/// Reader-list errors in a row (other than "no service") taken for a service
/// that is stopping or restarting before the line stops: with one `LOOK`
/// between new contexts, a lasting error stops the line within 2 s.
const LIST_ERRORS_TOLERATED: u32 = 3;

/// What the line does with one reading of the reader list.
#[derive(Debug)]
enum ListReading {
    /// The readers present.
    Readers(Vec<String>),
    /// The service is gone or going (`None`: it said so; `Some`: another error taken for a
    /// stopping or restarting service): drop the context and wait for a new one.
    ServiceGone(Option<TransportError>),
    /// An error that lasted through `LIST_ERRORS_TOLERATED` new contexts: stop the line.
    Fatal(TransportError),
}

/// Reader-list errors in a row, other than "no service".
#[derive(Debug, Default)]
struct ListErrors(u32);

impl ListErrors {
    /// Judges one reading. While the service stops or restarts, pcsc-lite can answer with
    /// other errors than "no service" (seen: a security violation, 0x8010006A, for a context
    /// of the stopping daemon), so those are taken for a stopping service too, until one
    /// outlives `LIST_ERRORS_TOLERATED` new contexts.
    fn judge(&mut self, reading: Result<Vec<String>, TransportError>) -> ListReading {
        match reading {
            Ok(present) => {
                self.0 = 0;
                ListReading::Readers(present)
            }
            Err(TransportError::NoService) => ListReading::ServiceGone(None),
            Err(e) if self.0 < LIST_ERRORS_TOLERATED => {
                self.0 += 1;
                ListReading::ServiceGone(Some(e))
            }
            Err(e) => ListReading::Fatal(e),
        }
    }
}

impl<'a> Line<'a> {
    /// A line with no fob done yet.
    pub fn new(setup: LineSetup<'a>) -> Self {
        Line {
            setup,
            good: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            fatal: Mutex::new(None),
        }
    }

    /// Fobs passed and failed so far, over all readers.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.good.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
        )
    }

    /// Runs until the stop flag is set: starts a worker for each selected
    /// reader present, again for one that comes back. Returns the first
    /// error that stopped the line (a journal that cannot be written).
    pub fn run(&self, context: &PcscContext) -> anyhow::Result<()> {
        std::thread::scope(|scope| {
            let mut workers: BTreeMap<String, std::thread::ScopedJoinHandle<'_, ()>> =
                BTreeMap::new();
            let mut waiting_shown = false;
            let mut context = Some(context.clone());
            // The canceller of a context opened here, listed while it is in use.
            let mut _registration = None;
            let mut list_errors = ListErrors::default();
            while !self.setup.stop.load(Ordering::SeqCst) {
                workers.retain(|_, w| !w.is_finished());
                // The smart card service can stop and start again (Windows
                // stops it when the last reader is unplugged): wait for it.
                let Some(live) = context.as_ref() else {
                    std::thread::sleep(LOOK);
                    (context, _registration) = self.reconnect().unzip();
                    continue;
                };
                let present = match list_errors.judge(live.list_readers()) {
                    ListReading::Readers(present) => present,
                    ListReading::ServiceGone(why) => {
                        let why = why.map(|e| format!(" ({e})")).unwrap_or_default();
                        errln!("smart card service stopped{why}: waiting for it to come back");
                        (context, _registration) = (None, None);
                        continue;
                    }
                    ListReading::Fatal(e) => {
                        self.fail_line(anyhow::Error::new(e).context("cannot list the readers"));
                        break;
                    }
                };
                for (name, reader_id) in self.setup.selection.assign(&present) {
                    if workers.contains_key(&name) {
                        continue;
                    }
                    let worker = scope.spawn({
                        let name = name.clone();
                        move || self.worker(&name, &reader_id)
                    });
                    workers.insert(name, worker);
                }
                if workers.is_empty() && !waiting_shown {
                    errln!("waiting for a reader ({})", self.describe());
                    waiting_shown = true;
                } else if !workers.is_empty() {
                    waiting_shown = false;
                }
                // A reader plugged in or out wakes this at once; without PnP
                // notification the list is read again every `LOOK`.
                match live.wait_for_reader_change(LOOK) {
                    Ok(()) | Err(TransportError::Timeout | TransportError::Cancelled) => {}
                    Err(_) => std::thread::sleep(LOOK),
                }
            }
            self.cancel_waits();
        });
        match self.fatal.lock() {
            Ok(mut fatal) => fatal.take().map_or(Ok(()), Err),
            Err(_) => Err(anyhow::anyhow!(
                "a reader worker failed while stopping the line"
            )),
        }
    }

    /// A new context once the smart card service runs again (its waits
    /// cancelled by Ctrl-C like the others); `None` while it does not.
    fn reconnect(&self) -> Option<(PcscContext, Registration<'a, PcscCanceller>)> {
        let context = PcscContext::establish().ok()?;
        let registration = Registration::new(self.setup.cancellers, context.canceller());
        errln!("smart card service running again");
        Some((context, registration))
    }

    fn describe(&self) -> String {
        match &self.setup.selection {
            ReaderSelection::One { name, .. } => format!("{name:?}"),
            ReaderSelection::Configured(specs) => specs
                .iter()
                .map(|s| format!("{:?}", s.name))
                .collect::<Vec<_>>()
                .join(", "),
            ReaderSelection::All => "any".into(),
        }
    }

    /// Stops the line for an error no worker can go on after.
    fn fail_line(&self, error: anyhow::Error) {
        if let Ok(mut fatal) = self.fatal.lock() {
            fatal.get_or_insert(error);
        }
        self.setup.stop.store(true, Ordering::SeqCst);
        self.cancel_waits();
    }

    /// Wakes every blocking wait (best effort: each also returns every `LOOK`).
    pub fn cancel_waits(&self) {
        if let Ok(cancellers) = self.setup.cancellers.lock() {
            for canceller in cancellers.iter() {
                if canceller.cancel().is_err() {
                    tracing::debug!("a PC/SC wait could not be cancelled; it ends at its timeout");
                }
            }
        }
    }

    /// One reader: fobs until Ctrl-C or until the reader goes away.
    fn worker(&self, name: &str, reader_id: &str) {
        let tile = self.setup.console.map(|c| c.reader(reader_id));
        if let Err(e) = self.serve_reader(name, reader_id, tile.as_ref()) {
            self.fail_line(e);
        }
    }

    fn serve_reader(
        &self,
        name: &str,
        reader_id: &str,
        tile: Option<&ReaderConsole>,
    ) -> anyhow::Result<()> {
        // Without the service or the reader this worker ends; the
        // supervisor starts another when the reader is back.
        let (context, mut watch) =
            match PcscContext::establish().and_then(|c| CardWatch::new(&c, name).map(|w| (c, w))) {
                Ok(found) => found,
                Err(e) => {
                    errln!("reader {reader_id} ({name}): {e}");
                    return Ok(());
                }
            };
        let _registration = Registration::new(self.setup.cancellers, context.canceller());
        let mut source = self.setup.sources.for_reader(reader_id);
        let mut options = self.setup.options.clone();
        options.reader_id = Some(reader_id.to_string());
        errln!("reader {reader_id} ({name}): present a fob (Ctrl-C to stop)");
        while !self.setup.stop.load(Ordering::SeqCst) {
            match watch.next(Some(LOOK)) {
                Ok(ReaderEvent::Inserted { .. }) => {}
                Ok(ReaderEvent::Removed) => {
                    if let Some(tile) = tile {
                        tile.idle();
                    }
                    continue;
                }
                Err(TransportError::Timeout | TransportError::Cancelled) => continue,
                Err(e) => {
                    errln!("reader {reader_id} ({name}): {e}; its worker stops");
                    if let Some(tile) = tile {
                        tile.offline(crate::console::words::transport_words(&e));
                    }
                    return Ok(());
                }
            }
            if let Some(tile) = tile {
                tile.fob_present();
            }
            let outcome = self.fob(&context, name, source.as_mut(), &options, tile)?;
            let counter = if outcome.is_success() {
                &self.good
            } else {
                &self.failed
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let (good, failed) = self.counts();
            outln!(
                "{}   [{reader_id}; good {good}, failed {failed}]",
                outcome_line(&outcome)
            );
            errln!("reader {reader_id}: remove the fob");
        }
        Ok(())
    }

    /// One fob: connect, provision, reset. A fob that cannot be connected to
    /// goes through the pipeline over the reader's error, so the attempt is
    /// journaled (FAILURE at READ_UID) like any other.
    fn fob(
        &self,
        context: &PcscContext,
        name: &str,
        source: &mut dyn ProvisioningSource,
        options: &PipelineOptions,
        tile: Option<&ReaderConsole>,
    ) -> anyhow::Result<FobOutcome> {
        match context.connect(name) {
            Ok(mut card) => {
                let outcome = self
                    .setup
                    .recorder
                    .provision_shown(&mut card, source, options, tile);
                // The outcome is journaled already; a reader that fails to
                // reset shows up at the next connect.
                if let Err(e) = card.disconnect(CardDisposition::Reset) {
                    tracing::warn!(reader = name, error = %e, "card reset failed");
                }
                outcome
            }
            Err(e) => {
                let mut link = NotConnected(e);
                self.setup
                    .recorder
                    .provision_shown(&mut link, source, options, tile)
            }
        }
    }
}

/// The link to a fob the reader could not connect to: every exchange fails
/// with the reader's error.
struct NotConnected(TransportError);

impl Transport for NotConnected {
    fn transmit(&mut self, _apdu: RawApdu<'_>) -> Result<Vec<u8>, TransportError> {
        Err(self.0.clone())
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        Err(self.0.clone())
    }

    fn max_apdu_len(&self) -> usize {
        SHORT_APDU_MAX
    }

    fn was_reset(&mut self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fob_that_cannot_be_connected_to_fails_at_read_uid_with_the_readers_error() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Recorder::open(&dir.path().join("journal.db"), None, None).unwrap();
        let mut source = kf_source::DevSampleSource::generated(1, None).unwrap();
        let mut link = NotConnected(TransportError::NoCard);
        let outcome = recorder
            .provision(&mut link, &mut source, &PipelineOptions::default())
            .unwrap();
        let error = outcome.error.as_ref().unwrap();
        assert_eq!(error.stage, kf_perso::Stage::ReadUid);
        assert_eq!(
            outcome.record.failure_reason.as_deref(),
            Some(error.error.to_string().as_str())
        );
        assert!(!outcome.store_data_sent());
    }

    #[test]
    fn list_errors_other_than_no_service_are_a_stopping_service_until_they_last() {
        let security = || TransportError::Other("security violation (0x8010006A)".into());
        let gone = |r: &ListReading| matches!(r, ListReading::ServiceGone(_));
        let mut errors = ListErrors::default();
        // "No service" never stops the line, however long it lasts.
        for _ in 0..2 * LIST_ERRORS_TOLERATED {
            assert!(matches!(
                errors.judge(Err(TransportError::NoService)),
                ListReading::ServiceGone(None)
            ));
        }
        // Other errors: a new context each time, up to the tolerance; then the line stops.
        for _ in 0..LIST_ERRORS_TOLERATED {
            assert!(gone(&errors.judge(Err(security()))));
        }
        assert!(matches!(
            errors.judge(Err(security())),
            ListReading::Fatal(TransportError::Other(_))
        ));
        // A good reading starts the count again.
        let mut errors = ListErrors::default();
        for _ in 0..LIST_ERRORS_TOLERATED {
            assert!(gone(&errors.judge(Err(security()))));
        }
        let readers = errors.judge(Ok(vec!["Reader 0".into()]));
        assert!(matches!(&readers, ListReading::Readers(r) if r == &["Reader 0"]));
        for _ in 0..LIST_ERRORS_TOLERATED {
            assert!(gone(&errors.judge(Err(security()))));
        }
        assert!(matches!(
            errors.judge(Err(security())),
            ListReading::Fatal(_)
        ));
    }

    #[test]
    fn a_canceller_is_listed_only_while_its_registration_lives() {
        let list = Mutex::new(vec![0u32]);
        let first = Registration::new(&list, 1);
        {
            let _second = Registration::new(&list, 2);
            assert_eq!(*list.lock().unwrap(), [0, 1, 2]);
        }
        assert_eq!(*list.lock().unwrap(), [0, 1]);
        drop(first);
        assert_eq!(*list.lock().unwrap(), [0]);
    }
}
