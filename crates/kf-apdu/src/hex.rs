//! Upper-case hex formatting for `Debug`/`Display` without allocating.

use std::fmt;

/// Writes `bytes` as contiguous upper-case hex.
pub(crate) fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02X}")?;
    }
    Ok(())
}
