//! `sks bench-limits`: `sks serve` under a connection attack.
//!
//! Starts `sks serve --listen` on a throwaway SQLite store with its default limits, keeps
//! `clients` authenticated connections calling getDeviceInfo, and measures the call rate,
//! p50/p99 and the server's resident memory: quiet, then during two rounds in which an
//! attacker holds `connections` loopback connections open (half idle, half sending a token
//! frame one byte a second) and reconnects one second after the server drops one, then after
//! each round. A probe opens a fresh connection every 100 ms to show what a newcomer meets.

use anyhow::{bail, Context, Result};
use sks::net::{Client, TcpClient, Token};
use sks_core::api::{req, SksApi};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Kills and reaps the server when the bench ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        // Best effort: the child may have exited already.
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// One phase's figures.
struct Phase {
    calls: usize,
    errors: usize,
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Runs the bench and prints one row per phase.
pub fn run(connections: usize, clients: usize, seconds: u64) -> Result<()> {
    if clients == 0 {
        bail!("--clients must be at least 1");
    }
    raise_fd_limit(connections + clients + 64)?;
    let dir = bench_dir()?;
    let result = bench(&dir, connections, clients, Duration::from_secs(seconds));
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        eprintln!("bench directory {} not removed: {e}", dir.display());
    }
    result
}

fn bench_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("sks-bench-limits-{}", std::process::id()));
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn bench(dir: &std::path::Path, connections: usize, clients: usize, phase: Duration) -> Result<()> {
    let exe = std::env::current_exe()?;
    let db = dir.join("sks.db");
    let token_file = dir.join("token");
    let init = Command::new(&exe)
        .args(["init", "--db"])
        .arg(&db)
        .stdout(Stdio::null())
        .status()?;
    if !init.success() {
        bail!("sks init failed: {init}");
    }
    let token = Token::load_or_create(&token_file)?;
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let child = Command::new(&exe)
        .args(["serve", "--db"])
        .arg(&db)
        .args(["--listen", &addr.to_string(), "--token-file"])
        .arg(&token_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let _server = Server(child);
    let started = Instant::now();
    let mut pool = Vec::with_capacity(clients);
    while pool.len() < clients {
        match Client::connect_tcp(&addr.to_string(), &token) {
            Ok(c) => pool.push(c),
            Err(_) if started.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => bail!("sks serve did not come up on {addr}: {e}"),
        }
    }
    let rss = || rss_mib(pid).map_or("n/a".to_owned(), |m| format!("{m:.1}"));
    println!("sks serve defaults: 32 connections, 10 s per token or frame, 60 s idle");
    println!(
        "phase                      calls errors  calls/s   p50_ms   p99_ms   rss_MiB  newcomers"
    );
    let row = |label: &str, p: &Phase, rss: String, probe: &str| {
        println!(
            "{label:<24} {:>8} {:>6} {:>8.0} {:>8.3} {:>8.3} {:>9} {:>10}",
            p.calls, p.errors, p.per_sec, p.p50_ms, p.p99_ms, rss, probe
        );
    };
    let warm = calls(&mut pool, phase);
    row("warm-up", &warm, rss(), "");
    let (quiet, probe) = with_probe(addr, &token, || calls(&mut pool, phase));
    row("quiet", &quiet, rss(), &probe);
    let mut worst = f64::INFINITY;
    let mut failed = warm.errors + quiet.errors;
    for round in 1..=2 {
        let attack = Attack::start(addr, connections);
        // Every attacker connection is tried once before measuring.
        let ramp = Instant::now();
        while !attack.counters.ramped.load(Ordering::Relaxed)
            && ramp.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        let ramp_time = ramp.elapsed();
        let ramp_open = attack.counters.open.load(Ordering::Relaxed);
        let peak = Arc::new(AtomicUsize::new(0));
        let sampling = Arc::new(AtomicBool::new(true));
        let sampler = {
            let (peak, sampling) = (Arc::clone(&peak), Arc::clone(&sampling));
            std::thread::spawn(move || {
                while sampling.load(Ordering::Relaxed) {
                    let kib = rss_mib(pid).map_or(0, |m| (m * 1024.0) as usize);
                    peak.fetch_max(kib, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(250));
                }
            })
        };
        let (under, probe) = with_probe(addr, &token, || calls(&mut pool, phase));
        sampling.store(false, Ordering::Relaxed);
        sampler.join().ok();
        let peak_mib = peak.load(Ordering::Relaxed) as f64 / 1024.0;
        row(
            &format!("attack #{round} ({connections})"),
            &under,
            format!("{peak_mib:.1} peak"),
            &probe,
        );
        let c = attack.stop();
        println!(
            "  attacker: {ramp_open} connections open after its first pass ({:.1} s); during the phase {} connects, {} closed by the server, {} connect errors",
            ramp_time.as_secs_f64(),
            c.connects.load(Ordering::Relaxed),
            c.closed.load(Ordering::Relaxed),
            c.errors.load(Ordering::Relaxed)
        );
        worst = worst.min(under.per_sec);
        let (after, probe) = with_probe(addr, &token, || calls(&mut pool, phase));
        row(&format!("after #{round}"), &after, rss(), &probe);
        failed += under.errors + after.errors;
    }
    println!(
        "  established clients under attack: {:.0} % of the quiet rate (worst round)",
        100.0 * worst / quiet.per_sec.max(1e-9)
    );
    if failed > 0 {
        bail!("{failed} calls of established clients failed");
    }
    Ok(())
}

/// Every client calls getDeviceInfo in a loop for `phase`, on its own thread.
fn calls(pool: &mut [TcpClient], phase: Duration) -> Phase {
    let start = Instant::now();
    let mut latencies = Vec::new();
    let mut errors = 0;
    std::thread::scope(|s| {
        let workers: Vec<_> = pool
            .iter_mut()
            .map(|c| {
                s.spawn(move || {
                    let mut lat = Vec::new();
                    let mut err = 0usize;
                    while start.elapsed() < phase {
                        let t = Instant::now();
                        match c.get_device_info(req::GetDeviceInfo {}) {
                            Ok(_) => lat.push(t.elapsed()),
                            Err(_) => err += 1,
                        }
                    }
                    (lat, err)
                })
            })
            .collect();
        for w in workers {
            if let Ok((lat, err)) = w.join() {
                latencies.extend(lat);
                errors += err;
            }
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    Phase {
        calls: latencies.len(),
        errors,
        per_sec: latencies.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}

/// Runs `f` while a newcomer tries a fresh connection (token + getDeviceInfo) every 100 ms;
/// returns `f`'s result and "served/tried" for the newcomer.
fn with_probe<T>(addr: SocketAddr, token: &Token, f: impl FnOnce() -> T) -> (T, String) {
    let stop = AtomicBool::new(false);
    let (tried, served) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                tried.fetch_add(1, Ordering::Relaxed);
                let served_now = match Client::connect_tcp(&addr.to_string(), token) {
                    Ok(mut c) => c.get_device_info(req::GetDeviceInfo {}).is_ok(),
                    Err(_) => false,
                };
                if served_now {
                    served.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let out = f();
        stop.store(true, Ordering::Relaxed);
        out
    });
    let probe = format!("{}/{}", served.into_inner(), tried.into_inner());
    (out, probe)
}

/// The attacker's counters, shared with its thread.
#[derive(Default)]
struct Counters {
    /// Every connection was tried once.
    ramped: AtomicBool,
    /// Connections open now.
    open: AtomicUsize,
    /// Successful connects in all.
    connects: AtomicUsize,
    /// Connections the server closed.
    closed: AtomicUsize,
    /// Connect attempts that failed.
    errors: AtomicUsize,
    stop: AtomicBool,
}

/// The attacker: `connections` loopback connections that never authenticate; every other
/// one sends a token frame one byte a second. A connection the server closes is reopened
/// one second later.
struct Attack {
    counters: Arc<Counters>,
    thread: JoinHandle<()>,
}

impl Attack {
    fn start(addr: SocketAddr, connections: usize) -> Attack {
        let counters = Arc::new(Counters::default());
        let thread = {
            let c = Arc::clone(&counters);
            std::thread::spawn(move || attack(addr, connections, &c))
        };
        Attack { counters, thread }
    }

    /// Stops the attacker and closes its connections.
    fn stop(self) -> Arc<Counters> {
        self.counters.stop.store(true, Ordering::Relaxed);
        self.thread.join().ok();
        self.counters
    }
}

fn attack(addr: SocketAddr, n: usize, c: &Counters) {
    // A frame announcing a 64-byte token, of which the slow half sends a byte a second.
    const SLOW: [u8; 12] = [0, 0, 0, 64, b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h'];
    let mut conns: Vec<Option<(TcpStream, usize)>> = (0..n).map(|_| None).collect();
    let mut due = vec![Instant::now(); n];
    let mut last_byte = Instant::now();
    let mut buf = [0u8; 512];
    while !c.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let send_byte = now.duration_since(last_byte) >= Duration::from_secs(1);
        if send_byte {
            last_byte = now;
        }
        for (i, slot) in conns.iter_mut().enumerate() {
            if c.stop.load(Ordering::Relaxed) {
                break;
            }
            let Some((stream, sent)) = slot else {
                if now >= due[i] {
                    match TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                        .and_then(|s| s.set_nonblocking(true).map(|()| s))
                    {
                        Ok(s) => {
                            *slot = Some((s, 0));
                            c.open.fetch_add(1, Ordering::Relaxed);
                            c.connects.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            c.errors.fetch_add(1, Ordering::Relaxed);
                            due[i] = now + Duration::from_secs(1);
                        }
                    }
                }
                continue;
            };
            let mut gone = loop {
                match stream.read(&mut buf) {
                    Ok(0) => break true,
                    Ok(_) => continue,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                    Err(_) => break true,
                }
            };
            if !gone && send_byte && i % 2 == 1 && *sent < SLOW.len() {
                gone = match stream.write(&SLOW[*sent..=*sent]) {
                    Ok(_) => {
                        *sent += 1;
                        false
                    }
                    Err(e) => e.kind() != ErrorKind::WouldBlock,
                };
            }
            if gone {
                *slot = None;
                c.open.fetch_sub(1, Ordering::Relaxed);
                c.closed.fetch_add(1, Ordering::Relaxed);
                due[i] = now + Duration::from_secs(1);
            }
        }
        c.ramped.store(true, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The server's resident set in MiB (Linux `/proc`; `None` elsewhere).
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// The attacker needs a descriptor per connection.
#[cfg(unix)]
fn raise_fd_limit(needed: usize) -> Result<()> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let needed = needed as u64;
    if soft >= needed {
        return Ok(());
    }
    if hard < needed {
        bail!("this bench needs {needed} open files; the hard limit is {hard}");
    }
    setrlimit(Resource::RLIMIT_NOFILE, needed, hard)?;
    Ok(())
}

#[cfg(not(unix))]
fn raise_fd_limit(_: usize) -> Result<()> {
    Ok(())
}
