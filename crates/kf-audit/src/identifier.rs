//! Station and reader identifiers, as the station writes them into audit
//! records and the KLMS accepts them (certificate CN, `reader_id`,
//! `eol_station_id`): one rule for both sides.

/// Longest station or reader identifier.
pub const IDENTIFIER_MAX_LEN: usize = 64;

/// Why an identifier was refused (the value itself is not repeated: it may
/// be long or hold control characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentifierError {
    /// Empty string.
    #[error("identifier is empty")]
    Empty,
    /// Longer than [`IDENTIFIER_MAX_LEN`].
    #[error("identifier has {0} bytes, at most {IDENTIFIER_MAX_LEN} allowed")]
    TooLong(usize),
    /// A character outside `A-Z a-z 0-9 . _ -`.
    #[error(
        "identifier has character U+{code:04X} at position {position}; allowed: A-Z a-z 0-9 . _ -"
    )]
    BadCharacter {
        /// Unicode scalar value.
        code: u32,
        /// Character index (0-based).
        position: usize,
    },
    /// Starts with `.`, `_` or `-`.
    #[error("identifier must start with a letter or digit")]
    BadStart,
}

/// Station and reader identifiers: 1 to [`IDENTIFIER_MAX_LEN`] characters
/// from `A-Z a-z 0-9 . _ -`, the first a letter or digit (so an identifier is
/// also a safe file name: no separator, no `..`, no hidden file).
pub fn check_identifier(value: &str) -> Result<(), IdentifierError> {
    if value.is_empty() {
        return Err(IdentifierError::Empty);
    }
    if value.len() > IDENTIFIER_MAX_LEN {
        return Err(IdentifierError::TooLong(value.len()));
    }
    if let Some((position, c)) = value
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(IdentifierError::BadCharacter {
            code: u32::from(c),
            position,
        });
    }
    if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(IdentifierError::BadStart);
    }
    Ok(())
}

/// A reader identifier made from a PC/SC name: characters outside
/// `A-Z a-z 0-9 . _ -` become `_`, leading punctuation is dropped, at most
/// 56 characters (room for a `-N` suffix).
pub fn from_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed: String = cleaned
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .chars()
        .take(56)
        .collect();
    if trimmed.is_empty() {
        "READER".to_string()
    } else {
        trimmed
    }
}
