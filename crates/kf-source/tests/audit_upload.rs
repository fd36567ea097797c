#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Store-and-forward end to end: journal → uploader → KlmsAuditSink → reference KLMS,
//! with the KLMS stopped while records are appended.

use std::sync::Arc;
use std::time::Duration;

use kf_audit::{
    Journal, JournalKey, JournalReader, RecordKind, UploadState, Uploader, UploaderConfig,
};
use kf_klms::pki::DevPki;
use kf_klms::{spawn_server, KlmsConfig};
use kf_source::klms::{KlmsAuditSink, KlmsClient, KlmsClientConfig};
use kf_testkit::audit::success_record;
use zeroize::Zeroizing;

/// The receipt key a KLMS with this master key signs with, as published.
fn receipt_key(master: &[u8]) -> p256::ecdsa::VerifyingKey {
    let signer =
        kf_klms::receipt::ReceiptSigner::derive(&kf_crypto::AesKey::from_slice(master).unwrap())
            .unwrap();
    kf_audit::receipt::klms_key_from_pem(&signer.public_key_pem().unwrap()).unwrap()
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
            .append(
                t,
                RecordKind::Started,
                &serde_json::json!({"fob_uid": hex::encode_upper(u)}),
            )
            .unwrap();
        journal
            .append(
                t,
                RecordKind::Outcome,
                &success_record(t, &hex::encode_upper(u)),
            )
            .unwrap();
        uploader.notify();
    }
    assert!(
        !uploader.flush(Duration::from_millis(600)),
        "nothing can be uploaded while the KLMS is down"
    );
    // Started and outcome records: the KLMS anchors every link.
    assert_eq!(journal.pending_count().unwrap(), 6);
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
    assert_eq!(stats.uploaded, 6);
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
    // Every acknowledgement carries a receipt signed by the KLMS.
    let klms_key = receipt_key(&master);
    let report = JournalReader::open(&journal_path)
        .unwrap()
        .verify_with_receipts(&key(), Some(&klms_key))
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.acknowledged, 6);
    let other_klms = receipt_key(&[1; 16]);
    let report = JournalReader::open(&journal_path)
        .unwrap()
        .verify_with_receipts(&key(), Some(&other_klms))
        .unwrap();
    assert!(
        matches!(
            report.finding.map(|f| f.damage),
            Some(kf_audit::Damage::ReceiptInvalid(_))
        ),
        "receipts verified under a foreign key"
    );
    let head = client.chain_head().unwrap();
    assert_eq!(head.seq, 6);
    assert_eq!(head.link, journal.head().unwrap().link);
    // The KLMS stored them: a re-upload is a duplicate, and the fobs are completed.
    let again =
        serde_json::to_string(&success_record(&txids[0], &hex::encode_upper(uids[0]))).unwrap();
    let ack = client.post_audit(&again).unwrap();
    assert_eq!(ack.status, "duplicate");

    // A forked journal (restored or rewritten: another chain under the same
    // station identity) is refused by the KLMS with an alert.
    let forked_path = dir.path().join("forked.db");
    let mut forked = Journal::open(&forked_path, JournalKey::from_bytes([0x22; 32])).unwrap();
    forked
        .append(
            &txids[0],
            RecordKind::Started,
            &serde_json::json!({"fob_uid": "00"}),
        )
        .unwrap();
    let mut sink = KlmsAuditSink::new(Arc::clone(&client));
    let refused = kf_audit::AuditSink::upload(&mut sink, &forked.show(1).unwrap()).unwrap_err();
    assert!(
        matches!(&refused, kf_audit::UploadError::Permanent(m) if m.contains("chain_fork")),
        "{refused:?}"
    );
    // A gap is refused too; the same record again is idempotent.
    let gap = kf_audit::receipt::ChainUpload {
        seq: 9,
        prev_link: "00".repeat(32),
        link: "11".repeat(32),
        kind: "started".into(),
        record: None,
    };
    let err = client.post_chain(&gap).unwrap_err().to_string();
    assert!(err.contains("409") && err.contains("chain_gap"), "{err}");
    let again = kf_audit::AuditSink::upload(&mut sink, &journal.show(2).unwrap()).unwrap();
    assert!(again.contains("\"seq\":2"), "{again}");
    server.shutdown();
    let ledger = kf_klms::ledger::Ledger::open(dir.path().join("ledger.db")).unwrap();
    let states = ledger.chain_states().unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].seq, 6);
    assert_eq!(states[0].alerts, 2, "{states:?}");
}
