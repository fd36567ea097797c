//! `kf-station fixtures generate DIR --count N`: synthetic container packages.

use std::path::PathBuf;

use clap::Subcommand;

use crate::exit;

/// Fixture subcommands.
#[derive(Subcommand)]
pub enum FixturesCommand {
    /// Write N container packages (the reference container format) plus the shared ICA and root certificates.
    Generate {
        /// Target directory (created when missing).
        dir: PathBuf,
        /// Number of packages.
        #[arg(long, default_value_t = 10)]
        count: usize,
        /// Deterministic output for this seed.
        #[arg(long)]
        seed: Option<u64>,
    },
}

/// Runs a fixtures subcommand.
pub fn run(command: FixturesCommand) -> u8 {
    match command {
        FixturesCommand::Generate { dir, count, seed } => {
            match kf_source::fixtures::generate(&dir, count, seed) {
                Ok(pool) => {
                    outln!(
                        "wrote {} packages to {}",
                        pool.packages.len(),
                        dir.display()
                    );
                    exit::OK
                }
                Err(e) => {
                    errln!("error: {e}");
                    // A target path that cannot be written (a file, an existing
                    // pool, no permission) is the operator's input, like any
                    // other bad file argument; a generation failure is not.
                    if matches!(
                        e,
                        kf_source::SourceError::Io { .. } | kf_source::SourceError::File(_)
                    ) {
                        exit::BAD_INPUT
                    } else {
                        exit::FAILED
                    }
                }
            }
        }
    }
}
