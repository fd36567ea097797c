//! `kf-station bench`: end-to-end fobs through the full pipeline against the floor.
//! (Being written.)

use clap::Args;

use crate::exit;

/// Options of `bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Number of fobs.
    #[arg(long, default_value_t = 100)]
    pub fobs: usize,
}

/// Runs the benchmark.
pub fn run(_args: BenchArgs) -> u8 {
    eprintln!("bench: not implemented yet");
    exit::FAILED
}
