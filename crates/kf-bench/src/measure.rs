//! Host-side per-APDU measurement: wrap one STORE DATA to wire bytes and
//! unwrap the card's response bytes, the work yubikit's `ScpProcessor` does
//! per APDU. Card responses come from a [`LockstepResponder`] run before the
//! timer starts, in batches, so memory stays bounded however many APDUs run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use kf_apdu::{CommandApdu, ResponseApdu};
use kf_scp03::{SecureChannel, SecurityLevel};

use crate::fixtures::{open_pair, plain_response, store_data};
use crate::lockstep::LockstepResponder;
use crate::BenchError;

/// A measured host channel with its source of valid card responses.
#[derive(Debug)]
pub struct HostApduBench {
    host: SecureChannel,
    /// `None` at levels without R-MAC: the card's response is then sent as is.
    responder: Option<LockstepResponder>,
    command: CommandApdu,
    response: ResponseApdu,
}

impl HostApduBench {
    /// A fresh session at `level` sending `payload_len`-byte STORE DATA
    /// commands answered with `response_len` bytes of data and '9000'.
    pub fn new(
        level: SecurityLevel,
        payload_len: usize,
        response_len: usize,
    ) -> Result<HostApduBench, BenchError> {
        let (host, _card) = open_pair(level)?;
        let responder = if level.r_mac() {
            Some(LockstepResponder::new(level)?)
        } else {
            None
        };
        Ok(HostApduBench {
            host,
            responder,
            command: store_data(payload_len),
            response: plain_response(response_len),
        })
    }

    /// Runs `count` APDUs (host wrap + host unwrap each) and returns the time
    /// they took; producing the card responses is not timed. The last
    /// unwrapped response is checked against the plaintext after the timer stops.
    pub fn run_batch(&mut self, count: usize) -> Result<Duration, BenchError> {
        let responses = match &mut self.responder {
            Some(responder) => responder.responses(&self.command, &self.response, count)?,
            None => vec![self.response.to_bytes(); count],
        };
        let mut last = None;
        let start = Instant::now();
        for raw in &responses {
            let wire = self.host.wrap(self.command.clone())?.to_bytes();
            black_box(&wire);
            last = Some(self.host.unwrap_bytes(black_box(raw))?);
        }
        let elapsed = start.elapsed();
        match last {
            Some(plain) if plain != self.response => {
                Err(BenchError::Lockstep("unwrapped response differs"))
            }
            _ => Ok(elapsed),
        }
    }
}

/// Something that runs and times a batch of identical operations.
pub trait Batched {
    /// Runs `count` operations and returns the time the measured part took.
    fn run_batch(&mut self, count: usize) -> Result<Duration, BenchError>;
}

impl Batched for HostApduBench {
    fn run_batch(&mut self, count: usize) -> Result<Duration, BenchError> {
        HostApduBench::run_batch(self, count)
    }
}

/// Time per operation in nanoseconds for each of `rounds` rounds of `batch`
/// operations (the round's elapsed time divided by `batch`).
pub fn per_item_ns(
    bench: &mut impl Batched,
    rounds: usize,
    batch: usize,
) -> Result<Vec<f64>, BenchError> {
    if rounds == 0 || batch == 0 {
        return Err(BenchError::EmptyMeasurement);
    }
    (0..rounds)
        .map(|_| {
            let elapsed = bench.run_batch(batch)?;
            Ok(elapsed.as_nanos() as f64 / batch as f64)
        })
        .collect()
}

/// The batch size whose run takes about `target` on this machine now: a
/// pilot batch of `pilot` operations, run after a warm-up batch of the same
/// size, is timed and scaled (at least 1).
///
/// Equal batch *durations* on both sides of a comparison keep it fair on a
/// loaded machine: a batch much longer than a scheduler time slice is
/// inflated by waiting for other processes, a short one mostly is not, and
/// the median over rounds then picks uninterrupted batches on both sides.
pub fn calibrate(
    bench: &mut impl Batched,
    target: Duration,
    pilot: usize,
) -> Result<usize, BenchError> {
    if pilot == 0 {
        return Err(BenchError::EmptyMeasurement);
    }
    bench.run_batch(pilot)?; // warm-up: caches, allocator, branch predictors
    let elapsed = bench.run_batch(pilot)?;
    let per_item = (elapsed.as_nanos() / pilot as u128).max(1);
    Ok(((target.as_nanos() / per_item) as usize).max(1))
}

/// Per-APDU host time in nanoseconds for each of `rounds` rounds of `batch`
/// APDUs, on one fresh session.
pub fn host_apdu_ns(
    level: SecurityLevel,
    payload_len: usize,
    response_len: usize,
    rounds: usize,
    batch: usize,
) -> Result<Vec<f64>, BenchError> {
    if rounds == 0 || batch == 0 {
        return Err(BenchError::EmptyMeasurement);
    }
    let mut bench = HostApduBench::new(level, payload_len, response_len)?;
    per_item_ns(&mut bench, rounds, batch)
}

/// [`calibrate`] for host APDUs of this shape, on a fresh session.
pub fn calibrated_batch(
    level: SecurityLevel,
    payload_len: usize,
    response_len: usize,
    target: Duration,
    pilot: usize,
) -> Result<usize, BenchError> {
    let mut bench = HostApduBench::new(level, payload_len, response_len)?;
    calibrate(&mut bench, target, pilot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{LEVELS, PAYLOAD_SIZES};

    #[test]
    fn every_level_and_size_runs_in_lockstep() {
        for level in LEVELS {
            for len in PAYLOAD_SIZES {
                let mut bench = HostApduBench::new(level, len, len).unwrap();
                let samples = per_item_ns(&mut bench, 3, 4).unwrap();
                assert_eq!(samples.len(), 3);
                // The card side answered every measured APDU: 3 rounds of 4.
                let answered = bench.responder.as_ref().map(|r| r.commands_answered());
                let expected = level.r_mac().then_some(12);
                assert_eq!(answered, expected, "{level:?}, {len} bytes");
            }
        }
    }

    #[test]
    fn status_only_responses_at_level_03() {
        let samples = host_apdu_ns(SecurityLevel::C_DEC_C_MAC, 64, 0, 2, 3).unwrap();
        assert_eq!(samples.len(), 2);
    }

    #[test]
    fn calibrated_batch_runs_at_least_one_apdu() {
        let level = SecurityLevel::FULL;
        let one = calibrated_batch(level, 16, 16, Duration::from_nanos(1), 10).unwrap();
        assert_eq!(one, 1, "a target below one APDU still runs one");
        assert!(matches!(
            calibrated_batch(level, 16, 16, Duration::from_millis(1), 0),
            Err(BenchError::EmptyMeasurement)
        ));
    }

    /// A batch that takes `ns_per_item` per operation on a scripted clock and
    /// records the batch sizes it was asked to run.
    struct Scripted {
        ns_per_item: u64,
        batches: Vec<usize>,
    }

    impl Batched for Scripted {
        fn run_batch(&mut self, count: usize) -> Result<Duration, BenchError> {
            self.batches.push(count);
            Ok(Duration::from_nanos(self.ns_per_item * count as u64))
        }
    }

    fn scripted(ns_per_item: u64) -> Scripted {
        Scripted {
            ns_per_item,
            batches: Vec::new(),
        }
    }

    #[test]
    fn per_item_time_is_the_batch_time_divided_by_the_batch() {
        let mut bench = scripted(250);
        assert_eq!(per_item_ns(&mut bench, 3, 8).unwrap(), vec![250.0; 3]);
        assert_eq!(bench.batches, vec![8, 8, 8], "one batch of 8 per round");
    }

    #[test]
    fn calibration_divides_the_target_by_the_pilot_time() {
        let mut bench = scripted(50);
        let batch = calibrate(&mut bench, Duration::from_secs(10), 10).unwrap();
        assert_eq!(batch, 200_000_000, "10 s / 50 ns");
        assert_eq!(
            bench.batches,
            vec![10, 10],
            "a warm-up then the timed pilot"
        );
        let mut bench = scripted(50);
        assert_eq!(
            calibrate(&mut bench, Duration::from_nanos(120), 7).unwrap(),
            2
        );
        // A pilot too fast to time counts as 1 ns per item, not a division by zero.
        let mut bench = scripted(0);
        assert_eq!(
            calibrate(&mut bench, Duration::from_micros(3), 4).unwrap(),
            3_000
        );
        // A target below one item still runs one.
        let mut bench = scripted(1_000);
        assert_eq!(
            calibrate(&mut bench, Duration::from_nanos(1), 4).unwrap(),
            1
        );
    }

    #[test]
    fn empty_measurements_are_rejected() {
        assert!(matches!(
            host_apdu_ns(SecurityLevel::FULL, 16, 16, 0, 1),
            Err(BenchError::EmptyMeasurement)
        ));
        assert!(matches!(
            host_apdu_ns(SecurityLevel::FULL, 16, 16, 1, 0),
            Err(BenchError::EmptyMeasurement)
        ));
    }
}
