//! The simulator commands in a factory build (without the `sim` feature):
//! `demo`, `self-test`, `sim` and `bench` stay on the command line and say
//! how to get them, rather than vanishing into clap's "unrecognized
//! subcommand".

use clap::Args;

use crate::exit;

/// Whatever follows the command; it is not looked at.
#[derive(Args, Debug)]
pub struct NotInThisBuild {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

/// The error of a simulator feature asked of a factory build.
pub fn not_in_this_build(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "`{what}` needs the virtual fob, which this factory build leaves out: \
         build kf-station with its default `sim` feature (e.g. `cargo build -p kf-station --features pcsc`)"
    )
}

/// Prints why `command` is missing; exit 2 (bad input).
pub fn refuse(command: &str) -> u8 {
    errln!("error: {}", not_in_this_build(command));
    exit::BAD_INPUT
}
