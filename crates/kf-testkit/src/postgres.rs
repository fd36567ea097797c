//! A throwaway PostgreSQL server for tests: `initdb` and `pg_ctl` on a
//! temporary directory, loopback on a random port plus a Unix socket in that
//! directory, trust authentication for one superuser, stopped by PID (fast
//! shutdown, SIGINT) when the last handle is dropped.
//!
//! PostgreSQL refuses to run as root: when the tests run as root, the data
//! directory is handed to the system user `postgres` (created by the Debian
//! package) and every server command runs through `runuser -u postgres`.
//!
//! Binaries: `$KF_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`
//! (Debian's `postgresql` package).

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Superuser the tests connect as.
pub const SUPERUSER: &str = "kf";

fn other(msg: String) -> io::Error {
    io::Error::other(msg)
}

/// The directory holding `initdb`, `pg_ctl` and `psql`.
pub fn find_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("KF_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// Writes a file readable by its owner only (PostgreSQL refuses a key file
/// that others can read).
fn write_owner_only(path: &Path, text: &str) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn checked(what: &str, output: io::Result<Output>) -> io::Result<Output> {
    let output = output.map_err(|e| other(format!("{what}: {e}")))?;
    if !output.status.success() {
        return Err(other(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(output)
}

/// A running PostgreSQL server.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres_user: bool,
    port: u16,
    pid: u32,
    next_db: Mutex<u32>,
}

impl Postgres {
    /// Initializes a cluster in a new temporary directory and starts it.
    pub fn start() -> io::Result<Postgres> {
        Self::start_with(None)
    }

    /// A server that accepts TCP connections only over TLS (`hostssl` in
    /// `pg_hba.conf`, `ssl = on`) with the given certificate chain and key.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> io::Result<Postgres> {
        Self::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> io::Result<Postgres> {
        let bin = find_bin_dir().ok_or_else(|| {
            other("PostgreSQL not found (install Debian's postgresql or set KF_PG_BIN)".into())
        })?;
        let dir = tempfile::Builder::new().prefix("kf-pg-").tempdir()?;
        let as_postgres_user = is_root();
        if let Some((cert, key)) = tls {
            std::fs::write(dir.path().join("server.crt"), cert)?;
            write_owner_only(&dir.path().join("server.key"), key)?;
        }
        if as_postgres_user {
            checked(
                "chown postgres",
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(dir.path())
                    .output(),
            )?;
        }
        let mut pg = Postgres {
            dir,
            bin,
            as_postgres_user,
            port: 0,
            pid: 0,
            next_db: Mutex::new(0),
        };
        let data = pg.data_dir();
        checked(
            "initdb",
            pg.command("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync"])
                .output(),
        )?;
        // A free port can be taken between the probe and the start: retry.
        let mut ssl = String::new();
        if tls.is_some() {
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
            )?;
            ssl = format!(
                " -c ssl=on -c ssl_cert_file={0}/server.crt -c ssl_key_file={0}/server.key",
                pg.dir.path().display()
            );
        }
        let mut last = String::new();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 \
                 -c fsync=off -c synchronous_commit=off -c full_page_writes=off{ssl}",
                pg.dir.path().display()
            );
            let started = pg
                .command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(pg.dir.path().join("server.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"])
                .output();
            match checked("pg_ctl start", started) {
                Ok(_) => {
                    pg.port = port;
                    pg.pid = pg.read_pid()?;
                    return Ok(pg);
                }
                Err(e) => last = format!("{e}\n{}", pg.log_tail()),
            }
        }
        Err(other(last))
    }

    /// One server shared by the tests of a process while any of them holds
    /// it; started again if a later test comes after the last one dropped it.
    pub fn shared() -> io::Result<Arc<Postgres>> {
        static SHARED: Mutex<Weak<Postgres>> = Mutex::new(Weak::new());
        let mut slot = SHARED.lock().map_err(|_| other("poisoned".into()))?;
        if let Some(pg) = slot.upgrade() {
            return Ok(pg);
        }
        let pg = Arc::new(Postgres::start()?);
        *slot = Arc::downgrade(&pg);
        Ok(pg)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn read_pid(&self) -> io::Result<u32> {
        let text = std::fs::read_to_string(self.data_dir().join("postmaster.pid"))?;
        text.lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| other("postmaster.pid has no PID".into()))
    }

    /// The last lines of the server log (for failure messages).
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The server's TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's PID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The directory holding the server's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A connection URL (key=value form) for `dbname` over TCP on loopback.
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={SUPERUSER} dbname={dbname}",
            self.port
        )
    }

    /// Creates a new empty database and returns its URL (each test its own).
    pub fn fresh_database(&self) -> io::Result<String> {
        let n = {
            let mut next = self.next_db.lock().map_err(|_| other("poisoned".into()))?;
            *next += 1;
            *next
        };
        let name = format!("kf_test_{n}");
        checked(
            "createdb",
            self.command("createdb")
                .args(["-h"])
                .arg(self.socket_dir())
                .args(["-p", &self.port.to_string(), "-U", SUPERUSER, &name])
                .output(),
        )?;
        Ok(self.url(&name))
    }

    /// Fast shutdown (SIGINT to the postmaster) and wait until it is gone.
    pub fn stop(&mut self) -> io::Result<()> {
        if self.pid == 0 {
            return Ok(());
        }
        checked(
            "kill -INT",
            Command::new("kill")
                .args(["-INT", &self.pid.to_string()])
                .output(),
        )?;
        let pid_file = self.data_dir().join("postmaster.pid");
        let deadline = Instant::now() + Duration::from_secs(30);
        while pid_file.exists() {
            if Instant::now() > deadline {
                return Err(other(format!(
                    "PostgreSQL (PID {}) did not stop within 30 s",
                    self.pid
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.pid = 0;
        Ok(())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("stopping the test PostgreSQL: {e}");
        }
    }
}
