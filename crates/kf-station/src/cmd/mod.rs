//! One module per subcommand.

pub mod scp03;
pub mod readers;
pub mod sim;
