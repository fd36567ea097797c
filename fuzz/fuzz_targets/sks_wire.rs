//! The SKS wire protocol server step (SKS API 1.00 §7.2/§7.4): a sequence of
//! request frames, each decoded and executed by an engine over an initialized
//! in-memory store. Every answer decodes as a response to its method.
//!
//! Input: frames, each prefixed with a two-byte big-endian length.
#![no_main]
use std::collections::BTreeMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sks_core::model::RecordId;
use sks_core::secret::Secret;
use sks_core::storage::{Change, Durability, StorageError};
use sks_core::{Config, Response, Sks, Storage};

/// A store that starts from a snapshot of an initialized one.
#[derive(Default)]
struct Snapshot(BTreeMap<RecordId, Vec<u8>>);

impl Storage for Snapshot {
    fn load(&mut self) -> Result<BTreeMap<RecordId, Secret>, StorageError> {
        Ok(self
            .0
            .iter()
            .map(|(k, v)| (*k, Secret::from_slice(v)))
            .collect())
    }

    fn apply_with(&mut self, batch: &[Change<'_>], _: Durability) -> Result<(), StorageError> {
        for (id, data) in batch {
            match data {
                Some(d) => self.0.insert(*id, d.to_vec()),
                None => self.0.remove(id),
            };
        }
        Ok(())
    }
}

fn initialized() -> &'static BTreeMap<RecordId, Vec<u8>> {
    static INIT: OnceLock<BTreeMap<RecordId, Vec<u8>>> = OnceLock::new();
    INIT.get_or_init(|| {
        let mut store = Snapshot::default();
        Sks::initialize(&mut store, Config::default()).expect("initialize");
        store.0
    })
}

fuzz_target!(|data: &[u8]| {
    let config = Config {
        puk_delay: std::time::Duration::ZERO,
        ..Config::default()
    };
    let mut sks = Sks::open(Snapshot(initialized().clone()), config).expect("open");
    let mut rest = data;
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (frame, next) = tail.split_at(len);
        rest = next;
        let reply = sks_core::wire::handle_frame(&mut sks, frame);
        if let Some(&method) = frame.first() {
            if sks_core::wire::decode_request(frame).is_ok() {
                let _ = Response::decode(method, &reply).expect("the engine's reply decodes");
            }
        }
    }
});
