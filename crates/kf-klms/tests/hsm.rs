#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The master key in a PKCS#11 token (SoftHSM2, one throwaway token directory
//! per test, `SOFTHSM2_CONF` pointing at it): KDF3 through the token equals
//! the file key and the published vectors, the key object is sensitive and
//! not extractable, `hsm init` refuses an existing label, PIN and module
//! errors are clear, and a server on the token issues packages over mutual
//! TLS, answers 503 while the token is gone and recovers without a restart.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptoki::object::{Attribute, AttributeType};
use cryptoki::session::UserType;
use kf_crypto::AesKey;
use kf_klms::keystore::pkcs11::{find_slot, key_template, load_module};
use kf_klms::keystore::{FileKey, HsmConfig, KeyBackend, TokenSelector};
use kf_klms::pki::DevPki;
use serde_json::Value;

/// Debian's SoftHSM2 module (package `softhsm2`, installed by scripts/setup-deps.sh).
const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "73914466";
const TOKEN: &str = "kf-klms-test";

fn vectors() -> Value {
    serde_json::from_str(include_str!(
        "../../kf-crypto/tests/data/crypto-vectors.json"
    ))
    .unwrap()
}

/// A SoftHSM2 configuration with its own token directory and one initialized token.
struct Token {
    dir: tempfile::TempDir,
}

impl Token {
    fn new() -> Token {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        let token = Token { dir };
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", token.conf())
            .args(["--init-token", "--free", "--label", TOKEN])
            .args(["--so-pin", "12345678", "--pin", PIN])
            .output()
            .expect("softhsm2-util (Debian package softhsm2) is installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        token
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    fn tokens(&self) -> PathBuf {
        self.dir.path().join("tokens")
    }

    /// `kf-klms` with this token's configuration and the PIN in `KF_TEST_PIN`.
    fn kf_klms(&self, pin: &str) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kf-klms"));
        c.env("SOFTHSM2_CONF", self.conf())
            .env("KF_TEST_PIN", pin)
            .env("RUST_BACKTRACE", "0")
            .env_remove("KF_KLMS_MASTER_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// A development PKI in `pki/` whose klms.toml has an `[hsm]` section.
    fn klms_dir(&self, hsm_toml: &str) -> PathBuf {
        let dir = self.dir.path().join("pki");
        let out = self
            .kf_klms(PIN)
            .args(["pki", "init"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config = dir.join("klms.toml");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str("\n[hsm]\n");
        text.push_str(hsm_toml);
        std::fs::write(&config, text).unwrap();
        dir
    }
}

fn hsm_toml(key_label: &str, module: &str) -> String {
    format!(
        "module = \"{module}\"\ntoken_label = \"{TOKEN}\"\nkey_label = \"{key_label}\"\npin_env = \"KF_TEST_PIN\"\n"
    )
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn hsm_init(token: &Token, dir: &Path, pin: &str, extra: &[&str]) -> Output {
    token
        .kf_klms(pin)
        .args(["hsm", "init", "--config"])
        .arg(dir.join("klms.toml"))
        .args(extra)
        .output()
        .unwrap()
}

/// KCV printed by `hsm init`.
fn printed_kcv(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .split("KCV ")
        .nth(1)
        .unwrap_or_else(|| panic!("no KCV in {stdout:?}"))
        .trim()
        .to_owned()
}

fn client(pki: &DevPki) -> reqwest::blocking::Client {
    let (_, s) = &pki.stations[0];
    let identity = format!("{}{}", s.cert_pem, s.key_pem);
    common::https_client(&pki.ca.cert_pem, Some(&identity), Duration::from_secs(10))
}

fn issue(http: &reqwest::blocking::Client, base: &str, uid: &str) -> (u16, Value) {
    common::request_package(http, base, uid, "reader-1")
}

fn hex_keys(keys: &kf_crypto::StaticKeys) -> [String; 3] {
    [&keys.enc, &keys.mac, &keys.dek].map(|k| hex::encode_upper(k.expose_secret()))
}

/// The only test that loads the module into this process (a PKCS#11 module
/// is initialized once per process, with the `SOFTHSM2_CONF` of that moment).
#[test]
fn token_kdf3_equals_file_key_and_vectors_and_serves_over_mtls() {
    let token = Token::new();
    std::env::set_var("SOFTHSM2_CONF", token.conf());
    let v = vectors()["nxp_kdf3_project_layout"].clone();
    let master = AesKey::from_hex(v["master_key"].as_str().unwrap()).unwrap();
    let dir = token.klms_dir(&hsm_toml("imported", MODULE));
    std::fs::write(
        dir.join("vector-master.hex"),
        v["master_key"].as_str().unwrap(),
    )
    .unwrap();

    // Import the vector master key; its KCV is the one of the file key.
    let out = hsm_init(
        &token,
        &dir,
        PIN,
        &[
            "--import-key-file",
            dir.join("vector-master.hex").to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(printed_kcv(&out), hex::encode_upper(master.kcv()));
    // The label exists now: a second init (generate or import) is refused.
    let again = hsm_init(&token, &dir, PIN, &[]);
    assert!(!again.status.success());
    assert!(
        text(&again).contains("refusing to overwrite"),
        "{}",
        text(&again)
    );
    // A generated AES-256 key under another label.
    let config = dir.join("klms.toml");
    let toml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, toml.replace("\"imported\"", "\"generated\"")).unwrap();
    let generated = hsm_init(&token, &dir, PIN, &["--bits", "256"]);
    assert!(generated.status.success(), "{}", text(&generated));
    assert_eq!(printed_kcv(&generated).len(), 6);
    assert!(!text(&generated).contains(PIN));

    // Attributes, read through the module by this test itself.
    let ctx = load_module(Path::new(MODULE)).unwrap();
    let slot = find_slot(&ctx, &TokenSelector::Label(TOKEN.into())).unwrap();
    let session = ctx.open_ro_session(slot).unwrap();
    session
        .login(UserType::User, Some(&PIN.to_owned().into()))
        .unwrap();
    for (label, generated) in [("imported", false), ("generated", true)] {
        let found = session.find_objects(&key_template(label)).unwrap();
        assert_eq!(found.len(), 1, "{label}");
        let attrs = session
            .get_attributes(
                found[0],
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::NeverExtractable,
                    AttributeType::Encrypt,
                    AttributeType::Sign,
                    AttributeType::Token,
                    AttributeType::Private,
                ],
            )
            .unwrap();
        for a in &attrs {
            match a {
                Attribute::Sensitive(b) => assert!(*b, "{label} sensitive"),
                Attribute::Extractable(b) => assert!(!*b, "{label} extractable"),
                Attribute::NeverExtractable(b) => assert_eq!(*b, generated, "{label}"),
                Attribute::Encrypt(b) => assert!(!*b, "{label} encrypt"),
                Attribute::Sign(b) | Attribute::Token(b) | Attribute::Private(b) => {
                    assert!(*b, "{label} {a:?}")
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        // The value itself cannot be read.
        let value = session.get_attributes(found[0], &[AttributeType::Value]);
        assert!(
            !matches!(&value, Ok(a) if a.iter().any(|a| matches!(a, Attribute::Value(_)))),
            "{label}: key value readable: {value:?}"
        );
    }

    // KDF3 in the token == file key == published vectors.
    let hsm: HsmConfig = toml::from_str(&hsm_toml("imported", MODULE)).unwrap();
    std::env::set_var("KF_TEST_PIN", PIN);
    let backend = Arc::new(hsm.open(&dir).unwrap());
    assert!(backend.describe().contains("\"imported\""));
    assert!(!backend.describe().contains(PIN));
    let file = FileKey::new(master.duplicate());
    let uid = hex::decode(v["uid"].as_str().unwrap()).unwrap();
    let expected = [
        v["keys"]["enc_label_00000001"].as_str().unwrap(),
        v["keys"]["mac_label_00000002"].as_str().unwrap(),
        v["keys"]["dek_label_00000003"].as_str().unwrap(),
    ];
    assert_eq!(hex_keys(&backend.diversify(&uid).unwrap()), expected);
    assert_eq!(hex_keys(&file.diversify(&uid).unwrap()), expected);
    for n in 0u8..32 {
        let uid: Vec<u8> = (0..10u8)
            .map(|i| i.wrapping_mul(37) ^ n.wrapping_mul(101))
            .collect();
        assert_eq!(
            hex_keys(&backend.diversify(&uid).unwrap()),
            hex_keys(&file.diversify(&uid).unwrap()),
            "uid {}",
            hex::encode(&uid)
        );
    }
    // The receipt key derives through the token and is stable.
    assert_eq!(
        *backend.receipt_seed(0).unwrap(),
        *backend.receipt_seed(0).unwrap()
    );
    // The generated AES-256 key never left the token, so there is no software
    // reference for it: its derivations are checked for length and distinctness.
    let hsm256: HsmConfig = toml::from_str(&hsm_toml("generated", MODULE)).unwrap();
    let keys256 = hex_keys(&hsm256.open(&dir).unwrap().diversify(&uid).unwrap());
    assert!(keys256.iter().all(|k| k.len() == 64));
    assert!(keys256[0] != keys256[1] && keys256[1] != keys256[2]);

    // A server on the token issues the vector keys over mutual TLS.
    let pki = DevPki::generate("HSM Test CA", &["station-01"]).unwrap();
    let mut config = kf_klms::KlmsConfig::dev(
        &pki,
        token.dir.path().join("ledger.db"),
        AesKey::from_slice(&[0x55; 16]).unwrap(),
    )
    .unwrap();
    config.key = backend.clone();
    let server = kf_klms::spawn_server(config).unwrap();
    let base = server.base_url();
    let http = client(&pki);
    let (status, body) = issue(&http, &base, v["uid"].as_str().unwrap());
    assert_eq!(status, 200, "{body}");
    let got = &body["scp03_static_keys"];
    assert_eq!(
        [
            got["enc"].as_str().unwrap(),
            got["mac"].as_str().unwrap(),
            got["dek"].as_str().unwrap()
        ],
        expected
    );

    // Logged out behind the server's back: the next request logs in again.
    session.logout().unwrap();
    drop(session);
    let (status, body) = issue(&http, &base, "04000000000000000001");
    assert_eq!(status, 200, "after logout: {body}");

    // Token gone: 503 with a clear message; back: issuance resumes, no restart.
    let away = token.dir.path().join("tokens.away");
    std::fs::rename(token.tokens(), &away).unwrap();
    let (status, body) = issue(&http, &base, "04000000000000000002");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "key_store_unavailable", "{body}");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("key store unavailable"));
    std::fs::rename(&away, token.tokens()).unwrap();
    let (status, body) = issue(&http, &base, "04000000000000000002");
    assert_eq!(status, 200, "after the token came back: {body}");
    let keys = &body["scp03_static_keys"];
    let uid2 = hex::decode("04000000000000000002").unwrap();
    assert_eq!(
        keys["enc"].as_str().unwrap(),
        hex_keys(&file.diversify(&uid2).unwrap())[0]
    );
    server.shutdown();
}

/// `serve` and `hsm init` with a wrong PIN, a missing module, a PIN file
/// readable by others or an unset PIN variable: clear errors, no PIN in them.
#[test]
fn pin_and_module_errors_are_clear() {
    let token = Token::new();
    let dir = token.klms_dir(&hsm_toml("master", MODULE));
    let config = dir.join("klms.toml");
    let out = hsm_init(&token, &dir, PIN, &[]);
    assert!(out.status.success(), "{}", text(&out));

    let serve = |pin: &str, config: &Path| {
        token
            .kf_klms(pin)
            .args(["serve", "--bind", "127.0.0.1:0", "--config"])
            .arg(config)
            .output()
            .unwrap()
    };
    let wrong = serve("00000000", &config);
    assert!(!wrong.status.success());
    assert!(
        text(&wrong).contains("PIN was rejected"),
        "{}",
        text(&wrong)
    );
    assert!(!text(&wrong).contains("00000000"));
    let wrong_init = hsm_init(&token, &dir, "00000000", &[]);
    assert!(
        text(&wrong_init).contains("PinIncorrect"),
        "{}",
        text(&wrong_init)
    );

    let base = std::fs::read_to_string(&config).unwrap();
    let variant = |name: &str, from: &str, to: &str| {
        let path = dir.join(name);
        std::fs::write(&path, base.replace(from, to)).unwrap();
        path
    };
    let missing = variant("missing.toml", MODULE, "/nonexistent/libpkcs11.so");
    let out = serve(PIN, &missing);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("PKCS#11 module /nonexistent/libpkcs11.so not found"),
        "{}",
        text(&out)
    );
    let not_a_module = variant("bad-module.toml", MODULE, config.to_str().unwrap());
    let out = serve(PIN, &not_a_module);
    assert!(text(&out).contains("could not be loaded"), "{}", text(&out));

    let no_key = variant(
        "no-key.toml",
        "key_label = \"master\"",
        "key_label = \"absent\"",
    );
    let out = serve(PIN, &no_key);
    assert!(
        text(&out).contains("no AES key labelled \"absent\""),
        "{}",
        text(&out)
    );

    let unset = variant("unset.toml", "KF_TEST_PIN", "KF_TEST_PIN_UNSET");
    let out = serve(PIN, &unset);
    assert!(
        text(&out).contains("KF_TEST_PIN_UNSET is not set"),
        "{}",
        text(&out)
    );

    // PIN file: 0644 refused, 0600 accepted (server starts and logs the backend).
    let pin_file = dir.join("hsm.pin");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let by_file = variant(
        "pin-file.toml",
        "pin_env = \"KF_TEST_PIN\"",
        "pin_file = \"hsm.pin\"",
    );
    let out = serve("", &by_file);
    assert!(text(&out).contains("chmod 600"), "{}", text(&out));
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut child = token
        .kf_klms("")
        .args(["serve", "--bind", "127.0.0.1:0", "--config"])
        .arg(&by_file)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut log = String::new();
    while !log.contains("listening") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                log.push_str(&line);
                log.push('\n');
            }
            Err(_) => {
                child.kill().unwrap();
                panic!("server did not start: {log}");
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        log.contains("PKCS#11 module /usr/lib/softhsm/libsofthsm2.so"),
        "{log}"
    );
    assert!(log.contains("key \"master\""), "{log}");
    assert!(!log.contains(PIN), "{log}");
}
