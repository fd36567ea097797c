//! Timing of the Appendix B session (P-256) and of signHashedData, in memory and on SQLite.
//! Run: `cargo run -p sks --example timing` (add `--release` for optimized numbers).

use sks_core::api::{req, SksApi};
use sks_core::consts::ALG_ECDSA_SHA256;
use sks_core::secret::Secret;
use sks_core::{Config, MemoryStorage, Sks};
use sks_sqlite::SqliteStorage;

// `Core` is the sans-IO engine; `Sks` adds the per-call persistence diff.
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn run(label: &str, sks: &mut impl SksApi, sessions: usize, signs: usize) -> anyhow::Result<()> {
    let mut session_times = Vec::new();
    let mut key = 0;
    for _ in 0..sessions {
        let rep = sks_issuer::demo::run(sks)?;
        session_times.push(rep.session_time);
        key = rep.signing_key;
    }
    let mut sign_times = Vec::new();
    for _ in 0..signs {
        let t = Instant::now();
        sks.sign_hashed_data(req::SignHashedData {
            key_handle: key,
            algorithm: ALG_ECDSA_SHA256.into(),
            parameters: vec![],
            authorization: Secret::from(sks_issuer::demo::DEMO_PIN),
            data: vec![1; 32],
        })?;
        sign_times.push(t.elapsed());
    }
    println!(
        "{label}: Appendix B session median {:.2} ms ({sessions} runs); signHashedData median {:.3} ms ({signs} runs)",
        median(session_times).as_secs_f64() * 1e3,
        median(sign_times).as_secs_f64() * 1e3
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let device = sks_core::device::DeviceIdentity::generate("timing")?;
    let mut core =
        sks_core::Core::new(sks_core::model::State::default(), device, Config::default());
    run("core (no persistence)", &mut core, 20, 500)?;
    let mut mem = Sks::initialize(MemoryStorage::new(), Config::default())?;
    run("memory", &mut mem, 20, 500)?;
    let dir = std::env::temp_dir().join(format!("sks-timing-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut db = Sks::initialize(SqliteStorage::open(&dir.join("sks.db"))?, Config::default())?;
    run("sqlite", &mut db, 5, 200)?;
    drop(db);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
