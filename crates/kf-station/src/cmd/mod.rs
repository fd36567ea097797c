//! One module per subcommand.

pub mod audit;
pub mod bench;
pub mod demo;
pub mod fixtures;
pub mod provision;
pub mod readers;
pub mod run;
pub mod scp03;
pub mod selftest;
pub mod sim;
