//! `klms-bench`: issuance throughput of the reference KLMS over mutual TLS,
//! against an in-process server with a development PKI and a durable ledger.
//!
//! `cargo run --release -p kf-bench --bin klms-bench -- --concurrency 1,8,64 --requests 2000`
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use kf_bench::klms::{run_issuance_bench, BenchClient};
use kf_klms::pki::DevPki;

/// Issuance throughput over mutual TLS against an in-process KLMS.
#[derive(Parser)]
#[command(name = "klms-bench")]
struct Args {
    /// Concurrency levels, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    concurrency: Vec<usize>,
    /// Requests per level.
    #[arg(long, default_value_t = 500)]
    requests: usize,
    /// Directory for the ledger (default: a temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = args.dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("kf-klms-bench-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir)?;
    let pki = DevPki::generate("KF Bench CA", &["bench-station"])?;
    let (_, station) = pki.stations.first().context("no station certificate")?;
    let identity = format!("{}{}", station.cert_pem, station.key_pem);
    let master = kf_crypto::AesKey::from_slice(&[0x42; 16])?;
    let mut config = kf_klms::KlmsConfig::dev(&pki, dir.join("bench-ledger.db"), master)?;
    config.ttl = std::time::Duration::from_secs(60);
    let server = kf_klms::spawn_server(config)?;
    let base = server.base_url();
    let client = BenchClient {
        base_url: &base,
        ca_pem: &pki.ca.cert_pem,
        identity_pem: &identity,
    };
    println!("concurrency requests errors   req/s   p50_ms   p99_ms");
    for &c in &args.concurrency {
        let r = run_issuance_bench(&client, c, args.requests, kf_klms::DEFAULT_UID_LEN)
            .map_err(anyhow::Error::msg)?;
        println!(
            "{:>11} {:>8} {:>6} {:>7.1} {:>8.2} {:>8.2}",
            r.concurrency, r.requests, r.errors, r.requests_per_sec, r.p50_ms, r.p99_ms
        );
    }
    server.shutdown();
    // Best effort: a leftover temporary ledger is harmless.
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
