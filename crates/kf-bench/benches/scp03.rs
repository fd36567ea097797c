//! Criterion micro benchmarks of kf-scp03 (AES-128, S8, STORE DATA
//! `80 E2 90 00` with 16, 64 or 239 bytes, answered with as many bytes + '9000'):
//!
//! - `scp03_round_trip/level_XX/N`: both sides of one APDU: host wrap →
//!   card `unwrap_command` → card `wrap_response` → host unwrap;
//! - `scp03_host_apdu/level_XX/N`: the host side only: host wrap (to wire
//!   bytes) + host unwrap of the raw response bytes. Responses at levels with
//!   R-MAC are produced untimed by a lockstep shadow pair (kf-bench
//!   `lockstep`); at levels without R-MAC the card's plaintext response is
//!   unwrapped as is. This is what `peer-compare` measures against yubikit;
//! - `scp03_host_wrap/level_XX/N`: host wrap alone (to wire bytes);
//! - `scp03_open/level_33`: INITIALIZE UPDATE → EXTERNAL AUTHENTICATE, host
//!   and card, in memory (session key derivation, both cryptograms, the
//!   EXTERNAL AUTHENTICATE C-MAC on both sides).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use kf_bench::fixtures::{
    card_session, handshake, open_pair, plain_response, static_keys, store_data, LEVELS,
    PAYLOAD_SIZES,
};
use kf_bench::measure::HostApduBench;
use kf_scp03::{HostSession, SecurityLevel};

/// Largest number of card responses precomputed at once (bounded memory).
const LOCKSTEP_CHUNK: u64 = 1024;

fn level_name(level: SecurityLevel) -> String {
    format!("level_{:02X}", level.value())
}

/// A benchmark group `name` with one benchmark per security level and
/// payload size, each with the payload as its throughput; `bench` sets one up.
fn per_level_and_size(
    c: &mut Criterion,
    name: &str,
    mut bench: impl FnMut(&mut BenchmarkGroup<'_, WallTime>, BenchmarkId, SecurityLevel, usize),
) {
    let mut group = c.benchmark_group(name);
    for level in LEVELS {
        for len in PAYLOAD_SIZES {
            group.throughput(Throughput::Bytes(len as u64));
            bench(
                &mut group,
                BenchmarkId::new(level_name(level), len),
                level,
                len,
            );
        }
    }
    group.finish();
}

fn bench_round_trip(c: &mut Criterion) {
    per_level_and_size(c, "scp03_round_trip", |group, id, level, len| {
        let (mut host, mut card) = open_pair(level).unwrap();
        let command = store_data(len);
        let response = plain_response(len);
        group.bench_function(id, |b| {
            b.iter(|| {
                let wire = host.wrap(command.clone()).unwrap().to_bytes();
                card.unwrap_command(&wire).unwrap();
                let protected = card.wrap_response(response.clone()).unwrap();
                host.unwrap(protected).unwrap()
            })
        });
    });
}

fn bench_host_apdu(c: &mut Criterion) {
    per_level_and_size(c, "scp03_host_apdu", |group, id, level, len| {
        let mut bench = HostApduBench::new(level, len, len).unwrap();
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(LOCKSTEP_CHUNK);
                    total += bench.run_batch(n as usize).unwrap();
                    left -= n;
                }
                total
            })
        });
    });
}

fn bench_host_wrap(c: &mut Criterion) {
    per_level_and_size(c, "scp03_host_wrap", |group, id, level, len| {
        let (mut host, _card) = open_pair(level).unwrap();
        let command = store_data(len);
        group.bench_function(id, |b| {
            b.iter(|| host.wrap(command.clone()).unwrap().to_bytes())
        });
    });
}

fn bench_open(c: &mut Criterion) {
    let level = SecurityLevel::FULL;
    let mut card = card_session().unwrap();
    let keys = static_keys().unwrap();
    c.bench_function("scp03_open/level_33", |b| {
        b.iter(|| {
            let host = HostSession::new(keys.duplicate())
                .security_level(level)
                .command_limit(u64::MAX);
            handshake(host, black_box(&mut card)).unwrap()
        })
    });
}

common::benchmarks!(
    bench_round_trip,
    bench_host_apdu,
    bench_host_wrap,
    bench_open
);
