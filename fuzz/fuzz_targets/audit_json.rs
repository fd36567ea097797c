//! Audit JSON on both sides: the KLMS's strict parse of an uploaded audit
//! record, the chain-anchoring upload, and the station's parse of the KLMS's
//! signed receipt and acknowledgements.
#![no_main]
use kf_audit::receipt::{ChainHead, ChainUpload, ChainUploadAck, Receipt};
use kf_klms::wire::{parse_strict, AuditRecordCore};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(core) = parse_strict::<AuditRecordCore>(data) {
        let _ = kf_klms::wire::check_identifier(&core.eol_station_id);
    }
    let _ = serde_json::from_slice::<ChainUpload>(data);
    let _ = serde_json::from_slice::<ChainUploadAck>(data);
    let _ = serde_json::from_slice::<ChainHead>(data);
    let _ = serde_json::from_slice::<kf_source::klms::AuditAck>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(receipt) = Receipt::parse(text) {
            let _ = receipt.covers(1, &[0; 32]);
            let again = Receipt::parse(&receipt.to_json()).expect("receipt round-trips");
            assert_eq!(again, receipt);
        }
    }
});
