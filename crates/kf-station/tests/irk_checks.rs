//! BLE IRK checks of container packages (provisioning specification, "Container Directory
//! Format", DGI A006): a malformed or all-zero IRK is refused at FetchKeys
//! before any SCP03 command, an IRK already written to a fob that passed is
//! refused, and the journal keeps only a keyed fingerprint of each IRK. A fob
//! the journal already records as personalized (by chip serial or UID) is
//! refused before its keys are fetched, unless `--repersonalize`.
// They run the simulator (`provision --sim`).
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::{
    assert_no_scp03_command, json_outcome, pool, provision_container, station, station_in,
};

use base64::Engine as _;
use kf_source::container::IRK_FILE;
use serde_json::Value;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn provision(pool: &Path, dir: &Path) -> (i32, Value, String) {
    provision_container(pool, dir, &[])
}

/// No SCP03 command in the record's trace, and the fob stopped at FETCH_KEYS.
fn assert_stopped_before_scp03(outcome: &Value) {
    let audit = &outcome["audit"];
    assert_eq!(audit["overall_result"], "FAILURE", "{outcome:#}");
    assert_eq!(audit["stage_reached"], "FETCH_KEYS", "{outcome:#}");
    assert_no_scp03_command(outcome);
}

#[test]
fn malformed_or_zero_irks_are_refused_before_any_scp03_command() {
    let good = B64.encode([0x3Cu8; 16]);
    let cases: Vec<(&str, String, &str)> = vec![
        ("15 bytes", B64.encode([7u8; 15]), "decodes to 15 bytes"),
        ("17 bytes", B64.encode([7u8; 17]), "decodes to 17 bytes"),
        (
            "non-zero trailing bits",
            format!("{}x==", &good[..21]),
            "not strict Base64",
        ),
        (
            "missing padding",
            good.trim_end_matches('=').to_owned(),
            "not strict Base64",
        ),
        ("leading blank", format!(" {good}"), "not strict Base64"),
        (
            "inner line break",
            format!("{}\n{}", &good[..12], &good[12..]),
            "not strict Base64",
        ),
        ("all zero", B64.encode([0u8; 16]), "all zero"),
    ];
    for (i, (what, irk, message)) in cases.into_iter().enumerate() {
        let work = tempfile::tempdir().unwrap();
        let (pool, names) = pool(work.path(), 1, 100 + i as u64);
        std::fs::write(pool.join(&names[0]).join(IRK_FILE), &irk).unwrap();
        let (code, outcome, stderr) = provision(&pool, work.path());
        assert_eq!(code, 1, "{what}: {outcome:#} {stderr}");
        assert_eq!(outcome["result"], "FAIL", "{what}");
        assert_stopped_before_scp03(&outcome);
        let error = outcome["error"].as_str().unwrap();
        assert!(
            error.contains(&names[0]),
            "{what}: package not named: {error}"
        );
        assert!(error.contains(IRK_FILE), "{what}: file not named: {error}");
        assert!(error.contains("rule"), "{what}: rule not named: {error}");
        assert!(error.contains(message), "{what}: {error}");
    }
}

#[test]
fn an_irk_personalized_once_is_refused_in_another_package_and_never_stored() {
    let work = tempfile::tempdir().unwrap();
    let (pool, names) = pool(work.path(), 2, 77);
    // The second package carries the first one's IRK.
    let irk_text = std::fs::read(pool.join(&names[0]).join(IRK_FILE)).unwrap();
    std::fs::write(pool.join(&names[1]).join(IRK_FILE), &irk_text).unwrap();
    let irk = B64.decode(irk_text.trim_ascii()).unwrap();
    assert_eq!(irk.len(), 16);

    let (code, first, stderr) = provision(&pool, work.path());
    assert_eq!(code, 0, "{first:#} {stderr}");
    assert_eq!(first["origin"], names[0].as_str());
    let fingerprint = first["audit"]["irk_fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(fingerprint.len(), 32, "16 bytes as hex");
    assert!(fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));

    // The next fob (a new virtual fob) is handed the second package.
    let (code, second, stderr) = provision(&pool, work.path());
    assert_eq!(code, 1, "{second:#} {stderr}");
    assert_stopped_before_scp03(&second);
    let error = second["error"].as_str().unwrap();
    assert!(error.contains("already personalized"), "{error}");
    assert!(error.contains(&names[1]), "{error}");
    assert!(error.contains("rule"), "{error}");
    assert_eq!(second["audit"]["irk_fingerprint"], fingerprint.as_str());

    // The journal holds the fingerprint in the SUCCESS outcome, never the IRK.
    let db = rusqlite::Connection::open_with_flags(
        work.path().join("j.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let bodies: Vec<String> = db
        .prepare("SELECT body FROM records WHERE kind = 'outcome' ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(bodies.len(), 2);
    let success: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(success["overall_result"], "SUCCESS");
    assert_eq!(success["irk_fingerprint"], fingerprint.as_str());
    drop(db);
    let irk_forms = [
        irk.clone(),
        hex::encode_upper(&irk).into_bytes(),
        hex::encode(&irk).into_bytes(),
        irk_text.trim_ascii().to_vec(),
    ];
    let mut scanned = 0;
    for entry in std::fs::read_dir(work.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("j.db") || name.ends_with(".key") {
            continue;
        }
        let raw = std::fs::read(&path).unwrap();
        scanned += 1;
        for form in &irk_forms {
            assert!(
                !raw.windows(form.len()).any(|w| w == form.as_slice()),
                "IRK bytes found in {name}"
            );
        }
    }
    assert!(scanned >= 1, "no journal file scanned");

    // The journal with the new field still verifies.
    let out = station()
        .args(["audit", "verify", "--journal", "j.db"])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `provision --sim --sim-uid UID --source dev` with journal `j.db` in `dir`.
fn provision_uid(dir: &Path, uid: &str, extra: &[&str]) -> (i32, Value) {
    let (code, json, _) = json_outcome(
        station_in(dir)
            .args(["provision", "--sim", "--sim-uid", uid, "--source", "dev"])
            .args(["--journal", "j.db", "--json"])
            .args(extra),
    );
    (code, json)
}

#[test]
fn a_fob_already_personalized_is_refused_before_its_keys_unless_repersonalized() {
    let dir = tempfile::tempdir().unwrap();
    let uid = "04C1C2C3C4C5C6";
    let (code, first) = provision_uid(dir.path(), uid, &[]);
    assert_eq!(code, 0, "{first}");

    let (code, again) = provision_uid(dir.path(), uid, &[]);
    assert_eq!(code, 1, "{again}");
    assert_eq!(again["result"], "FAIL", "{again}");
    assert_eq!(again["stage"], "ReadUid", "{again}");
    let reason = again["error"].as_str().unwrap();
    let want = format!(
        "fob already personalized: IC serial 4790-D321-C1C2-C3C4C5C6 passed at {} on reader \
         (not recorded) (journal record 2); set it aside, or give --repersonalize to \
         personalize it again",
        first_time(dir.path())
    );
    assert!(reason.ends_with(&want), "{reason}\nwant …{want}");
    // Nothing but the identity was read: no key fetch, no SCP03.
    assert_eq!(again["retry"], "safe", "{again}");
    assert_eq!(again["origin"], Value::Null, "{again}");
    let sent: Vec<&str> = again["audit"]["apdu_trace"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["direction"] == "TX")
        .map(|e| e["apdu_hex"].as_str().unwrap())
        .collect();
    assert_eq!(
        sent,
        ["FFCA000000", "00A4040008A00000015100000000", "80CA9F7F00"]
    );

    // Another fob passes; the same one passes with --repersonalize.
    assert_eq!(provision_uid(dir.path(), "04D1D2D3D4D5D6", &[]).0, 0);
    let (code, forced) = provision_uid(dir.path(), uid, &["--repersonalize"]);
    assert_eq!(code, 0, "{forced}");
}

/// The start time of the first fob of the journal `j.db` in `dir`.
fn first_time(dir: &Path) -> String {
    let out = station()
        .args(["audit", "export", "--format", "json", "--journal", "j.db"])
        .current_dir(dir)
        .output()
        .unwrap();
    let records: Value = serde_json::from_slice(&out.stdout).unwrap();
    records[1]["body"]["timestamp_iso8601"]
        .as_str()
        .unwrap()
        .to_string()
}
