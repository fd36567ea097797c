//! The operator console in a real browser: `demo --console` on loopback,
//! headless Chromium through chromedriver. The tiles appear idle, turn PASS
//! once the fobs run, and the page's counters match `/metrics`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use kf_testkit::browser::{wait_for, Browser};
use serde_json::Value;

/// Virtual readers of the demo.
const READERS: usize = 2;
/// Fobs per reader.
const FOBS: usize = 4;
const TIMEOUT: Duration = Duration::from_secs(60);

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The demo with its console, held until stdin says go.
struct Demo {
    child: Child,
    url: String,
}

impl Demo {
    fn start(
        data_dir: &std::path::Path,
        readers: usize,
    ) -> Result<Demo, Box<dyn std::error::Error>> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kf-station"));
        command
            .args(["demo", "--console", "127.0.0.1:0", "--console-hold"])
            .arg("--fobs")
            .arg((FOBS * readers).to_string())
            .arg("--data-dir")
            .arg(data_dir);
        if readers > 1 {
            // Fobs at the speed of a real link, so every reader gets some.
            command.arg("--readers").arg(readers.to_string());
            command.args(["--link", "848k"]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("demo stdout not captured")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("console: ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let mut demo = Demo {
            child,
            url: String::new(),
        };
        demo.url = rx
            .recv_timeout(TIMEOUT)
            .map_err(|_| "the demo did not print its console address")?;
        Ok(demo)
    }

    /// Lets the fobs run (the demo waits for a line on stdin).
    fn go(&mut self) -> std::io::Result<()> {
        let stdin = self
            .child
            .stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no stdin"))?;
        stdin.write_all(b"\n")?;
        stdin.flush()
    }

    /// Closes stdin (the console stops) and waits for the exit status.
    fn finish(mut self) -> Result<std::process::ExitStatus, Box<dyn std::error::Error>> {
        drop(self.child.stdin.take());
        let status = wait_for("the demo to exit", TIMEOUT, || {
            Ok(self.child.try_wait()?.ok_or_else(|| "running".to_owned()))
        })?;
        Ok(status)
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What the page shows: per tile (reader, state, big word, tile counts) and the shift counters.
const READ_PAGE: &str = r#"
const tiles = Array.from(document.querySelectorAll('.tile')).map(t => ({
  reader: t.dataset.reader,
  state: t.dataset.state,
  word: t.querySelector('.word').textContent,
  count: t.querySelector('.count').textContent,
}));
return {
  tiles,
  good: document.getElementById('good').textContent,
  failed: document.getElementById('failed').textContent,
  recent: document.querySelectorAll('#recent tbody tr').length,
  medians: document.querySelectorAll('#medians tbody tr').length,
  live: document.getElementById('link').className,
};
"#;

/// `kf_station_fobs_total` by (reader, outcome).
fn fobs_metric(text: &str) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("kf_station_fobs_total{"))
    {
        let (labels, value) = line.split_once("} ").unwrap_or((line, ""));
        let label = |name: &str| {
            labels
                .split(&format!("{name}=\""))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or("")
                .to_owned()
        };
        out.insert(
            (label("reader"), label("outcome")),
            value.trim().parse().unwrap_or(u64::MAX),
        );
    }
    out
}

#[test]
fn tiles_turn_pass_and_counters_match_metrics() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut demo = Demo::start(dir.path(), READERS)?;
    let http = reqwest::blocking::Client::builder()
        .timeout(TIMEOUT)
        .build()?;
    assert_eq!(
        http.get(format!("{}healthz", demo.url)).send()?.text()?,
        "ok\n"
    );
    // GET only: a POST is refused.
    assert_eq!(
        http.post(format!("{}metrics", demo.url))
            .body("x")
            .send()?
            .status(),
        405
    );

    let browser = Browser::start()?;
    browser.goto(&demo.url)?;
    // Before any fob: one IDLE tile per reader, live.
    let page = wait_for("idle tiles", TIMEOUT, || {
        let page = browser.eval(READ_PAGE)?;
        let tiles = page["tiles"].as_array().map(Vec::len).unwrap_or(0);
        let idle = page["tiles"].as_array().is_some_and(|t| {
            t.iter()
                .all(|t| t["state"] == "idle" && t["word"] == "IDLE")
        });
        Ok(if tiles == READERS && idle && page["live"] == "link up" {
            Ok(page)
        } else {
            Err(page.to_string())
        })
    })?;
    assert_eq!(page["good"], "0");

    demo.go()?;
    let total = FOBS * READERS;
    let page = wait_for("every tile to show PASS", TIMEOUT, || {
        let page = browser.eval(READ_PAGE)?;
        let all_pass = page["tiles"].as_array().is_some_and(|t| {
            t.len() == READERS
                && t.iter()
                    .all(|t| t["state"] == "pass" && t["word"] == "PASS")
        });
        Ok(
            if all_pass && page["good"].as_str() == Some(total.to_string().as_str()) {
                Ok(page)
            } else {
                Err(page.to_string())
            },
        )
    })?;
    assert_eq!(page["failed"], "0", "{page}");
    assert_eq!(page["recent"], Value::from(total.min(50)), "{page}");
    assert!(page["medians"].as_u64().unwrap_or(0) > 0, "{page}");

    // The page's counters are the metrics' counters.
    let metrics = http.get(format!("{}metrics", demo.url)).send()?.text()?;
    let fobs = fobs_metric(&metrics);
    let tiles = page["tiles"].as_array().ok_or("no tiles")?;
    let mut metric_pass = 0;
    for tile in tiles {
        let reader = tile["reader"]
            .as_str()
            .ok_or("tile without reader")?
            .to_owned();
        let pass = fobs
            .get(&(reader.clone(), "pass".into()))
            .copied()
            .unwrap_or(0);
        let fail = fobs
            .get(&(reader.clone(), "fail".into()))
            .copied()
            .unwrap_or(0);
        assert_eq!(
            tile["count"].as_str().unwrap_or(""),
            format!("\u{2714} {pass}   \u{2716} {fail}"),
            "tile {reader} vs /metrics:\n{metrics}"
        );
        metric_pass += pass;
    }
    assert_eq!(
        metric_pass.to_string(),
        page["good"].as_str().unwrap_or(""),
        "{metrics}"
    );
    assert!(
        metrics.contains("kf_station_stage_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(metrics.contains("kf_station_upload_backlog"), "{metrics}");
    assert!(
        metrics.contains("kf_station_klms_errors_total 0"),
        "{metrics}"
    );

    drop(browser);
    let status = demo.finish()?;
    assert!(status.success(), "demo exited with {status}");
    Ok(())
}
