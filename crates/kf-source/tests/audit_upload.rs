#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Store-and-forward end to end: journal → uploader → KlmsAuditSink → reference KLMS,
//! with the KLMS stopped while records are appended.

use std::sync::Arc;
use std::time::Duration;

use kf_audit::{Journal, JournalKey, JournalReader, UploadState, Uploader, UploaderConfig};
use kf_klms::pki::DevPki;
use kf_klms::{spawn_server, KlmsConfig};
use kf_source::klms::{KlmsAuditSink, KlmsClient, KlmsClientConfig};
use zeroize::Zeroizing;

fn audit_record(txid: &str, uid: &str) -> serde_json::Value {
    serde_json::json!({
        "transaction_id": txid,
        "fob_uid": uid,
        "timestamp_iso8601": "2026-11-22T14:32:01.123Z",
        "overall_result": "SUCCESS",
        "stage_reached": "POST_PERSONALIZATION",
        "apdu_trace": [{"direction": "TX", "apdu_hex": "8050000008"}],
        "eol_station_id": "LINE-04-PC-12"
    })
}

#[test]
fn records_queue_while_klms_is_down_and_go_out_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let pki = DevPki::generate("CA", &["station-01"]).unwrap();
    let master = [0x5A; 16];
    let make_config = |bind| {
        let mut c = KlmsConfig::dev(
            &pki,
            dir.path().join("ledger.db"),
            kf_crypto::AesKey::from_slice(&master).unwrap(),
        )
        .unwrap();
        c.bind = bind;
        c
    };
    let server = spawn_server(make_config("127.0.0.1:0".parse().unwrap())).unwrap();
    let addr = server.addr();
    let (_, station) = &pki.stations[0];
    let mut cfg = KlmsClientConfig::new(
        server.base_url(),
        pki.ca.cert_pem.as_bytes().to_vec(),
        Zeroizing::new(format!("{}{}", station.cert_pem, station.key_pem).into_bytes()),
    );
    cfg.max_attempts = 1;
    cfg.connect_timeout = Duration::from_millis(500);
    let client = Arc::new(KlmsClient::new(cfg).unwrap());

    // Three fobs get packages while the KLMS is up.
    let uids: Vec<[u8; 10]> = (0u8..3).map(|i| [i, 1, 2, 3, 4, 5, 6, 7, 8, 9]).collect();
    let txids: Vec<String> = uids
        .iter()
        .map(|u| {
            client
                .fetch_key_package(u, "R1")
                .unwrap()
                .transaction_id()
                .to_owned()
        })
        .collect();
    server.shutdown();

    // KLMS down: the station keeps journaling.
    let journal_path = dir.path().join("journal.db");
    let key = || JournalKey::from_bytes([0x11; 32]);
    let mut journal = Journal::open(&journal_path, key()).unwrap();
    let uploader = Uploader::spawn(
        &journal_path,
        key(),
        KlmsAuditSink::new(Arc::clone(&client)),
        UploaderConfig {
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
            poll_interval: Duration::from_millis(100),
            batch: 8,
        },
    )
    .unwrap();
    for (u, t) in uids.iter().zip(&txids) {
        journal
            .append_started(t, &serde_json::json!({"fob_uid": hex::encode_upper(u)}))
            .unwrap();
        journal
            .append_outcome(t, &audit_record(t, &hex::encode_upper(u)))
            .unwrap();
        uploader.notify();
    }
    assert!(
        !uploader.flush(Duration::from_millis(600)),
        "nothing can be uploaded while the KLMS is down"
    );
    assert_eq!(journal.pending_count().unwrap(), 3);
    assert!(uploader.stats().transient_failures > 0);

    // KLMS back on the same address: the queue drains.
    let server = spawn_server(make_config(addr)).unwrap();
    assert!(
        uploader.flush(Duration::from_secs(20)),
        "stats: {:?}",
        uploader.stats()
    );
    assert_eq!(journal.pending_count().unwrap(), 0);
    let stats = uploader.shutdown();
    assert_eq!(stats.uploaded, 3);
    assert_eq!(stats.rejected, 0);
    for r in journal
        .list(&kf_audit::ListFilter {
            kind: Some(kf_audit::RecordKind::Outcome),
            ..Default::default()
        })
        .unwrap()
    {
        assert!(
            matches!(r.upload, UploadState::Acknowledged { .. }),
            "{r:?}"
        );
    }
    assert!(JournalReader::open(&journal_path)
        .unwrap()
        .verify(&key())
        .unwrap()
        .is_ok());
    // The KLMS stored them: a re-upload is a duplicate, and the fobs are completed.
    let again =
        serde_json::to_string(&audit_record(&txids[0], &hex::encode_upper(uids[0]))).unwrap();
    let ack = client.post_audit(&again).unwrap();
    assert_eq!(ack.status, "duplicate");
    server.shutdown();
}
