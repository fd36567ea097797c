//! Issuance throughput over mutual TLS with keep-alive (`kf-klms bench`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngCore;

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

/// The `p` quantile of `latencies` in milliseconds, 0 when there are none.
fn percentile_ms(latencies: &[Duration], p: f64) -> f64 {
    let ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    kf_stats::percentile(&ms, p).unwrap_or(0.0)
}

/// How long an issuance run lasts.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// This many requests in total.
    Requests(usize),
    /// Requests until this much time has passed.
    Duration(Duration),
}

/// A client builder that trusts only `ca_pem` and presents `identity_pem`
/// (certificate and key, concatenated PEM).
fn mutual_tls_builder(ca_pem: &str, identity_pem: &str) -> Result<reqwest::ClientBuilder, String> {
    Ok(reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(ca_pem.as_bytes()).map_err(|e| e.to_string())?,
        )
        .identity(reqwest::Identity::from_pem(identity_pem.as_bytes()).map_err(|e| e.to_string())?))
}

/// The runtime the blocking benchmark entry points run their client tasks on.
fn bench_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// The mutual-TLS HTTP client of the benchmarks (pinned CA, station identity,
/// keep-alive pool of `pool` connections).
pub fn bench_http_client(client: &BenchClient<'_>, pool: usize) -> Result<reqwest::Client, String> {
    mutual_tls_builder(client.ca_pem, client.identity_pem)?
        .pool_max_idle_per_host(pool)
        .pool_idle_timeout(None)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())
}

/// Issues packages for random UIDs from `concurrency` tasks sharing `http`
/// until the budget is spent; request `i` goes to `base_urls[i % len]`
/// (round robin over several KLMS instances, as a load balancer would).
pub async fn issue_loop(
    http: &reqwest::Client,
    base_urls: &[&str],
    concurrency: usize,
    budget: Budget,
    uid_len: usize,
) -> Result<BenchReport, String> {
    if base_urls.is_empty() {
        return Err("no server URL".into());
    }
    let urls: Arc<Vec<String>> = Arc::new(
        base_urls
            .iter()
            .map(|b| format!("{b}/v1/key-packages"))
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let more = move |next: &AtomicUsize| {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let go = match budget {
            Budget::Requests(n) => i < n,
            Budget::Duration(d) => start.elapsed() < d,
        };
        go.then_some(i)
    };
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let http = http.clone();
        let urls = Arc::clone(&urls);
        let next = Arc::clone(&next);
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            while let Some(i) = more(&next) {
                let url = &urls[i % urls.len()];
                let mut uid = vec![0u8; uid_len];
                rand::thread_rng().fill_bytes(&mut uid);
                let body =
                    serde_json::json!({"fob_uid": hex::encode_upper(&uid), "reader_id": "BENCH"});
                let t0 = Instant::now();
                let ok = match http.post(url).json(&body).send().await {
                    Ok(resp) => resp.status().is_success() && resp.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    latencies.push(t0.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        });
    }
    collect(tasks, start, concurrency, None).await
}

/// Sends `requests` issuance requests for random UIDs with `concurrency`
/// tasks, round robin over `client.base_url` and `more_urls`.
pub fn run_issuance_bench(
    client: &BenchClient<'_>,
    more_urls: &[String],
    concurrency: usize,
    requests: usize,
    uid_len: usize,
) -> Result<BenchReport, String> {
    let runtime = bench_runtime()?;
    let http = bench_http_client(client, concurrency)?;
    let urls: Vec<&str> = std::iter::once(client.base_url)
        .chain(more_urls.iter().map(String::as_str))
        .collect();
    runtime.block_on(issue_loop(
        &http,
        &urls,
        concurrency,
        Budget::Requests(requests),
        uid_len,
    ))
}

type TaskResult = (Vec<Duration>, usize);

/// Waits for the client tasks and summarizes their latencies and errors;
/// `requests` is the number planned, `None` for as many as the tasks sent.
async fn collect(
    mut tasks: tokio::task::JoinSet<TaskResult>,
    start: Instant,
    concurrency: usize,
    requests: Option<usize>,
) -> Result<BenchReport, String> {
    let mut latencies = Vec::with_capacity(requests.unwrap_or(0));
    let mut errors = 0;
    while let Some(done) = tasks.join_next().await {
        let (l, e) = done.map_err(|e| e.to_string())?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed();
    Ok(BenchReport {
        concurrency,
        requests: requests.unwrap_or(latencies.len() + errors),
        errors,
        elapsed_s: elapsed.as_secs_f64(),
        requests_per_sec: latencies.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        p50_ms: percentile_ms(&latencies, 0.50),
        p99_ms: percentile_ms(&latencies, 0.99),
    })
}

/// Anchored audit ingest (`kf-klms bench --audit`): `identities.len()`
/// stations (station id, certificate + key PEM) upload concurrently, each its own chain of outcome records with
/// their audit records (`POST /v1/audit/chain`: chain check, audit storage,
/// group commit, signed receipt). The key packages the audits refer to are
/// issued first and not timed. Latencies are those of the chain uploads.
pub fn run_anchor_bench(
    base_url: &str,
    ca_pem: &str,
    identities: &[(String, String)],
    requests: usize,
    uid_len: usize,
) -> Result<BenchReport, String> {
    let runtime = bench_runtime()?;
    let stations = identities.len().max(1);
    let per_station = requests.div_ceil(stations);
    let mut clients = Vec::new();
    for (station, identity) in identities {
        clients.push((
            station.clone(),
            mutual_tls_builder(ca_pem, identity)?
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| e.to_string())?,
        ));
    }
    let base = base_url.to_owned();
    runtime.block_on(async move {
        // Untimed: one key package per audit record to upload.
        let mut issued: Vec<Vec<(String, String)>> = Vec::new();
        for (_, http) in &clients {
            let mut mine = Vec::with_capacity(per_station);
            for _ in 0..per_station {
                let mut uid = vec![0u8; uid_len];
                rand::thread_rng().fill_bytes(&mut uid);
                let uid = hex::encode_upper(&uid);
                let body = serde_json::json!({"fob_uid": uid, "reader_id": "BENCH"});
                let resp = http
                    .post(format!("{base}/v1/key-packages"))
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let value: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
                let txid = value["transaction_id"]
                    .as_str()
                    .ok_or("no transaction_id in the key package")?
                    .to_owned();
                mine.push((txid, uid));
            }
            issued.push(mine);
        }
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for ((station, http), mine) in clients.into_iter().zip(issued) {
            let url = format!("{base}/v1/audit/chain");
            tasks.spawn(async move {
                let mut latencies = Vec::with_capacity(mine.len());
                let mut errors = 0usize;
                let mut prev = [0u8; 32];
                for (i, (txid, uid)) in mine.into_iter().enumerate() {
                    let mut link = [0u8; 32];
                    rand::thread_rng().fill_bytes(&mut link);
                    let upload = serde_json::json!({
                        "seq": i + 1,
                        "prev_link": hex::encode_upper(prev),
                        "link": hex::encode_upper(link),
                        "kind": "outcome",
                        "record": {
                            "transaction_id": txid, "fob_uid": uid,
                            "timestamp_iso8601": "2026-11-22T14:32:01.123Z",
                            "overall_result": "SUCCESS", "stage_reached": "ZEROIZE",
                            "apdu_trace": [{"direction": "TX", "apdu_hex": "84E2000010"}],
                            "eol_station_id": station
                        }
                    });
                    let t0 = Instant::now();
                    let ok = match http.post(&url).json(&upload).send().await {
                        Ok(resp) => resp.status().as_u16() == 201 && resp.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    if ok {
                        latencies.push(t0.elapsed());
                        prev = link;
                    } else {
                        errors += 1;
                    }
                }
                (latencies, errors)
            });
        }
        collect(tasks, start, stations, Some(per_station * stations)).await
    })
}

/// Hostile connections of the limits benchmark: each holds a TCP connection
/// to `addr` open without completing a TLS handshake (every other one sends
/// a ClientHello header one byte per second), and reconnects one second after
/// the server closes it, until `stop` is set.
pub struct Attack {
    /// Attacker connections currently open (as seen by the attacker).
    pub open: Arc<AtomicUsize>,
    /// Connections the server closed (refused at the cap or timed out).
    pub closed_by_server: Arc<AtomicUsize>,
    /// Connect attempts that failed.
    pub connect_errors: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    tasks: tokio::task::JoinSet<()>,
}

impl Attack {
    /// Starts `connections` attacker tasks on the current runtime.
    pub fn start(addr: std::net::SocketAddr, connections: usize) -> Attack {
        use std::sync::atomic::AtomicBool;
        let open = Arc::new(AtomicUsize::new(0));
        let closed_by_server = Arc::new(AtomicUsize::new(0));
        let connect_errors = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..connections {
            let (open, closed, errors, stop) = (
                Arc::clone(&open),
                Arc::clone(&closed_by_server),
                Arc::clone(&connect_errors),
                Arc::clone(&stop),
            );
            tasks.spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                // TLS record header + handshake header of a ClientHello.
                const HELLO: [u8; 9] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC];
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut tcp) = tokio::net::TcpStream::connect(addr).await else {
                        errors.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    };
                    open.fetch_add(1, Ordering::Relaxed);
                    let mut sent = 0;
                    let mut buf = [0u8; 64];
                    loop {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let tick = tokio::time::sleep(Duration::from_secs(1));
                        tokio::select! {
                            r = tcp.read(&mut buf) => {
                                if matches!(r, Ok(0) | Err(_)) {
                                    closed.fetch_add(1, Ordering::Relaxed);
                                    break;
                                }
                            }
                            _ = tick => {
                                if i % 2 == 1 && sent < HELLO.len() {
                                    if tcp.write_all(&HELLO[sent..=sent]).await.is_err() {
                                        closed.fetch_add(1, Ordering::Relaxed);
                                        break;
                                    }
                                    sent += 1;
                                }
                            }
                        }
                    }
                    open.fetch_sub(1, Ordering::Relaxed);
                    drop(tcp);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
        }
        Attack {
            open,
            closed_by_server,
            connect_errors,
            stop,
            tasks,
        }
    }

    /// Stops the attack and closes every attacker connection.
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Resident set size of a process in KiB (Linux `/proc`; `None` elsewhere).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
