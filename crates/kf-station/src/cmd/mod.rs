//! One module per subcommand.

pub mod audit;
#[cfg(feature = "sim")]
pub mod bench;
#[cfg(feature = "sim")]
pub mod demo;
pub mod fixtures;
pub mod provision;
pub mod readers;
pub mod run;
pub mod scp03;
#[cfg(feature = "sim")]
pub mod selftest;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(not(feature = "sim"))]
pub mod sim_only;
