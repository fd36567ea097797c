//! Plain text helpers with no dependency on the rest of the station (the
//! configuration fuzz target compiles `config.rs` with this file alone).

/// The non-empty lines of `text`, trimmed and joined with `; `.
pub(crate) fn join_lines(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}
