//! Criterion benchmarks: channel opening (both sides, in memory) and
//! wrap + unwrap of one APDU round trip at levels 01, 03 and 33 for command
//! data of 16, 64 and 239 bytes (AES-128, S8).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kf_apdu::{CommandApdu, ResponseApdu, StatusWord};
use kf_crypto::StaticKeys;
use kf_scp03::{
    CardChannel, CardConfig, CardKeySet, CardSession, HostSession, Mode, ParameterI, SecureChannel,
    SecurityLevel,
};

fn keys() -> StaticKeys {
    StaticKeys::from_hex(
        "404142434445464748494A4B4C4D4E4F",
        "505152535455565758595A5B5C5D5E5F",
        "606162636465666768696A6B6C6D6E6F",
    )
    .unwrap()
}

fn open(level: SecurityLevel) -> (SecureChannel, CardChannel) {
    let cfg = CardConfig::new(
        ParameterI::new(0x70).unwrap(),
        Mode::S8,
        vec![0xA0, 0, 0, 1, 0x51, 0, 0, 0],
    );
    // Benchmarks run far more commands than the default per-session limit.
    let cfg = CardConfig {
        command_limit: u64::MAX,
        ..cfg
    };
    let mut card = CardSession::new(cfg, vec![CardKeySet::new(0x30, keys())]);
    let (iu, awaiting) = HostSession::new(keys())
        .security_level(level)
        .command_limit(u64::MAX)
        .initialize_update(0x30, &[7; 8])
        .unwrap();
    let (resp, auth) = card.initialize_update(&iu).unwrap();
    let (ea, awaiting) = awaiting.process_response(&resp).unwrap();
    let (ok, card_channel) = auth.external_authenticate(&ea.to_bytes()).unwrap();
    (awaiting.complete(&ok).unwrap(), card_channel)
}

fn bench_open(c: &mut Criterion) {
    c.bench_function("scp03_open_channel_aes128_level33", |b| {
        b.iter(|| open(SecurityLevel::FULL))
    });
}

fn bench_round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("scp03_wrap_unwrap");
    for level in [
        SecurityLevel::C_MAC,
        SecurityLevel::C_DEC_C_MAC,
        SecurityLevel::FULL,
    ] {
        for len in [16usize, 64, 239] {
            group.throughput(Throughput::Bytes(len as u64));
            let id = BenchmarkId::new(format!("level_{:02X}", level.value()), len);
            let (mut host, mut card) = open(level);
            let command = CommandApdu::new(0x80, 0xE2, 0x90, 0x00).with_data(vec![0x5A; len]);
            let response = ResponseApdu::new(vec![0xA5; len], StatusWord::SUCCESS);
            group.bench_function(id, |b| {
                b.iter(|| {
                    let wire = host.wrap(command.clone()).unwrap().to_bytes();
                    card.unwrap_command(&wire).unwrap();
                    let r = card.wrap_response(response.clone()).unwrap();
                    host.unwrap(r).unwrap()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_open, bench_round_trip);
criterion_main!(benches);
