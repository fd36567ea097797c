//! No static key (dev sample or KLMS-derived), SCP03 session key, KLMS master
//! key, private scalar or BLE IRK reaches an audit record, the
//! journal, a log (RUST_LOG=trace) or stdout, for any source or level,
//! including failing fobs.
// They run the simulator commands (`demo`, `provision --sim`).
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use p256::pkcs8::DecodePrivateKey;

mod common;
use common::secrets::{all_files, assert_no_leak, session_keys};

/// Runs the station in `dir` with every log on; returns its exit code and
/// output. The secrets each fob used go to `secrets.txt` beside `dir` (the test hook,
/// [`used_secrets`]), out of the scanned directory.
fn station(args: &[&str], dir: &Path) -> (Option<i32>, Vec<u8>, Vec<u8>) {
    let out = kf_testkit::process::output_within(
        Command::new(env!("CARGO_BIN_EXE_kf-station"))
            .args(args)
            .current_dir(dir)
            .env("RUST_LOG", "trace")
            .env("KF_STATION_TEST_SECRETS", secrets_file(dir)),
        std::time::Duration::from_secs(600),
    );
    (out.status.code(), out.stdout, out.stderr)
}

fn secrets_file(dir: &Path) -> std::path::PathBuf {
    dir.parent().unwrap().join("secrets.txt")
}

/// What the station's test hook recorded: every fob's static keys by UID, and every
/// secret (keys, clear scalar, IRK) with a label.
type UsedSecrets = (
    std::collections::HashMap<String, kf_crypto::StaticKeys>,
    Vec<(String, Vec<u8>)>,
);

fn used_secrets(dir: &Path) -> UsedSecrets {
    let text = std::fs::read_to_string(secrets_file(dir)).expect("the test hook recorded nothing");
    let mut keys: std::collections::HashMap<String, [String; 3]> = Default::default();
    let mut secrets = Vec::new();
    for line in text.lines() {
        let [uid, label, value] = line.split(' ').collect::<Vec<_>>()[..] else {
            panic!("a line of the test hook: {line}")
        };
        let slot = ["ENC", "MAC", "DEK"].iter().position(|l| *l == label);
        if let Some(slot) = slot {
            keys.entry(uid.to_owned()).or_default()[slot] = value.to_owned();
        }
        secrets.push((format!("{label} of {uid}"), hex::decode(value).unwrap()));
    }
    let mut static_keys = std::collections::HashMap::new();
    for (uid, [enc, mac, dek]) in keys {
        let parsed = kf_crypto::StaticKeys::from_hex(&enc, &mac, &dek).unwrap();
        static_keys.insert(uid, parsed);
    }
    (static_keys, secrets)
}

#[test]
fn no_secret_in_audit_records_journals_logs_or_output() {
    let work = tempfile::tempdir().unwrap();
    let pool = work.path().join("pool");
    let fixtures = kf_source::fixtures::generate(&pool, 1, Some(11)).unwrap();
    let run_dir = work.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();

    let mut outputs = Vec::new();
    let pool = pool.to_str().unwrap();
    let from_pool = [
        "provision",
        "--sim",
        "--source",
        "container",
        "--source-dir",
        pool,
        "--journal",
        "j.db",
        "--audit-file",
        "a.jsonl",
    ];
    let runs: [(i32, Vec<&str>); 6] = [
        (
            0,
            vec![
                "demo",
                "--fobs",
                "2",
                "--level",
                "01",
                "--source",
                "dev",
                "--data-dir",
                "d1",
            ],
        ),
        (
            0,
            vec!["demo", "--fobs", "2", "--level", "33", "--data-dir", "d2"],
        ),
        (
            0,
            vec![
                "provision",
                "--sim",
                "--level",
                "33",
                "--journal",
                "j.db",
                "--audit-file",
                "a.jsonl",
            ],
        ),
        (0, [&from_pool[..], &["--json"]].concat()),
        // A failing fob: the pool of one package is now used up.
        (1, [&from_pool[..], &["--level", "01"]].concat()),
        (
            0,
            vec!["audit", "export", "--journal", "j.db", "--format", "csv"],
        ),
    ];
    for (expected, args) in runs {
        let (code, stdout, stderr) = station(&args, &run_dir);
        assert_eq!(
            code,
            Some(expected),
            "{args:?}: {}",
            String::from_utf8_lossy(&stderr)
        );
        outputs.push((format!("stdout of {args:?}"), stdout));
        outputs.push((format!("stderr of {args:?}"), stderr));
    }
    all_files(&run_dir, &mut outputs);
    assert!(
        outputs.iter().any(|(n, _)| n.ends_with("a.jsonl")),
        "no audit file was written"
    );
    assert!(
        outputs
            .iter()
            .any(|(n, t)| n.starts_with("stderr") && String::from_utf8_lossy(t).contains("TRACE")),
        "RUST_LOG=trace produced no log to scan"
    );

    let mut secrets: Vec<(String, Vec<u8>)> = vec![
        ("dev ENC".into(), kf_profile::DEV_SAMPLE_ENC.to_vec()),
        ("dev MAC".into(), kf_profile::DEV_SAMPLE_MAC.to_vec()),
        ("dev DEK".into(), kf_profile::DEV_SAMPLE_DEK.to_vec()),
    ];
    // Every secret a fob used, as the station's test hook recorded it: the static keys
    // (the embedded KLMS's derived ones too), and the generated scalars and IRKs.
    let (keys, used) = used_secrets(&run_dir);
    // Six fobs reached the key source: 2 + 2 demo fobs, provision --sim, the pool's package.
    assert_eq!(keys.len(), 6, "fobs the test hook recorded");
    secrets.extend(used);
    // The SCP03 session keys of every fob, recomputed from the challenges its audit record
    // shows (they are public) and the static keys it used.
    for (audit, fobs) in [("a.jsonl", 2), ("d1/audit.jsonl", 2), ("d2/audit.jsonl", 2)] {
        let sessions = session_keys(&std::fs::read(run_dir.join(audit)).unwrap(), |fob| {
            keys[fob].duplicate()
        });
        assert_eq!(
            sessions.len(),
            3 * fobs,
            "session keys of the fobs in {audit}"
        );
        secrets.extend(sessions);
    }
    for p in &fixtures.packages {
        let key = p256::SecretKey::from_pkcs8_der(&p.private_key_der).unwrap();
        secrets.push((format!("scalar of {}", p.fesn), key.to_bytes().to_vec()));
        let irk = base64::engine::general_purpose::STANDARD
            .decode(p.irk_base64.as_bytes())
            .unwrap();
        secrets.push((format!("IRK of {}", p.fesn), irk));
    }
    assert_no_leak(&outputs, &secrets);
}

/// The static keys a KLMS derives for a fob (from a master key only the test
/// and that KLMS know) never reach the station's output, logs, journal or
/// audit file, nor the KLMS's ledger or log — on a fob whose keys do not match, so
/// the derived keys are used for the card cryptogram check and the fob fails.
#[test]
fn no_klms_derived_key_in_station_output_journal_or_ledger() {
    const UID: &str = "04D1E2F3A4B5C6D7E8F9";
    const MASTER: [u8; 16] = [
        0x3C, 0x91, 0x0E, 0x5A, 0x77, 0xB2, 0x48, 0xD6, 0x1F, 0xA3, 0x60, 0x2B, 0xC9, 0x84, 0x5E,
        0x17,
    ];
    // The KLMS runs in this process: its log, every level, goes to `klms_log`.
    let klms_log = Captured::default();
    let writer = klms_log.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let work = tempfile::tempdir().unwrap();
    let pki = kf_klms::pki::DevPki::generate("test CA", &["STATION-S"]).unwrap();
    let paths = pki.write_to(&work.path().join("pki")).unwrap();
    let ledger_dir = work.path().join("klms");
    std::fs::create_dir_all(&ledger_dir).unwrap();
    let server = kf_klms::spawn_server(
        kf_klms::KlmsConfig::dev(
            &pki,
            ledger_dir.join("ledger.db"),
            kf_crypto::AesKey::from_slice(&MASTER).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let run_dir = work.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::write(
        run_dir.join("station.toml"),
        format!(
            "station_id = \"STATION-S\"\njournal = \"j.db\"\n[source]\nkind = \"klms\"\n[klms]\nurl = \"{}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
            server.base_url(),
            paths.ca_cert.display(),
            work.path().join("pki/STATION-S.pem").display(),
            work.path().join("pki/STATION-S.key").display(),
        ),
    )
    .unwrap();
    let args = [
        "provision",
        "--sim",
        "--sim-uid",
        UID,
        "--config",
        "station.toml",
        "--level",
        "33",
        "--audit-file",
        "a.jsonl",
        "--json",
    ];
    let (code, stdout, stderr) = station(&args, &run_dir);
    assert_eq!(code, Some(1), "{}", String::from_utf8_lossy(&stderr));
    let result: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(result["stage"], "InitializeUpdate", "{result}");
    drop(server);

    let klms_log = klms_log.0.lock().unwrap().clone();
    assert!(
        String::from_utf8_lossy(&klms_log).contains("issuance ledger"),
        "no KLMS log to scan"
    );
    let mut outputs = vec![
        ("stdout".to_owned(), stdout),
        ("stderr".to_owned(), stderr),
        ("the KLMS's log".to_owned(), klms_log),
    ];
    all_files(&run_dir, &mut outputs);
    all_files(&ledger_dir, &mut outputs);
    assert!(outputs.iter().any(|(n, _)| n.ends_with("ledger.db")));
    let master = kf_crypto::AesKey::from_slice(&MASTER).unwrap();
    let keys = kf_crypto::kdf::diversify_static_keys(&master, &hex::decode(UID).unwrap()).unwrap();
    let mut secrets = vec![
        ("KLMS master key".to_owned(), MASTER.to_vec()),
        ("derived ENC".to_owned(), keys.enc.expose_secret().to_vec()),
        ("derived MAC".to_owned(), keys.mac.expose_secret().to_vec()),
        ("derived DEK".to_owned(), keys.dek.expose_secret().to_vec()),
    ];
    // What the station itself recorded as used: the same keys, and the package's IRK.
    let (used_keys, used) = used_secrets(&run_dir);
    assert_eq!(used_keys[UID].enc.expose_secret(), keys.enc.expose_secret());
    secrets.extend(used);
    assert_no_leak(&outputs, &secrets);
}

/// A log sink shared between the subscriber and the test.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The scan itself finds a secret in each form it claims to look for.
#[test]
fn the_scan_finds_hex_base64_and_raw_bytes() {
    use base64::engine::general_purpose::STANDARD;
    let secret = vec![0xA5, 0x01, 0xFE, 0x7C, 0x33, 0x90, 0x0B, 0xD4];
    let secrets = [("s".to_owned(), secret.clone())];
    let mut raw = b"prefix ".to_vec();
    raw.extend_from_slice(&secret);
    for leaked in [
        format!("key={}", hex::encode_upper(&secret)).into_bytes(),
        format!("key={}", hex::encode(&secret)).into_bytes(),
        format!("key={}", STANDARD.encode(&secret)).into_bytes(),
        raw,
    ] {
        let outputs = [("out".to_owned(), leaked)];
        let found = std::panic::catch_unwind(|| assert_no_leak(&outputs, &secrets));
        assert!(found.is_err(), "missed {:?}", outputs[0].1);
    }
    assert_no_leak(&[("out".to_owned(), b"nothing here".to_vec())], &secrets);
}
