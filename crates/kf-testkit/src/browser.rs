//! Headless Chromium for browser tests, driven through chromedriver's W3C
//! WebDriver HTTP API (W3C WebDriver, §8 sessions, §10.1 Navigate To,
//! §13.2.1 Execute Script). Debian: `chromium` and `chromium-driver`
//! (installed by `scripts/setup-deps.sh`); `KF_CHROMIUM` and
//! `KF_CHROMEDRIVER` name other binaries.
//!
//! ```text
//! test ──HTTP (loopback, port chosen by chromedriver)──▶ chromedriver ──▶ chromium --headless
//! ```
//!
//! chromedriver runs as a child process and is killed (by its handle) and
//! reaped on drop; the browser profile lives in a temporary directory.

use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long chromedriver and the browser get to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn binary(env: &str, default: &str) -> io::Result<PathBuf> {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    if path.is_file() {
        Ok(path)
    } else {
        Err(io::Error::other(format!(
            "{} not found (set {env}, or install chromium and chromium-driver: scripts/setup-deps.sh)",
            path.display()
        )))
    }
}

/// A headless Chromium session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::blocking::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a port of its choosing and opens a headless
    /// Chromium session.
    pub fn start() -> io::Result<Browser> {
        let chromium = binary("KF_CHROMIUM", "/usr/bin/chromium")?;
        let chromedriver = binary("KF_CHROMEDRIVER", "/usr/bin/chromedriver")?;
        let profile = tempfile::tempdir()?;
        let mut driver = Command::new(chromedriver)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = driver
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("chromedriver stdout not captured"))?;
        let (tx, rx) = mpsc::channel();
        // Reads the port from the banner, then keeps draining the pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    let _ = tx.send(rest.trim_end_matches('.').trim().to_owned());
                }
            }
        });
        let port = match rx.recv_timeout(START_TIMEOUT) {
            Ok(port) => port,
            Err(_) => {
                let _ = driver.kill();
                let _ = driver.wait();
                return Err(io::Error::other(
                    "chromedriver did not report its port in time",
                ));
            }
        };
        let http = reqwest::blocking::Client::builder()
            .timeout(START_TIMEOUT)
            .build()
            .map_err(io::Error::other)?;
        let mut browser = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            http,
            _profile: profile,
        };
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": [
                        "--headless=new",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-dev-shm-usage",
                        "--no-first-run",
                        format!("--user-data-dir={}", browser._profile.path().display()),
                    ],
                },
            }},
        });
        let created = browser.call("POST", "/session", Some(capabilities))?;
        browser.session = created
            .get("sessionId")
            .and_then(Value::as_str)
            .ok_or_else(|| io::Error::other(format!("no session id in {created}")))?
            .to_owned();
        Ok(browser)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> io::Result<Value> {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "POST" => self
                .http
                .post(&url)
                .json(&body.unwrap_or_else(|| json!({}))),
            "DELETE" => self.http.delete(&url),
            _ => self.http.get(&url),
        };
        let response = request.send().map_err(io::Error::other)?;
        let status = response.status();
        let answer: Value = response.json().map_err(io::Error::other)?;
        let value = answer.get("value").cloned().unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(io::Error::other(format!(
                "WebDriver {method} {path}: HTTP {status}: {value}"
            )));
        }
        Ok(value)
    }

    /// Loads `url` (waits for the document's load event).
    pub fn goto(&self, url: &str) -> io::Result<()> {
        let path = format!("/session/{}/url", self.session);
        self.call("POST", &path, Some(json!({ "url": url })))
            .map(|_| ())
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub fn eval(&self, script: &str) -> io::Result<Value> {
        let path = format!("/session/{}/execute/sync", self.session);
        self.call("POST", &path, Some(json!({ "script": script, "args": [] })))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            // Best effort: killing chromedriver below ends the browser anyway.
            let _ = self.call("DELETE", &path, None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Calls `probe` until it returns `Ok(value)`, at most `timeout` in all.
/// `Err(seen)` means "not yet"; the last `seen` goes into the timeout error,
/// which names `what`.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> io::Result<Result<T, String>>,
) -> io::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = match probe()? {
            Ok(value) => return Ok(value),
            Err(seen) => seen,
        };
        if Instant::now() >= deadline {
            return Err(io::Error::other(format!(
                "timed out after {timeout:?} waiting for {what}; last seen: {seen}"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
