//! Test builds only (feature `test-hooks`, never in a default, factory or release build):
//! hands the secrets scan every secret a run used, so that it searches the run's output
//! for the secrets themselves, generated ones included, not for what a test could guess.
//!
//! With `KF_STATION_TEST_SECRETS=FILE`, each fob's static ENC/MAC/DEK, clear private
//! scalar and BLE IRK are appended to FILE as lines `UID LABEL HEX`.
//!
//! With `KF_STATION_TEST_STALL_MS=MS`, the station waits MS milliseconds once a fob's key
//! package is in hand, before the first card command that uses it: a package with a shorter
//! time to live expires right there.

use std::io::Write;

use kf_source::{PrivateKeyMaterial, ProvisioningInput};

/// The variable naming the file the secrets go to.
pub const SECRETS_FILE_ENV: &str = "KF_STATION_TEST_SECRETS";

/// Appends `input`'s secrets to the file `KF_STATION_TEST_SECRETS` names, if set.
pub fn record_secrets(input: &ProvisioningInput) -> std::io::Result<()> {
    let Some(path) = std::env::var_os(SECRETS_FILE_ENV) else {
        return Ok(());
    };
    let uid = hex::encode_upper(&input.fob_uid);
    let keys = &input.card_keys.keys;
    let mut lines = vec![
        ("ENC", keys.enc.expose_secret().to_vec()),
        ("MAC", keys.mac.expose_secret().to_vec()),
        ("DEK", keys.dek.expose_secret().to_vec()),
        ("IRK", input.items.ble_irk.expose_secret().to_vec()),
    ];
    if let PrivateKeyMaterial::Scalar(scalar) = &input.items.private_key {
        lines.push(("SCALAR", scalar.expose_secret().to_vec()));
    }
    let mut text = String::new();
    for (label, bytes) in lines {
        text.push_str(&format!("{uid} {label} {}\n", hex::encode_upper(bytes)));
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(text.as_bytes())
}

/// The variable naming the wait after each key fetch, in milliseconds.
pub const STALL_ENV: &str = "KF_STATION_TEST_STALL_MS";

/// Waits as long as `KF_STATION_TEST_STALL_MS` says, if set.
pub fn stall_after_fetch() -> std::io::Result<()> {
    let Some(ms) = std::env::var_os(STALL_ENV) else {
        return Ok(());
    };
    let ms: u64 = ms.to_string_lossy().parse().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{STALL_ENV} must be a number of milliseconds"),
        )
    })?;
    std::thread::sleep(std::time::Duration::from_millis(ms));
    Ok(())
}
