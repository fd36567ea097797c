//! One module per subcommand.

pub mod scp03;
