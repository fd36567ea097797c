//! Recovery time of the journal after `kill -9`.
//!
//! `recovery fill PATH N`: appends N durable records, prints `filled`, then keeps
//! appending until killed (`appending past N` after 100 more). `recovery open PATH`: times opening the journal
//! (SQLite WAL recovery) and verifying the whole keyed chain, and prints JSON.
//! `scripts/journal-recovery-bench.sh` drives both around a `kill -9`.

use std::time::Instant;

fn body(i: u64) -> serde_json::Value {
    serde_json::json!({
        "transaction_id": format!("trx_{i}"), "fob_uid": "04112233445566778899",
        "timestamp_iso8601": "2026-11-22T14:32:01.123Z", "overall_result": "SUCCESS",
        "stage_reached": "ZEROIZE", "eol_station_id": "LINE-04-PC-12",
        "apdu_trace": (0..24).map(|_| serde_json::json!({"direction": "TX", "apdu_hex": "84E2000010"})).collect::<Vec<_>>()
    })
}

/// The benchmark's fixed journal key.
fn key() -> kf_audit::JournalKey {
    kf_audit::JournalKey::from_bytes([0x5A; 32])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [mode, path, n] if mode == "fill" => {
            let n: u64 = n.parse()?;
            let mut journal = kf_audit::Journal::open(path, key())?;
            let mut i = 0u64;
            loop {
                journal.append(&format!("trx_{i}"), kf_audit::RecordKind::Outcome, &body(i))?;
                i += 1;
                if i == n {
                    println!("filled {n}");
                }
                // The bench kills the process once it is this far into the appends.
                if i == n + 100 {
                    println!("appending past {n}");
                }
            }
        }
        [mode, path] if mode == "open" => {
            let t0 = Instant::now();
            let journal = kf_audit::Journal::open(path, key())?;
            let opened = t0.elapsed();
            let t1 = Instant::now();
            let report = kf_audit::JournalReader::open(path)?.verify(&key())?;
            drop(journal);
            let verified = t1.elapsed();
            println!(
                "{}",
                serde_json::json!({
                    "records": report.records,
                    "chain_ok": report.is_ok(),
                    "open_ms": opened.as_secs_f64() * 1000.0,
                    "verify_ms": verified.as_secs_f64() * 1000.0,
                })
            );
            Ok(())
        }
        _ => Err("usage: recovery fill PATH N | recovery open PATH".into()),
    }
}
