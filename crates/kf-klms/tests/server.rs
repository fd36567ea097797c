#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Reference KLMS over real mutual TLS on 127.0.0.1: handshake refusals,
//! allow-list, strict and hostile request bodies, one-time issuance, audit ingest.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod common;

use kf_klms::clock::Clock;
use kf_klms::pki::DevPki;
use kf_klms::{spawn_server, KlmsConfig, ServerHandle};
use reqwest::blocking::Client;
use serde_json::json;

const MASTER: [u8; 16] = [0x11; 16];
const UID: &str = "04112233445566778899";

struct Fixture {
    _dir: tempfile::TempDir,
    pki: DevPki,
    server: ServerHandle,
    /// How far the server's clock runs ahead of the system clock, in ms.
    ahead_ms: Arc<AtomicI64>,
}

/// Key-package lifetime of the tests that move the server's clock past it.
const TTL: Duration = Duration::from_secs(60);

impl Fixture {
    /// Moves the server's clock forward.
    fn advance(&self, by: Duration) {
        self.ahead_ms
            .fetch_add(i64::try_from(by.as_millis()).unwrap(), Ordering::SeqCst);
    }

    /// Moves the server's clock past the package's `expires_at`.
    fn expire(&self, pkg: &serde_json::Value) {
        let expires = time::OffsetDateTime::parse(
            pkg["expires_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let server_now = time::OffsetDateTime::now_utc()
            + time::Duration::milliseconds(self.ahead_ms.load(Ordering::SeqCst));
        let left = (expires - server_now).whole_milliseconds().max(0);
        // One second past it: the server compares whole milliseconds.
        self.ahead_ms
            .fetch_add(i64::try_from(left).unwrap() + 1000, Ordering::SeqCst);
    }
}

fn start(ttl: Duration) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let pki = DevPki::generate("Test Station CA", &["station-01", "station-99"]).unwrap();
    let mut config = KlmsConfig::dev(
        &pki,
        dir.path().join("ledger.db"),
        kf_crypto::AesKey::from_slice(&MASTER).unwrap(),
    )
    .unwrap();
    config.allowed_stations = vec!["station-01".into()];
    config.ttl = ttl;
    let ahead_ms = Arc::new(AtomicI64::new(0));
    let ahead = Arc::clone(&ahead_ms);
    config.clock = Clock::from_fn(move || {
        time::OffsetDateTime::now_utc() + time::Duration::milliseconds(ahead.load(Ordering::SeqCst))
    });
    let server = spawn_server(config).unwrap();
    Fixture {
        _dir: dir,
        pki,
        server,
        ahead_ms,
    }
}

fn client(ca_pem: &str, identity: Option<(&str, &str)>) -> Client {
    let identity = identity.map(|(cert, key)| format!("{cert}{key}"));
    common::https_client(ca_pem, identity.as_deref(), Duration::from_secs(10))
}

fn station(f: &Fixture, cn: &str) -> Client {
    let (_, s) = f.pki.stations.iter().find(|(n, _)| n == cn).unwrap();
    client(&f.pki.ca.cert_pem, Some((&s.cert_pem, &s.key_pem)))
}

fn url(f: &Fixture, path: &str) -> String {
    format!("{}{path}", f.server.base_url())
}

/// The request fails in the TLS handshake, before any HTTP status.
#[track_caller]
fn assert_handshake_refused(f: &Fixture, c: Client) {
    let err = c.get(url(f, "/healthz")).send().unwrap_err();
    assert!(
        err.status().is_none(),
        "expected a transport error, got {err:?}"
    );
}

/// Asks for the key package of `uid` from reader "R1".
fn request_package(c: &Client, f: &Fixture, uid: &str) -> reqwest::blocking::Response {
    c.post(url(f, "/v1/key-packages"))
        .json(&json!({"fob_uid": uid, "reader_id": "R1"}))
        .send()
        .unwrap()
}

/// Stops the server and opens its ledger afresh (with the directory that holds it).
fn stopped_ledger(f: Fixture) -> (tempfile::TempDir, kf_klms::ledger::Ledger) {
    let Fixture { _dir, server, .. } = f;
    server.shutdown();
    let ledger = kf_klms::ledger::Ledger::open(_dir.path().join("ledger.db")).unwrap();
    (_dir, ledger)
}

#[test]
fn health_over_mutual_tls() {
    let f = start(Duration::from_secs(5));
    let r = station(&f, "station-01")
        .get(url(&f, "/healthz"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().unwrap()["status"], "ok");
    assert!(f.server.addr().ip().is_loopback());
    f.server.shutdown();
}

#[test]
fn handshake_without_client_certificate_is_refused() {
    let f = start(Duration::from_secs(5));
    assert_handshake_refused(&f, client(&f.pki.ca.cert_pem, None));
}

#[test]
fn client_certificate_from_another_ca_is_refused() {
    let f = start(Duration::from_secs(5));
    let other = DevPki::generate("Foreign CA", &["station-01"]).unwrap();
    let (_, s) = &other.stations[0];
    // Same CN as an allowed station, but issued by a foreign CA.
    assert_handshake_refused(
        &f,
        client(&f.pki.ca.cert_pem, Some((&s.cert_pem, &s.key_pem))),
    );
}

#[test]
fn unlisted_station_cn_gets_403() {
    let f = start(Duration::from_secs(5));
    let r = station(&f, "station-99")
        .post(url(&f, "/v1/key-packages"))
        .json(&json!({"fob_uid": UID, "reader_id": "R1"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<serde_json::Value>().unwrap()["error"],
        "station_not_allowed"
    );
}

#[test]
fn issuance_returns_contract_shape_and_second_request_is_409() {
    let f = start(Duration::from_secs(5));
    let c = station(&f, "station-01");
    let r = c
        .post(url(&f, "/v1/key-packages"))
        .json(&json!({"fob_uid": UID, "reader_id": "LINE_04_READER_01"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().unwrap();
    let keys = kf_crypto::kdf::diversify_static_keys(
        &kf_crypto::AesKey::from_slice(&MASTER).unwrap(),
        &hex::decode(UID).unwrap(),
    )
    .unwrap();
    assert_eq!(
        body["scp03_static_keys"]["enc"],
        hex::encode_upper(keys.enc.expose_secret())
    );
    assert_eq!(
        body["scp03_static_keys"]["mac"],
        hex::encode_upper(keys.mac.expose_secret())
    );
    assert_eq!(
        body["scp03_static_keys"]["dek"],
        hex::encode_upper(keys.dek.expose_secret())
    );
    assert_eq!(body["key_version"], 1);
    assert!(body["transaction_id"].as_str().unwrap().starts_with("trx_"));
    let tags: Vec<&str> = body["personalization_dgis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["A003", "A001", "A002", "A004", "A005", "A006"]);
    // A003 is the P-256 scalar under the static DEK (CBC, IV 0, ISO 9797-1 M2).
    let a003 = &body["personalization_dgis"][0];
    assert_eq!(a003["encrypted"], true);
    let ct = hex::decode(a003["data_hex"].as_str().unwrap()).unwrap();
    assert_eq!(ct.len(), 48);
    let scalar = kf_crypto::cbc::decrypt_m2(&keys.dek, &[0u8; 16], &ct).unwrap();
    assert_eq!(scalar.len(), 32);
    let spid = hex::decode(
        body["personalization_dgis"][1]["data_hex"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(spid.len(), 40);
    assert!(
        time::OffsetDateTime::parse(
            body["expires_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .unwrap()
            > time::OffsetDateTime::now_utc()
    );

    let again = request_package(&c, &f, UID);
    assert_eq!(again.status(), 409);
    assert_eq!(
        again.json::<serde_json::Value>().unwrap()["error"],
        "already_issued"
    );
}

/// Sends one issuance per UID from its own thread (own TLS connection), all
/// released together so their ledger writes land in shared group commits.
fn issue_concurrently(f: &Fixture, uids: &[String]) -> Vec<(u16, serde_json::Value)> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(uids.len()));
    std::thread::scope(|scope| {
        let handles: Vec<_> = uids
            .iter()
            .map(|uid| {
                let barrier = std::sync::Arc::clone(&barrier);
                let c = station(f, "station-01");
                let url = url(f, "/v1/key-packages");
                scope.spawn(move || {
                    // Handshake first so the requests themselves start together.
                    assert_eq!(
                        c.get(url.replace("/v1/key-packages", "/healthz"))
                            .send()
                            .unwrap()
                            .status(),
                        200
                    );
                    barrier.wait();
                    let r = c
                        .post(url)
                        .json(&json!({"fob_uid": uid, "reader_id": "R1"}))
                        .send()
                        .unwrap();
                    (r.status().as_u16(), r.json::<serde_json::Value>().unwrap())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn concurrent_issuances_of_distinct_uids_are_all_durable() {
    let f = start(Duration::from_secs(60));
    let uids: Vec<String> = (0..24u32)
        .map(|i| format!("0411223344556677{i:04X}"))
        .collect();
    let results = issue_concurrently(&f, &uids);
    for ((status, body), uid) in results.iter().zip(&uids) {
        assert_eq!(*status, 200, "{uid}: {body}");
        assert_eq!(body["fob_uid"], *uid);
    }
    // A fresh connection after the server (and its writer) stopped.
    let (_dir, ledger) = stopped_ledger(f);
    for uid in &uids {
        assert_eq!(ledger.issuance_count(uid).unwrap(), 1, "{uid}");
    }
}

#[test]
fn concurrent_requests_for_one_uid_issue_exactly_once() {
    let f = start(Duration::from_secs(60));
    let uids = vec![UID.to_owned(); 16];
    let results = issue_concurrently(&f, &uids);
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 1, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, 409);
        assert_eq!(body["error"], "already_issued");
    }
    let (_dir, ledger) = stopped_ledger(f);
    assert_eq!(ledger.issuance_count(UID).unwrap(), 1);
}

fn audit_body(txid: &str, uid: &str, result: &str) -> serde_json::Value {
    json!({
        "transaction_id": txid,
        "fob_uid": uid,
        "timestamp_iso8601": "2026-11-22T14:32:01.123Z",
        "overall_result": result,
        "stage_reached": "POST_PERSONALIZATION",
        "apdu_trace": [
            {"direction": "TX", "apdu_hex": "8050000008"},
            {"direction": "RX", "apdu_hex": "9000", "sw1": "90", "sw2": "00"}
        ],
        "eol_station_id": "station-01",
        "stage_durations_ms": {"ReadUid": 3}
    })
}

#[test]
fn audit_ingest_is_idempotent_and_completes_issuance() {
    let f = start(TTL);
    let c = station(&f, "station-01");
    let pkg: serde_json::Value = request_package(&c, &f, UID).json().unwrap();
    let txid = pkg["transaction_id"].as_str().unwrap();
    let record = audit_body(txid, UID, "SUCCESS");
    let first = c.post(url(&f, "/v1/audit")).json(&record).send().unwrap();
    assert_eq!(first.status(), 201);
    let second = c.post(url(&f, "/v1/audit")).json(&record).send().unwrap();
    assert_eq!(second.status(), 200);
    assert_eq!(
        second.json::<serde_json::Value>().unwrap()["status"],
        "duplicate"
    );
    let mut changed = record.clone();
    changed["overall_result"] = json!("FAILURE");
    assert_eq!(
        c.post(url(&f, "/v1/audit"))
            .json(&changed)
            .send()
            .unwrap()
            .status(),
        409
    );
    // Completed: refused even after the TTL.
    f.advance(TTL + Duration::from_secs(1));
    assert_eq!(request_package(&c, &f, UID).status(), 409);
    // Unknown transaction and wrong station.
    assert_eq!(
        c.post(url(&f, "/v1/audit"))
            .json(&audit_body("trx_unknown", UID, "SUCCESS"))
            .send()
            .unwrap()
            .status(),
        404
    );
}

#[test]
fn expired_package_without_success_can_be_issued_again() {
    let f = start(TTL);
    let c = station(&f, "station-01");
    assert_eq!(request_package(&c, &f, UID).status(), 200);
    assert_eq!(request_package(&c, &f, UID).status(), 409);
    f.advance(TTL + Duration::from_secs(1));
    assert_eq!(request_package(&c, &f, UID).status(), 200);
}

#[test]
fn hostile_and_malformed_requests_are_refused() {
    let f = start(Duration::from_secs(5));
    let c = station(&f, "station-01");
    let post = |path: &str, body: String| {
        c.post(url(&f, path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap()
    };
    let status =
        |path: &str, body: serde_json::Value| post(path, body.to_string()).status().as_u16();
    // Missing field, unknown field, wrong type, not JSON.
    assert_eq!(status("/v1/key-packages", json!({"fob_uid": UID})), 400);
    assert_eq!(
        status(
            "/v1/key-packages",
            json!({"fob_uid": UID, "reader_id": "R", "admin": true})
        ),
        400
    );
    assert_eq!(
        status("/v1/key-packages", json!({"fob_uid": 42, "reader_id": "R"})),
        400
    );
    assert_eq!(
        post("/v1/key-packages", "{\"fob_uid\":".into()).status(),
        400
    );
    // Odd-length hex, wrong UID length, non-hex, empty reader id.
    assert_eq!(
        status(
            "/v1/key-packages",
            json!({"fob_uid": "0411223344556677889", "reader_id": "R"})
        ),
        422
    );
    assert_eq!(
        status(
            "/v1/key-packages",
            json!({"fob_uid": "04112233445566", "reader_id": "R"})
        ),
        422
    );
    assert_eq!(
        status(
            "/v1/key-packages",
            json!({"fob_uid": "ZZ112233445566778899", "reader_id": "R"})
        ),
        422
    );
    assert_eq!(
        status("/v1/key-packages", json!({"fob_uid": UID, "reader_id": ""})),
        422
    );
    // Wrong content type.
    let r = c
        .post(url(&f, "/v1/key-packages"))
        .body(json!({"fob_uid": UID, "reader_id": "R"}).to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 415);
    // 10 MB body.
    let big = format!(
        "{{\"fob_uid\":\"{UID}\",\"reader_id\":\"{}\"}}",
        "A".repeat(10 * 1024 * 1024)
    );
    match c
        .post(url(&f, "/v1/key-packages"))
        .header("content-type", "application/json")
        .body(big)
        .send()
    {
        Ok(r) => assert_eq!(r.status(), 413),
        // The server may close the connection before the client finished sending.
        Err(e) => assert!(e.is_request() || e.is_body(), "unexpected error {e:?}"),
    }
    // Audit: missing fields, bad trace, bad timestamp.
    let mut a = audit_body("trx_x", UID, "SUCCESS");
    a.as_object_mut().unwrap().remove("apdu_trace");
    assert_eq!(status("/v1/audit", a), 400);
    let mut a = audit_body("trx_x", UID, "SUCCESS");
    a["apdu_trace"][0]["direction"] = json!("SIDEWAYS");
    assert_eq!(status("/v1/audit", a), 422);
    let mut a = audit_body("trx_x", UID, "SUCCESS");
    a["timestamp_iso8601"] = json!("yesterday");
    assert_eq!(status("/v1/audit", a), 422);
    assert_eq!(status("/v1/audit", json!([1, 2, 3])), 400);
    // Nothing above created an issuance.
    assert_eq!(
        status(
            "/v1/key-packages",
            json!({"fob_uid": UID, "reader_id": "R"})
        ),
        200
    );
}

fn post_raw(c: &Client, f: &Fixture, path: &str, body: String) -> (u16, serde_json::Value) {
    let r = c
        .post(url(f, path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(serde_json::Value::Null))
}

fn post_audit(c: &Client, f: &Fixture, record: &serde_json::Value) -> (u16, serde_json::Value) {
    post_raw(c, f, "/v1/audit", record.to_string())
}

#[test]
fn request_json_is_strict_and_errors_name_the_field() {
    let f = start(Duration::from_secs(5));
    let c = station(&f, "station-01");
    let record = audit_body("trx_x", UID, "SUCCESS").to_string();
    let cases = [
        // Duplicate key at the top level and in a nested object.
        (
            record.replacen('{', "{\"fob_uid\":\"00\",", 1),
            "duplicate field `fob_uid`",
        ),
        (
            record.replace("\"ReadUid\":3", "\"ReadUid\":3,\"ReadUid\":4"),
            "stage_durations_ms: duplicate key `ReadUid`",
        ),
        // Unknown fields at the top level and in a trace entry.
        (
            record.replacen('{', "{\"admin\":true,", 1),
            "unknown field `admin`",
        ),
        (
            record.replace("\"direction\":\"TX\"", "\"direction\":\"TX\",\"x\":1"),
            "apdu_trace[0].x: unknown field `x`",
        ),
        // Wrong types.
        (
            record.replace("\"sw1\":\"90\"", "\"sw1\":144"),
            "apdu_trace[1].sw1: invalid type: integer `144`",
        ),
        (
            record.replace("\"overall_result\":\"SUCCESS\"", "\"overall_result\":true"),
            "overall_result: invalid type: boolean `true`",
        ),
    ];
    for (body, expected) in cases {
        let (status, reply) = post_raw(&c, &f, "/v1/audit", body.clone());
        assert_eq!(status, 400, "{body}: {reply}");
        assert_eq!(reply["error"], "invalid_json");
        let message = reply["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message} lacks {expected}");
    }
    let (status, reply) = post_raw(
        &c,
        &f,
        "/v1/key-packages",
        format!("{{\"fob_uid\":\"{UID}\",\"reader_id\":\"R\",\"reader_id\":\"S\"}}"),
    );
    assert_eq!(status, 400);
    assert!(reply["message"]
        .as_str()
        .unwrap()
        .contains("duplicate field `reader_id`"));
}

#[test]
fn identifiers_are_limited_to_their_charset_and_length() {
    let f = start(Duration::from_secs(5));
    let c = station(&f, "station-01");
    for bad in ["", "R\u{0}1", "R\n1", "R 1", "../x", "-R", &"R".repeat(65)] {
        let body = json!({"fob_uid": UID, "reader_id": bad}).to_string();
        let (status, reply) = post_raw(&c, &f, "/v1/key-packages", body);
        assert_eq!(status, 422, "{bad:?}: {reply}");
        assert_eq!(reply["error"], "invalid_identifier");
        assert!(reply["message"]
            .as_str()
            .unwrap()
            .starts_with("reader_id: identifier"));
    }
    // A reader id of 5 KiB puts the body over the route's 4 KiB limit before
    // it is even parsed; the server closes that connection and says so, so
    // the client's next request goes on a new one. (Bodies far over the limit
    // are refused before they are sent: tests/limits.rs.)
    let body = json!({"fob_uid": UID, "reader_id": "R".repeat(5 * 1024)}).to_string();
    let r = c
        .post(url(&f, "/v1/key-packages"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["connection"], "close");
    let mut record = audit_body("trx_x", UID, "SUCCESS");
    record["eol_station_id"] = json!("station 01");
    let (status, reply) = post_audit(&c, &f, &record);
    assert_eq!(status, 422, "{reply}");
}

fn issue(c: &Client, f: &Fixture, uid: &str) -> serde_json::Value {
    let r = request_package(c, f, uid);
    assert_eq!(r.status(), 200);
    r.json().unwrap()
}

#[test]
fn audit_must_name_the_station_of_the_client_certificate() {
    let f = start(Duration::from_secs(5));
    let c = station(&f, "station-01");
    let txid = issue(&c, &f, UID)["transaction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut record = audit_body(&txid, UID, "SUCCESS");
    record["eol_station_id"] = json!("station-99");
    let (status, reply) = post_audit(&c, &f, &record);
    assert_eq!(status, 403, "{reply}");
    assert_eq!(reply["error"], "station_mismatch");
    // Nothing was stored: the genuine record is new.
    let (status, reply) = post_audit(&c, &f, &audit_body(&txid, UID, "SUCCESS"));
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["status"], "stored");
}

#[test]
fn success_for_a_reissued_or_expired_package_is_flagged_not_silently_counted() {
    let f = start(TTL);
    let c = station(&f, "station-01");
    // Package 1 expires unused; package 2 goes to the same fob.
    let first = issue(&c, &f, UID);
    f.expire(&first);
    let second = issue(&c, &f, UID);
    let tx1 = first["transaction_id"].as_str().unwrap();
    let tx2 = second["transaction_id"].as_str().unwrap();
    let (status, reply) = post_audit(&c, &f, &audit_body(tx1, UID, "SUCCESS"));
    assert_eq!((status, reply["status"].clone()), (202, json!("flagged")));
    // The superseded success completed nothing: package 2's success is the one.
    let (status, _) = post_audit(&c, &f, &audit_body(tx2, UID, "SUCCESS"));
    assert_eq!(status, 201);
    // A success arriving after its package expired: counted, flagged late.
    let uid_b = "04AABBCCDDEEFF001122";
    let third = issue(&c, &f, uid_b);
    f.expire(&third);
    let tx3 = third["transaction_id"].as_str().unwrap();
    let (status, reply) = post_audit(&c, &f, &audit_body(tx3, uid_b, "SUCCESS"));
    assert_eq!((status, reply["status"].clone()), (202, json!("flagged")));
    assert_eq!(request_package(&c, &f, uid_b).status(), 409);
    let (_dir, ledger) = stopped_ledger(f);
    assert_eq!(
        ledger.audit_flag(tx1).unwrap().as_deref(),
        Some("superseded")
    );
    assert!(!ledger.is_completed(tx1).unwrap());
    assert_eq!(ledger.audit_flag(tx2).unwrap(), None);
    assert!(ledger.is_completed(tx2).unwrap());
    assert_eq!(ledger.audit_flag(tx3).unwrap().as_deref(), Some("late"));
    assert!(ledger.is_completed(tx3).unwrap());
}
