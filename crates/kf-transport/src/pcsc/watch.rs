//! Card and reader events of one reader, from `SCardGetStatusChange` rather
//! than polling.
//!
//! The reader state is kept between calls, so a change that happens while
//! nobody waits is reported at the next call. PC/SC counts card insertions
//! and removals in the upper 16 bits of the event state (pcsc-lite and
//! WinSCard alike), one step for each. A card that is present with a count
//! at least two steps past the one reported (a removal and an insertion) is
//! a new insertion even when no absence was observed, so two fobs swapped
//! faster than the station looks are two fobs, never one. A single step
//! while present is the same card: pcscd publishes the new reader state of
//! an insertion before it increments the count, and a look between the two
//! writes sees the card with the count of its removal; and a failed
//! `SCARD_RESET_CARD` at disconnect, as the card leaves, writes "present"
//! back after the removal was counted.
//!
//! Some WinSCard implementations ignore the current state passed in (Wine's
//! forwards only the reader names to pcsc-lite) and return at once; a call
//! that returns the same state as the one before is followed by a short
//! pause, so such a reader is polled instead of spun on.

use std::time::{Duration, Instant};

use ::pcsc::{Context, ReaderState, State};

use super::context::{reader_cstring, PcscContext};
use super::errors::map_pcsc_error;
use crate::error::TransportError;

/// Pause after a status call that returned without a change.
const UNCHANGED_PAUSE: Duration = Duration::from_millis(20);

/// The event count is 16 bits wide and wraps.
const COUNT_MASK: u32 = 0xFFFF;

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
    /// Event state, count and ATR of the last return, to tell a call that
    /// returned without a change.
    last_seen: Option<(State, u32, Vec<u8>)>,
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
            last_seen: None,
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
            let seen = (event.difference(State::CHANGED), count, atr.clone());
            let unchanged = self.last_seen.as_ref() == Some(&seen);
            self.last_seen = Some(seen);
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
            if unchanged {
                let pause = deadline.map_or(UNCHANGED_PAUSE, |d| {
                    d.saturating_duration_since(Instant::now())
                        .min(UNCHANGED_PAUSE)
                });
                std::thread::sleep(pause);
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
        if let (Some(last), true) = (*reported, *was_present) {
            match count.wrapping_sub(last) & COUNT_MASK {
                0 => return None,
                // The insertion's own step, seen after its state.
                1 => {
                    *reported = Some(count);
                    return None;
                }
                _ => {}
            }
        }
        // A removal and an insertion since the card reported: a new card,
        // even without an absence in between. (A reader that never counts
        // reports 0 every time; the removal below clears `reported`, so each
        // insertion is still seen.)
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

    /// What a fresh watch reports for each look (present, event count).
    fn steps(looks: &[(bool, u32)]) -> Vec<Option<Step>> {
        let mut w = watch();
        looks
            .iter()
            .map(|&(present, count)| w.see(present, count))
            .collect()
    }

    const IN: Option<Step> = Some(Step::Inserted);
    const OUT: Option<Step> = Some(Step::Removed);

    #[test]
    fn a_card_present_at_start_is_reported_once() {
        let looks = [(true, 3), (true, 3), (false, 4), (false, 4), (true, 5)];
        assert_eq!(steps(&looks), [IN, None, OUT, None, IN]);
    }

    #[test]
    fn a_swap_between_two_looks_is_a_new_card() {
        // Removed and another card inserted before the next look: count 1 → 3.
        assert_eq!(steps(&[(true, 1), (true, 3), (true, 3)]), [IN, IN, None]);
    }

    #[test]
    fn the_count_step_of_an_insertion_seen_late_is_the_same_card() {
        // pcscd publishes the present state, then increments the count; a
        // swap from there is still two steps: a new card.
        let looks = [(false, 4), (true, 4), (true, 5), (true, 5), (true, 7)];
        assert_eq!(steps(&looks), [None, IN, None, None, IN]);
        // The same across the 16-bit wrap.
        let looks = [(true, 0xFFFF), (true, 0), (true, 2)];
        assert_eq!(steps(&looks), [IN, None, IN]);
    }

    #[test]
    fn a_reader_without_event_counts_still_reports_each_insertion() {
        let looks = [(true, 0), (true, 0), (false, 0), (true, 0)];
        assert_eq!(steps(&looks), [IN, None, OUT, IN]);
    }
}
