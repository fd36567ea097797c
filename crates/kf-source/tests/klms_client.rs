#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! KLMS client against the reference KLMS (real mutual TLS on 127.0.0.1) and
//! against a scripted TLS server for hostile responses.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kf_klms::pki::DevPki;
use kf_klms::{spawn_server, KlmsConfig, ServerHandle};
use kf_source::klms::{KlmsClient, KlmsClientConfig, KlmsError};
use zeroize::Zeroizing;

const MASTER: [u8; 16] = [0x2B; 16];
const UID: [u8; 10] = [0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99];

struct Fixture {
    dir: tempfile::TempDir,
    pki: DevPki,
    server: Option<ServerHandle>,
}

fn config(pki: &DevPki, dir: &std::path::Path, ttl: Duration) -> KlmsConfig {
    let mut c = KlmsConfig::dev(
        pki,
        dir.join("ledger.db"),
        kf_crypto::AesKey::from_slice(&MASTER).unwrap(),
    )
    .unwrap();
    c.allowed_stations = vec!["station-01".into()];
    c.ttl = ttl;
    c
}

fn start(ttl: Duration) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let pki = DevPki::generate("Test Station CA", &["station-01", "station-99"]).unwrap();
    let server = spawn_server(config(&pki, dir.path(), ttl)).unwrap();
    Fixture {
        dir,
        pki,
        server: Some(server),
    }
}

fn identity(pki: &DevPki, cn: &str) -> Zeroizing<Vec<u8>> {
    let (_, s) = pki.stations.iter().find(|(n, _)| n == cn).unwrap();
    Zeroizing::new(format!("{}{}", s.cert_pem, s.key_pem).into_bytes())
}

fn client_for(base_url: &str, ca_pem: &str, identity: Zeroizing<Vec<u8>>) -> KlmsClient {
    let mut cfg = KlmsClientConfig::new(base_url, ca_pem.as_bytes().to_vec(), identity);
    cfg.initial_backoff = Duration::from_millis(20);
    cfg.request_timeout = Duration::from_secs(5);
    KlmsClient::new(cfg).unwrap()
}

/// The error of fetching the test fob's package from `base_url`, trusting
/// `ca_pem` and presenting `identity`.
fn fetch_refused(base_url: &str, ca_pem: &str, identity: Zeroizing<Vec<u8>>) -> KlmsError {
    client_for(base_url, ca_pem, identity)
        .fetch_key_package(&UID, "R1")
        .unwrap_err()
}

impl Fixture {
    fn base_url(&self) -> String {
        self.server.as_ref().unwrap().base_url()
    }
    fn client(&self) -> KlmsClient {
        client_for(
            &self.base_url(),
            &self.pki.ca.cert_pem,
            identity(&self.pki, "station-01"),
        )
    }
    /// A fetch from this server that fails: the client pins the CA of
    /// `pinned` and presents the certificate `cn` issued by `issuer`.
    fn refused(&self, pinned: &DevPki, issuer: &DevPki, cn: &str) -> KlmsError {
        fetch_refused(&self.base_url(), &pinned.ca.cert_pem, identity(issuer, cn))
    }
}

#[test]
fn fetches_a_validated_package_with_diversified_keys() {
    // A TTL no slow machine runs out of between the fetch and the checks below.
    let f = start(Duration::from_secs(600));
    let pkg = f
        .client()
        .fetch_key_package(&UID, "LINE_04_READER_01")
        .unwrap();
    let expected = kf_crypto::kdf::diversify_static_keys(
        &kf_crypto::AesKey::from_slice(&MASTER).unwrap(),
        &UID,
    )
    .unwrap();
    assert_eq!(pkg.static_keys(), &expected);
    assert_eq!(pkg.fob_uid(), UID);
    assert_eq!(pkg.key_version(), 1);
    assert_eq!(pkg.dgis().len(), 6);
    pkg.ensure_fresh().unwrap();
    assert!(pkg.remaining() > Duration::from_secs(300));
    let a003 = pkg.dgis().iter().find(|d| d.tag() == 0xA003).unwrap();
    assert!(a003.encrypted);
    let scalar = kf_crypto::cbc::decrypt_m2(&expected.dek, &[0; 16], &a003.data).unwrap();
    assert_eq!(scalar.len(), 32);
    // Debug output carries no key or scalar bytes.
    let debug = format!("{pkg:?}");
    for secret in [
        expected.enc.expose_secret(),
        expected.mac.expose_secret(),
        expected.dek.expose_secret(),
        &scalar[..],
    ] {
        assert!(!debug.contains(&hex::encode_upper(secret)), "{debug}");
        assert!(!debug.contains(&hex::encode(secret)), "{debug}");
    }
    let irk = pkg.dgis().iter().find(|d| d.tag() == 0xA006).unwrap();
    assert!(!debug.contains(&hex::encode_upper(&irk.data[..])));
    f.client().health().unwrap();
}

#[test]
fn second_issuance_is_refused() {
    let f = start(Duration::from_secs(600));
    let c = f.client();
    c.fetch_key_package(&UID, "R1").unwrap();
    let err = c.fetch_key_package(&UID, "R1").unwrap_err();
    assert!(matches!(err, KlmsError::AlreadyIssued { .. }), "{err:?}");
    assert!(!err.is_transient());
    // An operator re-issue lets exactly one more through.
    let mut ledger = kf_klms::ledger::Ledger::open(f.dir.path().join("ledger.db")).unwrap();
    ledger
        .record_reissue(
            &hex::encode_upper(UID),
            &kf_klms::ledger::OperatorAction::new("fob replaced", "test", 0),
        )
        .unwrap();
    c.fetch_key_package(&UID, "R1").unwrap();
    assert!(matches!(
        c.fetch_key_package(&UID, "R1"),
        Err(KlmsError::AlreadyIssued { .. })
    ));
}

#[test]
fn expired_package_is_refused() {
    let ttl = Duration::from_secs(60);
    let f = start(ttl);
    let pkg = f.client().fetch_key_package(&UID, "R1").unwrap();
    pkg.ensure_fresh().unwrap();
    assert!(pkg.remaining() <= ttl && pkg.remaining() > Duration::ZERO);
    // Past the TTL by the monotonic clock, or by the wall clock alone.
    let (now, wall) = (Instant::now(), time::OffsetDateTime::now_utc());
    let later = ttl + Duration::from_secs(1);
    assert!(matches!(
        pkg.ensure_fresh_at(now + later, wall),
        Err(KlmsError::Expired { .. })
    ));
    assert!(matches!(
        pkg.ensure_fresh_at(now, wall + later),
        Err(KlmsError::Expired { .. })
    ));
    pkg.ensure_fresh_at(now, wall).unwrap();
    assert_eq!(pkg.remaining_at(now + later), Duration::ZERO);

    // A package that is already expired on arrival is never returned.
    let g = {
        let dir = tempfile::tempdir().unwrap();
        let pki = DevPki::generate("CA", &["station-01"]).unwrap();
        let server = spawn_server(config(&pki, dir.path(), Duration::ZERO)).unwrap();
        Fixture {
            dir,
            pki,
            server: Some(server),
        }
    };
    let err = g.client().fetch_key_package(&UID, "R1").unwrap_err();
    assert!(matches!(err, KlmsError::Expired { .. }), "{err:?}");
}

#[test]
fn unlisted_station_is_forbidden() {
    let f = start(Duration::from_secs(5));
    let err = f.refused(&f.pki, &f.pki, "station-99");
    assert!(matches!(err, KlmsError::Forbidden { .. }), "{err:?}");
}

#[test]
fn server_certificate_from_another_ca_is_refused() {
    let f = start(Duration::from_secs(5));
    let other = DevPki::generate("Other CA", &["station-01"]).unwrap();
    // Pinned to a CA that did not issue the server certificate.
    let err = f.refused(&other, &f.pki, "station-01");
    assert!(matches!(err, KlmsError::Unreachable { .. }), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    // And the fob's package was never issued: the right CA still gets it.
    f.client().fetch_key_package(&UID, "R1").unwrap();
}

#[test]
fn client_certificate_from_another_ca_is_refused_by_the_server() {
    let f = start(Duration::from_secs(5));
    let other = DevPki::generate("Other CA", &["station-01"]).unwrap();
    let err = f.refused(&f.pki, &other, "station-01");
    assert!(matches!(err, KlmsError::Unreachable { .. }), "{err:?}");
}

#[test]
fn klms_down_gives_a_clear_error_after_bounded_retries() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pki = DevPki::generate("CA", &["station-01"]).unwrap();
    let err = fetch_refused(
        &format!("https://127.0.0.1:{port}"),
        &pki.ca.cert_pem,
        identity(&pki, "station-01"),
    );
    match &err {
        KlmsError::Unreachable { attempts, url, .. } => {
            assert_eq!(*attempts, 3);
            assert!(url.contains(&port.to_string()));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.is_transient());
}

// ---------- scripted TLS server for hostile responses ----------

struct Scripted {
    base_url: String,
    ca_pem: String,
    identity: Zeroizing<Vec<u8>>,
    connections: Arc<AtomicUsize>,
}

/// Serves one scripted response per connection: `responses[i]` for the i-th
/// connection (the last one repeats). Each is (status line, body, delay).
fn scripted(responses: Vec<(&'static str, Vec<u8>, Duration)>) -> Scripted {
    let pki = DevPki::generate("Scripted CA", &["station-01"]).unwrap();
    let tls = kf_klms::tls::server_config(&kf_klms::tls::TlsMaterial {
        client_ca_pem: pki.ca.cert_pem.clone(),
        server_cert_pem: pki.server.cert_pem.clone(),
        server_key_pem: pki.server.key_pem.clone(),
    })
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(tcp) = stream else { return };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let (status, body, delay) = responses[n.min(responses.len() - 1)].clone();
            let tls = Arc::clone(&tls);
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(tls).unwrap();
                let mut s = rustls::StreamOwned::new(conn, tcp);
                let mut buf = [0u8; 4096];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(k) => seen.extend_from_slice(&buf[..k]),
                    }
                }
                std::thread::sleep(delay);
                let head = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                // A client that timed out has hung up: write errors are part
                // of the scripted cases, and the client's side is what is tested.
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(&body);
                let _ = s.flush();
                s.conn.send_close_notify();
                let _ = s.flush();
            });
        }
    });
    let identity = identity(&pki, "station-01");
    Scripted {
        base_url: format!("https://{addr}"),
        ca_pem: pki.ca.cert_pem.clone(),
        identity,
        connections,
    }
}

fn scripted_client(s: &Scripted, timeout: Duration) -> KlmsClient {
    let mut cfg = KlmsClientConfig::new(
        &s.base_url,
        s.ca_pem.as_bytes().to_vec(),
        s.identity.clone(),
    );
    cfg.initial_backoff = Duration::from_millis(10);
    cfg.request_timeout = timeout;
    KlmsClient::new(cfg).unwrap()
}

/// A response the client accepts (built with the reference server's encoding).
fn valid_body() -> serde_json::Value {
    let f = start(Duration::from_secs(60));
    let c = f.client();
    // Fetch through the real server to get a realistic body, then re-serialize.
    let pkg = c.fetch_key_package(&UID, "R1").unwrap();
    let dgis: Vec<serde_json::Value> = pkg
        .dgis()
        .iter()
        .map(|d| serde_json::json!({"tag": format!("{:04X}", d.tag()), "data_hex": hex::encode_upper(&d.data[..]), "encrypted": d.encrypted}))
        .collect();
    let expires = time::OffsetDateTime::now_utc() + time::Duration::seconds(60);
    serde_json::json!({
        "transaction_id": pkg.transaction_id(),
        "fob_uid": hex::encode_upper(UID),
        "key_version": 3,
        "scp03_static_keys": {
            "enc": hex::encode_upper(pkg.static_keys().enc.expose_secret()),
            "mac": hex::encode_upper(pkg.static_keys().mac.expose_secret()),
            "dek": hex::encode_upper(pkg.static_keys().dek.expose_secret()),
        },
        "ford_payload": {"apdu_cla_ins_p1_p2": "80E20000", "data_hex": hex::encode_upper(&pkg.ford_payload().data[..])},
        "personalization_dgis": dgis,
        "expires_at": expires.format(&time::format_description::well_known::Rfc3339).unwrap(),
    })
}

fn fetch_with_body(body: &serde_json::Value) -> Result<kf_source::klms::KeyPackage, KlmsError> {
    let s = scripted(vec![(
        "200 OK",
        body.to_string().into_bytes(),
        Duration::ZERO,
    )]);
    scripted_client(&s, Duration::from_secs(5)).fetch_key_package(&UID, "R1")
}

type Mutation = Box<dyn Fn(&mut serde_json::Value)>;

/// A mutation that replaces the value at JSON pointer `at` (which must exist).
fn set(at: &'static str, value: impl Into<serde_json::Value>) -> Mutation {
    let value = value.into();
    Box::new(move |v| *v.pointer_mut(at).unwrap_or_else(|| panic!("no {at}")) = value.clone())
}

#[test]
fn hostile_responses_are_rejected() {
    let valid = valid_body();
    let pkg = fetch_with_body(&valid).unwrap();
    assert_eq!(pkg.key_version(), 3);

    let secret_enc = valid["scp03_static_keys"]["enc"]
        .as_str()
        .unwrap()
        .to_owned();
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "missing field",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("expires_at");
            }),
        ),
        (
            "unknown field",
            Box::new(|v| {
                v["debug"] = serde_json::json!(true);
            }),
        ),
        (
            "unknown nested field",
            Box::new(|v| {
                v["scp03_static_keys"]["kek"] = serde_json::json!("00");
            }),
        ),
        (
            "odd-length hex key",
            Box::new(|v| {
                let k = v["scp03_static_keys"]["enc"].as_str().unwrap()[1..].to_owned();
                v["scp03_static_keys"]["enc"] = k.into();
            }),
        ),
        (
            "15-byte key",
            Box::new(|v| {
                let k = v["scp03_static_keys"]["mac"].as_str().unwrap()[2..].to_owned();
                v["scp03_static_keys"]["mac"] = k.into();
            }),
        ),
        (
            "mixed key lengths",
            set("/scp03_static_keys/dek", "00".repeat(24)),
        ),
        ("key_version 0", set("/key_version", 0)),
        ("key_version 256", set("/key_version", 256)),
        ("empty transaction id", set("/transaction_id", "")),
        ("other UID", set("/fob_uid", "00112233445566778899")),
        ("expired", set("/expires_at", "2020-01-01T00:00:00Z")),
        ("bad time", set("/expires_at", "soon")),
        ("unknown DGI", set("/personalization_dgis/1/tag", "A009")),
        (
            "missing DGI",
            Box::new(|v| {
                v["personalization_dgis"].as_array_mut().unwrap().pop();
            }),
        ),
        (
            "plaintext A003",
            set("/personalization_dgis/0/encrypted", false),
        ),
        (
            "short A003",
            set("/personalization_dgis/0/data_hex", "00".repeat(32)),
        ),
        (
            "payload mismatch",
            set("/ford_payload/data_hex", "A0010100"),
        ),
        (
            "header not 4 bytes",
            set("/ford_payload/apdu_cla_ins_p1_p2", "80E200"),
        ),
        ("key as number", set("/scp03_static_keys/enc", 5)),
    ];
    for (name, mutate) in cases {
        let mut body = valid.clone();
        mutate(&mut body);
        let err = fetch_with_body(&body).expect_err(name);
        assert!(
            matches!(
                err,
                KlmsError::InvalidResponse(_) | KlmsError::Expired { .. }
            ),
            "{name}: {err:?}"
        );
        assert!(
            !err.to_string().contains(&secret_enc),
            "{name}: error leaks a key: {err}"
        );
    }

    // Not JSON at all, and a 10 MB body.
    let s = scripted(vec![("200 OK", b"<html>".to_vec(), Duration::ZERO)]);
    assert!(matches!(
        scripted_client(&s, Duration::from_secs(5)).fetch_key_package(&UID, "R1"),
        Err(KlmsError::InvalidResponse(_))
    ));
    let s = scripted(vec![(
        "200 OK",
        vec![b' '; 10 * 1024 * 1024],
        Duration::ZERO,
    )]);
    let err = scripted_client(&s, Duration::from_secs(5))
        .fetch_key_package(&UID, "R1")
        .unwrap_err();
    assert!(
        matches!(&err, KlmsError::InvalidResponse(m) if m.contains("larger than")),
        "{err:?}"
    );
}

#[test]
fn slow_klms_times_out_without_retry() {
    let s = scripted(vec![("200 OK", b"{}".to_vec(), Duration::from_secs(3))]);
    let err = scripted_client(&s, Duration::from_millis(400))
        .fetch_key_package(&UID, "R1")
        .unwrap_err();
    assert!(matches!(err, KlmsError::Timeout { .. }), "{err:?}");
    // The request may have been issued: never retried.
    assert_eq!(s.connections.load(Ordering::SeqCst), 1);
}

#[test]
fn transient_5xx_is_retried_and_4xx_is_not() {
    let valid = valid_body();
    let s = scripted(vec![
        ("503 Service Unavailable", b"{}".to_vec(), Duration::ZERO),
        ("200 OK", valid.to_string().into_bytes(), Duration::ZERO),
    ]);
    scripted_client(&s, Duration::from_secs(5))
        .fetch_key_package(&UID, "R1")
        .unwrap();
    assert_eq!(s.connections.load(Ordering::SeqCst), 2);

    let s = scripted(vec![(
        "400 Bad Request",
        br#"{"error":"invalid_json","message":"x"}"#.to_vec(),
        Duration::ZERO,
    )]);
    let err = scripted_client(&s, Duration::from_secs(5))
        .fetch_key_package(&UID, "R1")
        .unwrap_err();
    assert!(
        matches!(&err, KlmsError::Http { status: 400, code, .. } if code == "invalid_json"),
        "{err:?}"
    );
    assert_eq!(s.connections.load(Ordering::SeqCst), 1);

    let s = scripted(vec![("502 Bad Gateway", b"".to_vec(), Duration::ZERO)]);
    let err = scripted_client(&s, Duration::from_secs(5))
        .fetch_key_package(&UID, "R1")
        .unwrap_err();
    assert!(
        matches!(err, KlmsError::Http { status: 502, .. }),
        "{err:?}"
    );
    assert_eq!(s.connections.load(Ordering::SeqCst), 3);
}

#[test]
fn client_refuses_plain_http_url() {
    let pki = DevPki::generate("CA", &["station-01"]).unwrap();
    let cfg = KlmsClientConfig::new(
        "http://127.0.0.1:1",
        pki.ca.cert_pem.as_bytes().to_vec(),
        identity(&pki, "station-01"),
    );
    assert!(matches!(KlmsClient::new(cfg), Err(KlmsError::Config(_))));
}

#[test]
fn klms_source_yields_a_consistent_provisioning_input() {
    let f = start(Duration::from_secs(5));
    let source = kf_source::klms::KlmsSource::new(Arc::new(f.client()), "LINE_04_READER_01");
    let (package, input) = source.fetch(&UID).unwrap();
    assert_eq!(input.transaction_id, package.transaction_id());
    assert_eq!(input.fob_uid, UID);
    assert_eq!(input.card_keys.kvn, 1);
    assert_eq!(&input.card_keys.keys, package.static_keys());
    // The DEK-encrypted scalar decrypts to the private key of the device certificate.
    let kf_source::PrivateKeyMaterial::DekEncrypted(blob) = &input.items.private_key else {
        panic!("A003 must stay DEK-encrypted");
    };
    let plain =
        kf_crypto::cbc::decrypt_m2(&input.card_keys.keys.dek, &[0; 16], blob.expose_secret())
            .unwrap();
    let scalar = kf_source::PrivateScalar::from_bytes(&plain).unwrap();
    assert_eq!(scalar.public_key().unwrap(), input.device_public_key);
    assert_eq!(input.items.spid.as_str().len(), 40);
}

#[test]
fn klms_hands_out_container_pool_packages_once() {
    let dir = tempfile::tempdir().unwrap();
    let pool_dir = dir.path().join("pool");
    let pool = kf_source::fixtures::generate(&pool_dir, 2, Some(7)).unwrap();
    let pki = DevPki::generate("CA", &["station-01"]).unwrap();
    let mut cfg = config(&pki, dir.path(), Duration::from_secs(5));
    let content = kf_klms::container_pool::ContainerPoolContent::open(&pool_dir).unwrap();
    assert_eq!(content.remaining(), 2);
    cfg.content = Arc::new(content);
    let f = Fixture {
        server: Some(spawn_server(cfg).unwrap()),
        pki,
        dir,
    };
    let c = f.client();
    let mut spids = Vec::new();
    for i in 0..2u8 {
        let mut uid = UID;
        uid[9] = i;
        let (_, input) = kf_source::klms::KlmsSource::new(Arc::new(f.client()), "R1")
            .fetch(&uid)
            .unwrap();
        spids.push(input.items.spid.as_str().to_owned());
        let kf_source::PrivateKeyMaterial::DekEncrypted(blob) = &input.items.private_key else {
            panic!()
        };
        let plain =
            kf_crypto::cbc::decrypt_m2(&input.card_keys.keys.dek, &[0; 16], blob.expose_secret())
                .unwrap();
        let scalar = kf_source::PrivateScalar::from_bytes(&plain).unwrap();
        assert_eq!(scalar.public_key().unwrap(), input.device_public_key);
    }
    let mut expected: Vec<String> = pool
        .packages
        .iter()
        .map(|p| p.dir_name().rsplit_once('-').unwrap().1.to_uppercase())
        .collect();
    expected.sort();
    spids.sort();
    assert_eq!(spids, expected);
    let mut uid = UID;
    uid[9] = 9;
    let err = c.fetch_key_package(&uid, "R1").unwrap_err();
    assert!(
        matches!(&err, KlmsError::Http { status: 503, code, .. } if code == "no_content"),
        "{err:?}"
    );
    // Claims persist: a fresh pool over the same directory has nothing left.
    assert_eq!(
        kf_klms::container_pool::ContainerPoolContent::open(&pool_dir)
            .unwrap()
            .remaining(),
        0
    );
}

#[test]
fn key_file_holding_a_certificate_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let pki = DevPki::generate("CA", &["station-01"]).unwrap();
    let paths = pki.write_to(dir.path()).unwrap();
    // The same file given as both the certificate and the key.
    let refused = |name: &str| {
        let both = dir.path().join(name);
        kf_source::klms::KlmsClientConfig::from_pem_files(
            "https://127.0.0.1:1",
            &paths.ca_cert,
            &both,
            &both,
        )
        .err()
        .unwrap()
        .to_string()
    };
    let err = refused("station-01.pem");
    assert!(
        err.contains("station-01.pem: no private key in this PEM file (found: CERTIFICATE)"),
        "{err}"
    );
    let err = refused("station-01.key");
    assert!(
        err.contains("no certificate in this PEM file (found: PRIVATE KEY)"),
        "{err}"
    );
}
