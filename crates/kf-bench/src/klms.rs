//! Issuance throughput of a KLMS over mutual TLS with keep-alive
//! (`klms-bench`): concurrent clients sharing one connection pool, each
//! posting key-package requests for random UIDs.
//!
//! ```text
//!  N tasks ─▶ reqwest (rustls, client certificate, keep-alive pool)
//!          ─▶ POST /v1/key-packages ─▶ KLMS ─▶ latency of each 200 ─▶ p50 / p99
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngCore;

use crate::stats::percentile;

/// Result of one benchmark run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    /// Concurrent clients (tasks sharing one keep-alive connection pool).
    pub concurrency: usize,
    /// Requests sent.
    pub requests: usize,
    /// Requests that did not return 200.
    pub errors: usize,
    /// Wall time in seconds.
    pub elapsed_s: f64,
    /// Successful requests per second.
    pub requests_per_sec: f64,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: f64,
}

/// Client credentials for the benchmark.
pub struct BenchClient<'a> {
    /// `https://127.0.0.1:PORT`.
    pub base_url: &'a str,
    /// Pinned server CA (PEM).
    pub ca_pem: &'a str,
    /// Client certificate and key, concatenated PEM.
    pub identity_pem: &'a str,
}

/// Sends `requests` issuance requests for random UIDs with `concurrency` tasks.
pub fn run_issuance_bench(
    client: &BenchClient<'_>,
    concurrency: usize,
    requests: usize,
    uid_len: usize,
) -> Result<BenchReport, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(client.ca_pem.as_bytes()).map_err(|e| e.to_string())?,
        )
        .identity(
            reqwest::Identity::from_pem(client.identity_pem.as_bytes())
                .map_err(|e| e.to_string())?,
        )
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("{}/v1/key-packages", client.base_url);
    runtime.block_on(async move {
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrency.max(1) {
            let http = http.clone();
            let url = url.clone();
            let next = Arc::clone(&next);
            tasks.spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0usize;
                while next.fetch_add(1, Ordering::Relaxed) < requests {
                    let mut uid = vec![0u8; uid_len];
                    rand::thread_rng().fill_bytes(&mut uid);
                    let body = serde_json::json!({"fob_uid": hex::encode_upper(&uid), "reader_id": "BENCH"});
                    let t0 = Instant::now();
                    let ok = match http.post(&url).json(&body).send().await {
                        Ok(resp) => resp.status().is_success() && resp.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    if ok {
                        latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
                    } else {
                        errors += 1;
                    }
                }
                (latencies, errors)
            });
        }
        let mut latencies = Vec::with_capacity(requests);
        let mut errors = 0;
        while let Some(done) = tasks.join_next().await {
            let (l, e) = done.map_err(|e| e.to_string())?;
            latencies.extend(l);
            errors += e;
        }
        let elapsed = start.elapsed();
        Ok(BenchReport {
            concurrency,
            requests,
            errors,
            elapsed_s: elapsed.as_secs_f64(),
            requests_per_sec: latencies.len() as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_ms: percentile(&latencies, 0.50).unwrap_or(0.0),
            p99_ms: percentile(&latencies, 0.99).unwrap_or(0.0),
        })
    })
}
