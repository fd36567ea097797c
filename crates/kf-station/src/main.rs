//! `kf-station`: the end-of-line key-fob station.
//!
//! ```text
//!  reader/sim ─▶ source (dev | container | klms) ─▶ kf-perso pipeline ─▶ audit journal ─▶ KLMS
//! ```
//!
//! The binary only parses arguments and prints; the libraries own the logic.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes (documented in the README).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A fob failed (pipeline error) or a check failed.
    pub const FAILED: u8 = 1;
    /// Bad input: arguments, files, JSON.
    pub const BAD_INPUT: u8 = 2;
}

#[derive(Parser)]
#[command(
    name = "kf-station",
    version,
    about = "Key-fob end-of-line provisioning station (GlobalPlatform SCP03)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Offline SCP03 tools.
    #[command(subcommand)]
    Scp03(cmd::scp03::Scp03Command),
    /// Virtual key fobs for tests and dry runs.
    #[command(subcommand)]
    Sim(cmd::sim::SimCommand),
    /// List PC/SC readers and whether a card is present.
    Readers {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Scp03(c) => cmd::scp03::run(c),
        Command::Readers { json } => cmd::readers::run(json),
        Command::Sim(c) => cmd::sim::run(c),
    };
    ExitCode::from(code)
}
