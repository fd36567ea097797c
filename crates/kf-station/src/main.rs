//! `kf-station`: the end-of-line key-fob station.
//!
//! ```text
//!  reader/sim ─▶ source (dev | container | klms) ─▶ kf-perso pipeline ─▶ audit journal ─▶ KLMS
//! ```
//!
//! The binary only parses arguments and prints; the libraries own the logic.
//! No crate may depend on it.
//!
//! The default `sim` feature adds the virtual fob (`kf-card`), the embedded
//! reference KLMS of `demo` (`kf-klms`) and `bench` (`kf-bench`). A factory
//! build (`--no-default-features --features pcsc`) links none of them; its
//! `demo`, `self-test`, `sim`, `bench` and `provision --sim` exit 2 and say
//! how to get them.

#[macro_use]
mod out;

mod cmd;
mod config;
mod console;
mod journal;
mod klms;
mod line;
mod paths;
mod reader;
mod station;
#[cfg(feature = "test-hooks")]
mod test_hooks;
mod text;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes (documented in the README).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A fob failed (pipeline error) or a check failed.
    pub const FAILED: u8 = 1;
    /// Bad input: arguments, config, files, JSON. The same code clap uses for
    /// its own usage errors, so every refused invocation exits alike.
    pub const BAD_INPUT: u8 = 2;
    /// Standard output was a pipe whose reader went away (`| head -1`):
    /// 128 + SIGPIPE, see [`crate::out`].
    pub const BROKEN_PIPE: u8 = 141;
}

#[derive(Parser)]
#[command(
    name = "kf-station",
    version,
    about = "Key-fob end-of-line provisioning station (GlobalPlatform SCP03)"
)]
struct Cli {
    /// Log format on stderr: human or json (level from RUST_LOG, default warn).
    #[arg(long, global = true, default_value = "human", value_parser = ["human", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

/// Logs go to stderr so that `--json` output on stdout stays parseable.
fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Fails only when a subscriber is already installed (a test harness's): keep that one.
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

#[derive(Subcommand)]
enum Command {
    /// Provision N in-process virtual fobs end to end and summarize (the main job).
    #[cfg(feature = "sim")]
    Demo(cmd::demo::DemoArgs),
    /// Not in this factory build (needs the `sim` feature): virtual fobs end to end.
    #[cfg(not(feature = "sim"))]
    Demo(cmd::sim_only::NotInThisBuild),
    /// The full pipeline against an in-process virtual fob (quick check).
    #[cfg(feature = "sim")]
    SelfTest,
    /// Not in this factory build (needs the `sim` feature): pipeline self-test.
    #[cfg(not(feature = "sim"))]
    SelfTest(cmd::sim_only::NotInThisBuild),
    /// Provision one fob (reader or --sim).
    Provision(cmd::provision::StationArgs),
    /// The station loop: wait for a fob, provision, wait for removal, next.
    Run(cmd::run::RunArgs),
    /// End-to-end throughput against the transport floor.
    #[cfg(feature = "sim")]
    Bench(cmd::bench::BenchArgs),
    /// Not in this factory build (needs the `sim` feature): end-to-end benchmark.
    #[cfg(not(feature = "sim"))]
    Bench(cmd::sim_only::NotInThisBuild),
    /// Read and check the durable audit journal.
    #[command(subcommand)]
    Audit(cmd::audit::AuditCommand),
    /// Synthetic container packages.
    #[command(subcommand)]
    Fixtures(cmd::fixtures::FixturesCommand),
    /// Offline SCP03 tools.
    #[command(subcommand)]
    Scp03(cmd::scp03::Scp03Command),
    /// Virtual key fobs for tests and dry runs.
    #[cfg(feature = "sim")]
    #[command(subcommand)]
    Sim(cmd::sim::SimCommand),
    /// Not in this factory build (needs the `sim` feature): virtual key fobs.
    #[cfg(not(feature = "sim"))]
    Sim(cmd::sim_only::NotInThisBuild),
    /// List PC/SC readers and whether a card is present.
    Readers {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    let code = match cli.command {
        #[cfg(feature = "sim")]
        Command::Demo(a) => cmd::demo::run(a),
        #[cfg(feature = "sim")]
        Command::SelfTest => cmd::selftest::run(),
        #[cfg(feature = "sim")]
        Command::Bench(a) => cmd::bench::run(a),
        #[cfg(feature = "sim")]
        Command::Sim(c) => cmd::sim::run(c),
        #[cfg(not(feature = "sim"))]
        Command::Demo(_) => cmd::sim_only::refuse("demo"),
        #[cfg(not(feature = "sim"))]
        Command::SelfTest(_) => cmd::sim_only::refuse("self-test"),
        #[cfg(not(feature = "sim"))]
        Command::Bench(_) => cmd::sim_only::refuse("bench"),
        #[cfg(not(feature = "sim"))]
        Command::Sim(_) => cmd::sim_only::refuse("sim"),
        Command::Provision(a) => cmd::provision::run(a),
        Command::Run(a) => cmd::run::run(a),
        Command::Fixtures(c) => cmd::fixtures::run(c),
        Command::Audit(c) => cmd::audit::run(c),
        Command::Scp03(c) => cmd::scp03::run(c),
        Command::Readers { json } => cmd::readers::run(json),
    };
    ExitCode::from(code)
}
