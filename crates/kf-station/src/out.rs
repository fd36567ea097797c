//! Standard output and error of the station, safe against a closed pipe.
//!
//! `kf-station audit list | head -1` closes the pipe after one line. Rust
//! ignores SIGPIPE, so the next write fails with EPIPE and `println!` panics
//! ("failed printing to stdout: Broken pipe"). Every stdout write of the
//! station goes through `outln!` or [`Stdout`] instead: on a broken pipe the
//! process exits at once, silently, with [`crate::exit::BROKEN_PIPE`] (141 =
//! 128 + SIGPIPE, what a shell reports for a command killed by SIGPIPE, so a
//! script with `pipefail` learns the output was cut short instead of seeing a
//! success). Exiting there is safe: the station prints only between fobs,
//! after the journal has committed the outcome (records not yet uploaded stay
//! pending in the journal and go out with the next run) and after the
//! Zeroize stage has dropped the keys.

use std::io::{self, Write};

/// Prints a line on stdout; see the module documentation for a closed pipe.
macro_rules! outln {
    () => {
        $crate::out::print_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::out::print_line(format_args!($($arg)*))
    };
}

/// Prints a line on stderr, ignoring write errors: a diagnostic that cannot be
/// shown must not turn into a panic (`eprintln!` panics on a closed stderr).
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::out::print_error_line(format_args!($($arg)*))
    };
}

/// Writes one line to stdout (the `outln!` macro).
pub fn print_line(args: std::fmt::Arguments<'_>) {
    let mut stdout = io::stdout().lock();
    if let Err(e) = stdout
        .write_fmt(args)
        .and_then(|()| stdout.write_all(b"\n"))
    {
        drop(stdout);
        write_failed(&e);
    }
}

/// Writes one line to stderr (the [`errln!`] macro).
pub fn print_error_line(args: std::fmt::Arguments<'_>) {
    let mut stderr = io::stderr().lock();
    // A failed write to stderr has nowhere left to be reported.
    let _ = stderr
        .write_fmt(args)
        .and_then(|()| stderr.write_all(b"\n"));
}

/// Ends the process after a failed stdout write: quietly with
/// [`crate::exit::BROKEN_PIPE`] when the reader went away, with a one-line
/// error and [`crate::exit::FAILED`] otherwise (disk full behind a redirect).
fn write_failed(e: &io::Error) -> ! {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(i32::from(crate::exit::BROKEN_PIPE));
    }
    errln!("error: cannot write to standard output: {e}");
    std::process::exit(i32::from(crate::exit::FAILED));
}

/// Standard output as a writer for bulk output (`audit export`): a broken pipe
/// ends the process like `outln!`; other errors are returned to the caller.
pub struct Stdout(io::StdoutLock<'static>);

impl Stdout {
    /// Locks stdout.
    pub fn lock() -> Stdout {
        Stdout(io::stdout().lock())
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(exit_on_broken_pipe)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(exit_on_broken_pipe)
    }
}

fn exit_on_broken_pipe(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(i32::from(crate::exit::BROKEN_PIPE));
    }
    e
}

/// An error and its causes as one line, `context: cause: root cause`. A cause
/// whose text the message before it already contains is skipped (thiserror
/// messages often embed their source, which `{:#}` would print twice), and
/// line breaks inside a message become `; `.
pub fn error_line(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = crate::text::join_lines(&cause.to_string());
        if text.is_empty() || parts.last().is_some_and(|p| p.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Like a thiserror `#[error("database error: {0}")]` with `#[source]`.
    #[derive(Debug)]
    struct Wrapping(std::io::Error);

    impl std::fmt::Display for Wrapping {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "database error: {}", self.0)
        }
    }

    impl std::error::Error for Wrapping {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn error_line_is_one_line_without_repeated_causes() {
        let root = std::io::Error::other("disk image is malformed");
        let error = anyhow::Error::new(Wrapping(root)).context("journal j.db");
        assert_eq!(
            error_line(&error),
            "journal j.db: database error: disk image is malformed"
        );
        let multi = anyhow::anyhow!("first\n\n  second  \n").context("ctx");
        assert_eq!(error_line(&multi), "ctx: first; second");
    }
}
