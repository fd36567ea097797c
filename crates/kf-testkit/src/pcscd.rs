//! A private `pcscd` with the vsmartcard vpcd driver.
//!
//! ```text
//! Pcscd::start(dir) ─▶ writes dir/reader.conf.d/vpcd (ports P, P+1)
//!                  ─▶ spawns `pcscd --foreground --info -c dir/reader.conf.d`
//!                  ─▶ waits until PC/SC lists "Virtual PCD 00 00" / "… 00 01"
//! vpcd bridge (kf_transport::vpcd) ──TCP 127.0.0.1:P──▶ slot 0 of that pcscd
//! ```
//!
//! pcsc-lite 1.9 always uses `/run/pcscd/pcscd.comm`, so only one pcscd can
//! run on a machine: `start` waits for another one to go away and fails with a
//! clear message if it does not. The daemon is stopped by its PID (SIGTERM,
//! then SIGKILL) on [`Pcscd::stop`] or drop. Unix only; needs permission to
//! create `/run/pcscd` (root in CI).
//!
//! Environment overrides: `KF_PCSCD` (daemon binary), `KF_VPCD_DRIVER`
//! (path of `libifdvpcd.so`).

use std::fs;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use kf_transport::pcsc::PcscContext;

/// Prefix of the reader names vpcd registers (`FRIENDLYNAME` in the config).
pub const VPCD_READER_PREFIX: &str = "Virtual PCD";
const PID_FILE: &str = "/run/pcscd/pcscd.pid";

/// The `FRIENDLYNAME` of vpcd entry `n`: `Virtual PCD`, then `Virtual PCD
/// B`, `Virtual PCD C`, … (all start with [`VPCD_READER_PREFIX`]).
fn entry_name(n: usize) -> String {
    match n {
        0 => VPCD_READER_PREFIX.to_string(),
        n => format!(
            "{VPCD_READER_PREFIX} {}",
            char::from(b'A' + u8::try_from(n % 26).unwrap_or(0))
        ),
    }
}

fn other(msg: String) -> io::Error {
    io::Error::other(msg)
}

fn find_file(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Some(PathBuf::from(p));
    }
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// Path of the pcscd binary (`KF_PCSCD` or the usual sbin locations / PATH).
pub fn find_pcscd() -> Option<PathBuf> {
    find_file(
        "KF_PCSCD",
        &["/usr/sbin/pcscd", "/usr/local/sbin/pcscd", "/sbin/pcscd"],
    )
    .or_else(|| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("pcscd"))
                .find(|p| p.is_file())
        })
    })
}

/// Path of the vpcd IFD handler (`KF_VPCD_DRIVER` or the Debian location).
pub fn find_vpcd_driver() -> Option<PathBuf> {
    find_file(
        "KF_VPCD_DRIVER",
        &[
            "/usr/lib/pcsc/drivers/serial/libifdvpcd.so",
            "/usr/local/lib/pcsc/drivers/serial/libifdvpcd.so",
            "/usr/lib64/pcsc/drivers/serial/libifdvpcd.so",
        ],
    )
}

/// Finds a port P on 127.0.0.1 such that P and P+1 are free (vpcd slot 0 and 1).
pub fn free_port_pair() -> io::Result<u16> {
    for _ in 0..50 {
        let first = TcpListener::bind("127.0.0.1:0")?;
        let port = first.local_addr()?.port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Ok(port);
        }
    }
    Err(other("no free pair of TCP ports found".into()))
}

fn running_pcscd_pid() -> Option<u32> {
    let pid: u32 = fs::read_to_string(PID_FILE).ok()?.trim().parse().ok()?;
    // A zombie (exited, not yet reaped) holds no socket.
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let state = stat.rsplit(')').next()?.split_whitespace().next()?;
    (state != "Z").then_some(pid)
}

/// A pcscd process started by this harness.
#[derive(Debug)]
pub struct Pcscd {
    child: Option<Child>,
    pcscd: PathBuf,
    conf_dir: PathBuf,
    log_path: PathBuf,
    /// The first port of each vpcd entry (slots `2n` and `2n + 1`).
    ports: Vec<u16>,
    readers: usize,
}

impl Pcscd {
    /// Starts pcscd with vpcd slots on `port` and `port + 1`, configuration and
    /// log under `work_dir`, and waits until both virtual readers are listed.
    pub fn start(work_dir: &Path, port: u16) -> io::Result<Self> {
        Self::start_entries(work_dir, &[port])
    }

    /// Starts pcscd with at least `slots` vpcd slots (one vpcd entry, two
    /// slots, per free port pair): slot `n` is reader `Virtual PCD EE SS`
    /// with `EE = n / 2`, `SS = n % 2`.
    pub fn start_slots(work_dir: &Path, slots: usize) -> io::Result<Self> {
        let mut ports: Vec<u16> = Vec::new();
        while ports.len() < slots.div_ceil(2).max(1) {
            // Each pair is free on its own; it must not overlap another.
            let port = free_port_pair()?;
            if ports.iter().all(|p| port.abs_diff(*p) > 1) {
                ports.push(port);
            }
        }
        Self::start_entries(work_dir, &ports)
    }

    fn start_entries(work_dir: &Path, ports: &[u16]) -> io::Result<Self> {
        let pcscd = find_pcscd().ok_or_else(|| {
            other("pcscd not found: install the `pcscd` package (or set KF_PCSCD)".into())
        })?;
        let driver = find_vpcd_driver().ok_or_else(|| {
            other(
                "libifdvpcd.so not found: install `vsmartcard-vpcd` (or set KF_VPCD_DRIVER)".into(),
            )
        })?;
        let conf_dir = work_dir.join("reader.conf.d");
        fs::create_dir_all(&conf_dir)?;
        // DEVICENAME /dev/null:PORT puts the driver in server mode on PORT
        // (slot n listens on PORT + n), like the package's own config.
        // Each entry after the first gets a name of its own, so that its
        // readers' names say which ports they use.
        // The vpcd driver keeps its two slots in globals, so every entry
        // after the first loads its own copy of the library.
        for (n, port) in ports.iter().enumerate() {
            let library = match n {
                0 => driver.clone(),
                n => {
                    let copy = work_dir.join(format!("libifdvpcd-{n}.so"));
                    fs::copy(&driver, &copy)?;
                    copy
                }
            };
            let conf = format!(
                "FRIENDLYNAME \"{}\"\nDEVICENAME   /dev/null:0x{port:04X}\nLIBPATH      {}\nCHANNELID    0x{port:04X}\n",
                entry_name(n),
                library.display()
            );
            fs::write(conf_dir.join(format!("vpcd{n}")), conf)?;
        }
        let mut daemon = Self {
            child: None,
            pcscd,
            conf_dir,
            log_path: work_dir.join("pcscd.log"),
            ports: ports.to_vec(),
            readers: 2 * ports.len(),
        };
        daemon.spawn()?;
        Ok(daemon)
    }

    /// Starts pcscd with an empty reader configuration (no readers at all).
    pub fn start_without_readers(work_dir: &Path) -> io::Result<Self> {
        let pcscd = find_pcscd().ok_or_else(|| {
            other("pcscd not found: install the `pcscd` package (or set KF_PCSCD)".into())
        })?;
        let conf_dir = work_dir.join("empty.conf.d");
        fs::create_dir_all(&conf_dir)?;
        let mut daemon = Self {
            child: None,
            pcscd,
            conf_dir,
            log_path: work_dir.join("pcscd.log"),
            ports: Vec::new(),
            readers: 0,
        };
        daemon.spawn()?;
        Ok(daemon)
    }

    fn spawn(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(pid) = running_pcscd_pid() {
            if Instant::now() > deadline {
                return Err(other(format!(
                    "another pcscd (pid {pid}) is running and holds /run/pcscd/pcscd.comm; \
                     stop it before running the pcscd + vpcd tests"
                )));
            }
            thread::sleep(Duration::from_millis(200));
        }
        fs::create_dir_all("/run/pcscd")
            .map_err(|e| other(format!("cannot create /run/pcscd (run as root?): {e}")))?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)?;
        let child = Command::new(&self.pcscd)
            .arg("--foreground")
            .arg("--info")
            .arg("-c")
            .arg(&self.conf_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| other(format!("cannot start {}: {e}", self.pcscd.display())))?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(15))
    }

    fn wait_ready(&mut self, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    return Err(other(format!(
                        "pcscd exited at startup ({status}); log:\n{}",
                        self.log_tail()
                    )));
                }
            }
            let listed = PcscContext::establish()
                .and_then(|ctx| ctx.list_readers())
                .map(|names| {
                    names
                        .iter()
                        .filter(|n| n.starts_with(VPCD_READER_PREFIX))
                        .count()
                });
            if matches!(listed, Ok(n) if n >= self.readers) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(other(format!(
                    "pcscd did not list the vpcd readers in time; log:\n{}",
                    self.log_tail()
                )));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Last lines of the daemon log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// PID of the running daemon.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `127.0.0.1:port` of vpcd slot `slot`.
    pub fn vpcd_addr(&self, slot: u16) -> String {
        let first = self.ports.get(usize::from(slot / 2)).copied().unwrap_or(0);
        format!("127.0.0.1:{}", first + slot % 2)
    }

    /// PC/SC name of vpcd slot `slot`.
    pub fn reader_name(&self, slot: u8) -> String {
        format!("{} 00 {:02X}", entry_name(usize::from(slot / 2)), slot % 2)
    }

    /// Number of vpcd slots.
    pub fn slots(&self) -> usize {
        self.readers
    }

    /// Stops the daemon by PID: SIGTERM, then SIGKILL after 5 s.
    pub fn stop(&mut self) -> io::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id();
        // std has no SIGTERM; pcscd cleans /run/pcscd only on SIGTERM/SIGINT.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// Stops and starts the daemon again with the same configuration.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop()?;
        self.spawn()
    }
}

impl Drop for Pcscd {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
