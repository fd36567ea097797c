//! Key fob end-of-line station CLI.
fn main() {}
