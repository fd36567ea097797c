//! Durable append rate of the journal with the keyed chain (WAL,
//! synchronous=FULL, one transaction per append) and the time of a full
//! read-only verification of what was appended. Usage: `cargo run -p kf-audit --release --example append_rate -- [N] [DIR]`.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("kf-audit-append-rate-{}.db", std::process::id()));
    let key = || kf_audit::JournalKey::from_bytes([0x5A; 32]);
    let mut journal = kf_audit::Journal::open(&path, key())?;
    let body = serde_json::json!({
        "transaction_id": "trx_0", "fob_uid": "04112233445566778899",
        "timestamp_iso8601": "2026-11-22T14:32:01.123Z", "overall_result": "SUCCESS",
        "stage_reached": "POST_PERSONALIZATION", "eol_station_id": "LINE-04-PC-12",
        "apdu_trace": (0..24).map(|_| serde_json::json!({"direction": "TX", "apdu_hex": "84E2000010"})).collect::<Vec<_>>()
    });
    let mut latencies = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for i in 0..n {
        let t0 = Instant::now();
        journal.append(&format!("trx_{i}"), kf_audit::RecordKind::Outcome, &body)?;
        latencies.push(t0.elapsed());
    }
    let elapsed = start.elapsed();
    latencies.sort();
    let pct =
        |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1000.0;
    println!(
        "{n} durable appends in {:.3} s: {:.0} appends/s, p50 {:.3} ms, p99 {:.3} ms ({})",
        elapsed.as_secs_f64(),
        f64::from(n) / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        path.display()
    );
    // The floor: bare 4 KiB write + fsync on the same file system right now
    // (the journal needs one fsync per append; shared disks vary a lot).
    let probe = dir.join(format!("kf-audit-fsync-probe-{}", std::process::id()));
    let mut file = std::fs::File::create(&probe)?;
    let fsync_start = Instant::now();
    for _ in 0..n.min(500) {
        std::io::Write::write_all(&mut file, &[0u8; 4096])?;
        file.sync_data()?;
    }
    let fsyncs = f64::from(n.min(500)) / fsync_start.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&probe)?;
    println!(
        "bare fsync floor: {fsyncs:.0} fsyncs/s (appends/fsync floor = {:.2})",
        f64::from(n) / elapsed.as_secs_f64() / fsyncs
    );
    let verify_start = Instant::now();
    let report = kf_audit::JournalReader::open(&path)?.verify(&key())?;
    println!(
        "verify: {} records, ok={}, {:.3} s",
        report.records,
        report.is_ok(),
        verify_start.elapsed().as_secs_f64()
    );
    drop(journal);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(())
}
