//! `kf-station scp03 replay`: the offline SCP03 calculator: recomputes a captured
//! session from known static keys.

use std::path::PathBuf;

use clap::Subcommand;

use crate::exit;

/// SCP03 subcommands.
#[derive(Subcommand)]
pub enum Scp03Command {
    /// Replay a captured SCP03 session against known static keys (JSON in, JSON out).
    Replay {
        /// Replay script (JSON); `-` reads standard input.
        #[arg(long)]
        script: PathBuf,
        /// Also print the derived session keys (offline debugging only).
        #[arg(long)]
        show_session_keys: bool,
    },
}

/// Runs an SCP03 subcommand and returns the exit code.
pub fn run(command: Scp03Command) -> u8 {
    match command {
        Scp03Command::Replay {
            script,
            show_session_keys,
        } => replay(&script, show_session_keys),
    }
}

fn replay(script: &std::path::Path, show_session_keys: bool) -> u8 {
    let bytes = if script.as_os_str() == "-" {
        kf_files::read_capped(
            std::io::stdin().lock(),
            kf_scp03::replay::SCRIPT_MAX_BYTES,
            std::path::Path::new("<standard input>"),
        )
    } else {
        kf_files::read_regular(
            script,
            kf_scp03::replay::SCRIPT_MAX_BYTES,
            kf_files::Links::Follow,
        )
    };
    let text = match bytes.map(String::from_utf8) {
        Ok(Ok(t)) => t,
        Ok(Err(_)) => {
            errln!("error: cannot read {}: not UTF-8 text", script.display());
            return exit::BAD_INPUT;
        }
        Err(e) => {
            errln!("error: cannot read {e}");
            return exit::BAD_INPUT;
        }
    };
    match kf_scp03::replay::replay(&text, show_session_keys) {
        Ok(out) => match serde_json::to_string_pretty(&out) {
            Ok(json) => {
                outln!("{json}");
                exit::OK
            }
            Err(e) => {
                errln!("error: cannot encode the result: {e}");
                exit::FAILED
            }
        },
        Err(e) => {
            errln!("error: {e}");
            exit::BAD_INPUT
        }
    }
}
