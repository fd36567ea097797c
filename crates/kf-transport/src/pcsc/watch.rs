//! Card and reader events of one reader, from `SCardGetStatusChange` rather
//! than polling.
//!
//! The reader state is kept between calls, so a change that happens while
//! nobody waits is reported at the next call. PC/SC counts card insertions
//! and removals in the upper 16 bits of the event state (pcsc-lite and
//! WinSCard alike); a card that is present with a count not seen before is a
//! new insertion even when no absence was observed, so two fobs swapped
//! faster than the station looks are two fobs, never one.

use std::time::{Duration, Instant};

use ::pcsc::{Context, ReaderState, State};

use super::context::{reader_cstring, PcscContext};
use super::errors::map_pcsc_error;
use crate::error::TransportError;

/// What happened in the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderEvent {
    /// A card arrived that was not reported before (a mute card included:
    /// connecting to it fails, and that attempt is worth recording).
    Inserted {
        /// The card's ATR, upper-case hex, when the reader has it.
        atr: Option<String>,
        /// PC/SC's card-event count at this insertion.
        event_count: u32,
    },
    /// The card reported last has left the field.
    Removed,
}

/// Watches one reader for card insertions and removals.
pub struct CardWatch {
    ctx: Context,
    reader: String,
    state: ReaderState,
    /// Event count of the insertion reported last, while that card is there.
    reported: Option<u32>,
    present: bool,
}

impl std::fmt::Debug for CardWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardWatch")
            .field("reader", &self.reader)
            .field("reported", &self.reported)
            .field("present", &self.present)
            .finish()
    }
}

impl CardWatch {
    /// Watches `reader` on `context` (a card already present is reported
    /// by the first [`CardWatch::next`]).
    pub fn new(context: &PcscContext, reader: &str) -> Result<Self, TransportError> {
        Ok(Self {
            ctx: context.raw().clone(),
            reader: reader.to_owned(),
            state: ReaderState::new(reader_cstring(reader)?, State::UNAWARE),
            reported: None,
            present: false,
        })
    }

    /// The reader watched.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// Blocks until the next event, up to `timeout` (`None`: forever):
    /// [`TransportError::Timeout`], [`TransportError::Cancelled`] (from the
    /// context's canceller) or [`TransportError::NoReader`] (the reader was
    /// unplugged) otherwise.
    pub fn next(&mut self, timeout: Option<Duration>) -> Result<ReaderEvent, TransportError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            match self
                .ctx
                .get_status_change(remaining, std::slice::from_mut(&mut self.state))
            {
                Ok(()) => {}
                Err(::pcsc::Error::Timeout) => return Err(TransportError::Timeout),
                Err(e) => return Err(map_pcsc_error(e, Some(&self.reader))),
            }
            let event = self.state.event_state();
            let count = self.state.event_count();
            let atr = self.state.atr().to_vec();
            self.state.sync_current_state();
            if event.intersects(State::UNKNOWN | State::IGNORE | State::UNAVAILABLE) {
                return Err(TransportError::NoReader(self.reader.clone()));
            }
            if let Some(found) = self.step(event.contains(State::PRESENT), count) {
                return Ok(match found {
                    Step::Inserted => ReaderEvent::Inserted {
                        atr: (!atr.is_empty()).then(|| hex::encode_upper(&atr)),
                        event_count: count,
                    },
                    Step::Removed => ReaderEvent::Removed,
                });
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(TransportError::Timeout);
            }
        }
    }

    /// The decision, apart from PC/SC: what a state with the card `present`
    /// and this event `count` means after what was reported so far.
    fn step(&mut self, present: bool, count: u32) -> Option<Step> {
        step(&mut self.reported, &mut self.present, present, count)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Step {
    Inserted,
    Removed,
}

fn step(
    reported: &mut Option<u32>,
    was_present: &mut bool,
    present: bool,
    count: u32,
) -> Option<Step> {
    if present {
        if *reported == Some(count) && *was_present {
            return None;
        }
        // A count not reported yet: a new card, even without an absence in
        // between. (A reader that never counts reports 0 every time; the
        // removal below clears `reported`, so each insertion is still seen.)
        *reported = Some(count);
        *was_present = true;
        return Some(Step::Inserted);
    }
    *reported = None;
    if std::mem::take(was_present) {
        return Some(Step::Removed);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Watch {
        reported: Option<u32>,
        present: bool,
    }

    impl Watch {
        fn see(&mut self, present: bool, count: u32) -> Option<Step> {
            step(&mut self.reported, &mut self.present, present, count)
        }
    }

    fn watch() -> Watch {
        Watch {
            reported: None,
            present: false,
        }
    }

    #[test]
    fn a_card_present_at_start_is_reported_once() {
        let mut w = watch();
        assert_eq!(w.see(true, 3), Some(Step::Inserted));
        assert_eq!(w.see(true, 3), None);
        assert_eq!(w.see(false, 4), Some(Step::Removed));
        assert_eq!(w.see(false, 4), None);
        assert_eq!(w.see(true, 5), Some(Step::Inserted));
    }

    #[test]
    fn a_swap_between_two_looks_is_a_new_card() {
        let mut w = watch();
        assert_eq!(w.see(true, 1), Some(Step::Inserted));
        // Removed and another card inserted before the next look: count 1 → 3.
        assert_eq!(w.see(true, 3), Some(Step::Inserted));
        assert_eq!(w.see(true, 3), None);
    }

    #[test]
    fn a_reader_without_event_counts_still_reports_each_insertion() {
        let mut w = watch();
        assert_eq!(w.see(true, 0), Some(Step::Inserted));
        assert_eq!(w.see(true, 0), None);
        assert_eq!(w.see(false, 0), Some(Step::Removed));
        assert_eq!(w.see(true, 0), Some(Step::Inserted));
    }
}
