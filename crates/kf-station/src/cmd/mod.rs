//! One module per subcommand.

pub mod readers;
pub mod scp03;
pub mod sim;
