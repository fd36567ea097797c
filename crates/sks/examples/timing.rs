//! Timing of the Appendix B session (P-256) and of signHashedData, in memory and on SQLite.
//! Run: `cargo run -p sks --example timing -- [KEYS] [SESSIONS] [ROUNDS]` (add `--release`
//! for optimized numbers): KEYS for the large store (default 10,000), SESSIONS per median
//! (default 20), ROUNDS of all six stores one after the other (default 5).
//!
//! A session's time is shown twice: whole (the issuer emulation runs in the same process and
//! does its own P-256 work: certificate signing, attestation checks) and the SKS's share, the
//! time spent inside the SKS's calls (engine, and storage where there is one).

use sks_core::api::{req, KeyUse, SksApi};
use sks_core::consts::ALG_ECDSA_SHA256;
use sks_core::secret::Secret;
use sks_core::{Config, MemoryStorage, Sks, Storage};
use sks_sqlite::SqliteStorage;

// `Core` is the sans-IO engine; `Sks` adds the per-call persistence diff.
use std::time::{Duration, Instant};

/// Median of `v` (the mean of the two middle ones for an even count).
fn median(v: Vec<Duration>) -> Duration {
    let secs: Vec<f64> = v.iter().map(Duration::as_secs_f64).collect();
    Duration::from_secs_f64(kf_stats::median(&secs).unwrap_or(0.0))
}

/// Adds up the time spent inside the wrapped SKS's calls from the first
/// createProvisioningSession to the first closeProvisioningSession (the demo's session 1,
/// which its `session_time` measures).
struct Timed<'a, T> {
    sks: &'a mut T,
    inside: Duration,
    opened: bool,
    closed: bool,
}

impl<T: SksApi> SksApi for Timed<'_, T> {
    fn call(
        &mut self,
        request: sks_core::Request,
    ) -> Result<sks_core::Response, sks_core::SksError> {
        let (opens, closes) = (
            matches!(request, sks_core::Request::CreateProvisioningSession(_)),
            matches!(request, sks_core::Request::CloseProvisioningSession(_)),
        );
        self.opened |= opens;
        let counted = self.opened && !self.closed;
        let t = Instant::now();
        let r = self.sks.call(request);
        if counted {
            self.inside += t.elapsed();
        }
        self.closed |= closes;
        r
    }
}

fn run(label: &str, sks: &mut impl SksApi, sessions: usize, signs: usize) -> anyhow::Result<()> {
    let mut session_times = Vec::new();
    let mut sks_times = Vec::new();
    let mut key = 0;
    for _ in 0..sessions {
        let mut timed = Timed {
            sks: &mut *sks,
            inside: Duration::ZERO,
            opened: false,
            closed: false,
        };
        let rep = sks_issuer::demo::run(&mut timed)?;
        session_times.push(rep.session_time);
        sks_times.push(timed.inside);
        key = rep.signing_key;
    }
    let mut sign_times = Vec::new();
    for _ in 0..signs {
        let t = Instant::now();
        sks.sign_hashed_data(req::SignHashedData {
            key: KeyUse {
                key_handle: key,
                algorithm: ALG_ECDSA_SHA256.into(),
                parameters: vec![],
                authorization: Secret::from(sks_issuer::demo::DEMO_PIN),
            },
            data: vec![1; 32],
        })?;
        sign_times.push(t.elapsed());
    }
    println!(
        "{label}: Appendix B session median {:.2} ms, of which in the SKS {:.2} ms ({sessions} runs); signHashedData median {:.3} ms ({signs} runs)",
        median(session_times).as_secs_f64() * 1e3,
        median(sks_times).as_secs_f64() * 1e3,
        median(sign_times).as_secs_f64() * 1e3
    );
    Ok(())
}

/// A store holding at least `keys` keys (Appendix B sessions repeated), as records.
fn filled(keys: usize) -> anyhow::Result<MemoryStorage> {
    let mut mem = Sks::initialize(MemoryStorage::new(), Config::default())?;
    while mem.core().state().keys.len() < keys {
        sks_issuer::demo::run(&mut mem)?;
    }
    Ok(mem.into_storage())
}

/// The P-256 operations a session is made of, one by one: the SKS does an ephemeral key
/// generation, an ECDH and (without privacy) an attestation signature at
/// createProvisioningSession, and a key generation at createKeyEntry.
fn p256_primitives(runs: usize) -> anyhow::Result<()> {
    let device = sks_core::device::DeviceIdentity::generate("timing")?;
    let peer = p256::SecretKey::random(&mut rand_core::OsRng).public_key();
    let (mut keygen, mut ecdh, mut sign) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        // A key pair: the scalar and its public point (the SKS encodes both keys it makes).
        let t = Instant::now();
        let k = p256::SecretKey::random(&mut rand_core::OsRng);
        std::hint::black_box(k.public_key());
        keygen.push(t.elapsed());
        let t = Instant::now();
        let z = p256::ecdh::diffie_hellman(k.to_nonzero_scalar(), peer.as_affine());
        ecdh.push(t.elapsed());
        std::hint::black_box(z.raw_secret_bytes());
        let t = Instant::now();
        std::hint::black_box(device.sign(&[7; 32])?);
        sign.push(t.elapsed());
    }
    let us = |v: Vec<Duration>| median(v).as_secs_f64() * 1e6;
    println!(
        "P-256 medians ({runs} runs): key pair generation {:.0} µs, ECDH {:.0} µs, ECDSA signature {:.0} µs",
        us(keygen),
        us(ecdh),
        us(sign)
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let large: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let sessions: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(20);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    p256_primitives(500)?;
    let device = sks_core::device::DeviceIdentity::generate("timing")?;
    let mut core =
        sks_core::Core::new(sks_core::model::State::default(), device, Config::default());
    let mut mem = Sks::initialize(MemoryStorage::new(), Config::default())?;
    let dir = std::env::temp_dir().join(format!("sks-timing-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut db = Sks::initialize(SqliteStorage::open(&dir.join("sks.db"))?, Config::default())?;

    // The same stores with `large` keys.
    let mut store = filled(large)?;
    let records = store.load()?;
    let device = sks_core::device::DeviceIdentity::from_record(
        records
            .get(&(sks_core::model::kind::DEVICE, 0))
            .ok_or_else(|| anyhow::anyhow!("no device record"))?
            .expose(),
    )?;
    let state = sks_core::model::State::from_records(records.iter())?;
    let keys = state.keys.len();
    let mut core_large = sks_core::Core::new(state, device, Config::default());
    let mut sqlite = SqliteStorage::open(&dir.join("large.db"))?;
    let batch: Vec<sks_core::storage::Change<'_>> = records
        .iter()
        .map(|(id, data)| (*id, Some(data.expose())))
        .collect();
    sqlite.apply(&batch)?;
    let mut db_large = Sks::open(sqlite, Config::default())?;
    let mut mem_large = Sks::open(store, Config::default())?;

    // Rounds of all six, one after the other: the machine's speed drifts (a shared VM), and a
    // comparison within a round of a few seconds is not blurred by it.
    for round in 1..=rounds {
        println!("round {round}/{rounds}");
        run("core (no persistence)", &mut core, sessions, 200)?;
        run(
            &format!("core, {keys} keys"),
            &mut core_large,
            sessions,
            200,
        )?;
        run("memory", &mut mem, sessions, 200)?;
        run(
            &format!("memory, {keys} keys"),
            &mut mem_large,
            sessions,
            200,
        )?;
        run("sqlite", &mut db, sessions, 100)?;
        run(
            &format!("sqlite, {keys} keys"),
            &mut db_large,
            sessions,
            100,
        )?;
    }
    drop((db, db_large));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
