//! Secret bytes (PIN, PUK, key material, decrypted data) and the constant-time comparison
//! every secret and MAC check uses. Depends on nothing else in this crate.

use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Constant-time comparison (lengths are public), through `subtle`: the one every secret,
/// MAC, attestation and token check of the SKS crates uses.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Secret bytes (PIN, PUK, key material, decrypted data): zeroized on drop, redacted
/// `Debug`, no `Clone`; encoded as `byte[]` on the wire.
#[derive(Default, Zeroize, ZeroizeOnDrop)]
pub struct Secret(Vec<u8>);

/// Constant-time in content (lengths are public).
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        ct_eq(&self.0, &other.0)
    }
}

impl Eq for Secret {}

impl Secret {
    /// Wraps bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    /// Copies a slice.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
    /// The bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// An explicit copy (secrets are not `Clone` to keep copies deliberate).
    pub fn duplicate(&self) -> Self {
        Self(self.0.clone())
    }
    /// Constant-time equality.
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        ct_eq(&self.0, other)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes redacted>)", self.0.len())
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::from("1234");
        assert_eq!(format!("{s:?}"), "Secret(<4 bytes redacted>)");
    }
}
