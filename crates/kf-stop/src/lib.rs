//! Stop requests for the station loop, one API on every platform:
//!
//! ```text
//! let guard = kf_stop::on_stop(|| stop.store(true))?;   // register once
//! ... finish the fob in flight, close the journal ...
//! guard.finished();                                     // the process may end now
//! ```
//!
//! * Unix: SIGINT, SIGTERM and SIGHUP call the handler (the `ctrlc` crate);
//!   the process lives on until `main` returns, so [`StopGuard::finished`]
//!   has nothing to release.
//! * Windows: a console control handler (`SetConsoleCtrlHandler`) takes all
//!   five console events. Ctrl-C and Ctrl-Break call the handler and return.
//!   Closing the console window, logoff and shutdown end the process as soon
//!   as the handler routine returns (Win32 "HandlerRoutine callback
//!   function": the system allows about 5 s for close, then terminates), so
//!   the routine calls the handler and then waits until the guard is
//!   finished or dropped, at most [`CLOSE_GRACE`].
//!
//! Depends on no other crate of the workspace and knows nothing of the loop it stops.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

#[cfg(windows)]
mod windows;

/// How long the console handler waits, on close, logoff or shutdown, for the
/// station to finish: under the ~5 s Windows allows before it terminates the
/// process anyway.
pub const CLOSE_GRACE: Duration = Duration::from_millis(4500);

/// Why the stop handler could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A process has one stop handler; this is the second registration.
    #[error("a stop handler is already registered")]
    AlreadyRegistered,
    /// The operating system refused the registration.
    #[error("cannot register the stop handler: {0}")]
    System(#[from] std::io::Error),
}

/// The Windows console control events, with the codes the Win32
/// `HandlerRoutine` receives (`CTRL_C_EVENT` 0, `CTRL_BREAK_EVENT` 1,
/// `CTRL_CLOSE_EVENT` 2, `CTRL_LOGOFF_EVENT` 5, `CTRL_SHUTDOWN_EVENT` 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleEvent {
    /// Ctrl+C in the console, or `GenerateConsoleCtrlEvent(CTRL_C_EVENT)`.
    CtrlC,
    /// Ctrl+Break in the console.
    CtrlBreak,
    /// The console window is being closed.
    Close,
    /// The user logs off (services only).
    Logoff,
    /// The system shuts down (services only).
    Shutdown,
}

impl ConsoleEvent {
    /// All five, in code order.
    pub const ALL: [ConsoleEvent; 5] = [
        ConsoleEvent::CtrlC,
        ConsoleEvent::CtrlBreak,
        ConsoleEvent::Close,
        ConsoleEvent::Logoff,
        ConsoleEvent::Shutdown,
    ];

    /// The event of a `HandlerRoutine` code; `None` for codes Windows does
    /// not define.
    pub const fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(ConsoleEvent::CtrlC),
            1 => Some(ConsoleEvent::CtrlBreak),
            2 => Some(ConsoleEvent::Close),
            5 => Some(ConsoleEvent::Logoff),
            6 => Some(ConsoleEvent::Shutdown),
            _ => None,
        }
    }

    /// The `HandlerRoutine` code.
    pub const fn code(self) -> u32 {
        match self {
            ConsoleEvent::CtrlC => 0,
            ConsoleEvent::CtrlBreak => 1,
            ConsoleEvent::Close => 2,
            ConsoleEvent::Logoff => 5,
            ConsoleEvent::Shutdown => 6,
        }
    }

    /// Whether Windows ends the process once the handler routine returns,
    /// whatever it returns: so the routine must wait for the station.
    pub const fn ends_process(self) -> bool {
        matches!(
            self,
            ConsoleEvent::Close | ConsoleEvent::Logoff | ConsoleEvent::Shutdown
        )
    }
}

/// Set once, when the station has finished: wakes whoever waits for it.
#[derive(Default)]
struct Finished {
    done: Mutex<bool>,
    changed: Condvar,
}

impl Finished {
    fn set(&self) {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.changed.notify_all();
    }

    /// Waits until set, at most `timeout`; whether it was set.
    // Used by the Windows console handler; tested on every platform.
    #[cfg_attr(not(windows), allow(dead_code))]
    fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        while !*done {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            done = self
                .changed
                .wait_timeout(done, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// The registered handler and the station's "finished" flag, shared by the
/// guard and the platform's signal or console handler.
struct Shared {
    handler: Mutex<Box<dyn FnMut() + Send>>,
    finished: Finished,
}

impl Shared {
    fn new(handler: Box<dyn FnMut() + Send>) -> Self {
        Shared {
            handler: Mutex::new(handler),
            finished: Finished::default(),
        }
    }

    fn stop(&self) {
        let mut handler = self.handler.lock().unwrap_or_else(PoisonError::into_inner);
        handler();
    }

    /// What the console handler routine does for `event`: asks the station
    /// to stop and, when Windows would end the process on return, waits
    /// until the station has finished, at most `grace`. Returns whether the
    /// station had finished by then.
    #[cfg_attr(not(windows), allow(dead_code))]
    fn on_event(&self, event: ConsoleEvent, grace: Duration) -> bool {
        self.stop();
        if event.ends_process() {
            self.finished.wait(grace)
        } else {
            false
        }
    }
}

/// Held while the station works; [`finished`](StopGuard::finished) (or
/// dropping it) tells a waiting console handler that the fob in flight is
/// done and the journal closed, so the process may end.
#[must_use = "dropping the guard lets a console close end the process at once"]
pub struct StopGuard {
    shared: Arc<Shared>,
}

impl StopGuard {
    /// The station is done: the journal is closed.
    pub fn finished(self) {}
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.shared.finished.set();
    }
}

impl std::fmt::Debug for StopGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopGuard").finish_non_exhaustive()
    }
}

/// Registers `handler`, called on every stop request (see the crate docs),
/// possibly more than once and from another thread: it should only set a
/// flag and wake waits. One registration per process.
pub fn on_stop<F>(handler: F) -> Result<StopGuard, Error>
where
    F: FnMut() + Send + 'static,
{
    let shared = Arc::new(Shared::new(Box::new(handler)));
    register(shared.clone())?;
    Ok(StopGuard { shared })
}

#[cfg(windows)]
fn register(shared: Arc<Shared>) -> Result<(), Error> {
    windows::register(shared)
}

#[cfg(not(windows))]
fn register(shared: Arc<Shared>) -> Result<(), Error> {
    ctrlc::set_handler(move || shared.stop()).map_err(|e| match e {
        ctrlc::Error::MultipleHandlers => Error::AlreadyRegistered,
        ctrlc::Error::System(e) => Error::System(e),
        other => Error::System(std::io::Error::other(other.to_string())),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread;

    fn counted() -> (Arc<Shared>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let shared = Arc::new(Shared::new(Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })));
        (shared, calls)
    }

    #[test]
    fn codes_are_the_win32_ones_and_only_close_logoff_shutdown_end_the_process() {
        let codes: Vec<u32> = ConsoleEvent::ALL.iter().map(|e| e.code()).collect();
        assert_eq!(codes, [0, 1, 2, 5, 6]);
        for event in ConsoleEvent::ALL {
            assert_eq!(ConsoleEvent::from_code(event.code()), Some(event));
        }
        for unknown in [3, 4, 7, u32::MAX] {
            assert_eq!(ConsoleEvent::from_code(unknown), None);
        }
        let ending: Vec<_> = ConsoleEvent::ALL
            .into_iter()
            .filter(|e| e.ends_process())
            .collect();
        assert_eq!(
            ending,
            [
                ConsoleEvent::Close,
                ConsoleEvent::Logoff,
                ConsoleEvent::Shutdown
            ]
        );
    }

    #[test]
    fn ctrl_c_and_break_stop_without_waiting() {
        let (shared, calls) = counted();
        for event in [ConsoleEvent::CtrlC, ConsoleEvent::CtrlBreak] {
            let started = Instant::now();
            assert!(!shared.on_event(event, Duration::from_secs(30)));
            assert!(started.elapsed() < Duration::from_secs(5));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn close_waits_until_the_guard_is_finished() {
        let (shared, calls) = counted();
        let guard = StopGuard {
            shared: shared.clone(),
        };
        let waiter = {
            let shared = shared.clone();
            thread::spawn(move || {
                let started = Instant::now();
                let released = shared.on_event(ConsoleEvent::Close, Duration::from_secs(30));
                (released, started.elapsed())
            })
        };
        // The handler runs before the wait: the station hears of the stop.
        while calls.load(Ordering::SeqCst) == 0 {
            thread::sleep(Duration::from_millis(5));
        }
        thread::sleep(Duration::from_millis(200));
        assert!(
            !waiter.is_finished(),
            "returned before the guard was finished"
        );
        guard.finished();
        let (released, waited) = waiter.join().unwrap();
        assert!(released);
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        assert!(waited < Duration::from_secs(10), "{waited:?}");
    }

    #[test]
    fn the_wait_is_bounded_by_the_grace() {
        let (shared, calls) = counted();
        let _guard = StopGuard {
            shared: shared.clone(),
        };
        for event in [ConsoleEvent::Logoff, ConsoleEvent::Shutdown] {
            let started = Instant::now();
            assert!(!shared.on_event(event, Duration::from_millis(150)));
            let waited = started.elapsed();
            assert!(waited >= Duration::from_millis(150), "{waited:?}");
            assert!(waited < Duration::from_secs(5), "{waited:?}");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(CLOSE_GRACE < Duration::from_secs(5));
    }

    #[test]
    fn a_dropped_guard_releases_later_events_at_once() {
        let (shared, calls) = counted();
        drop(StopGuard {
            shared: shared.clone(),
        });
        let started = Instant::now();
        assert!(shared.on_event(ConsoleEvent::Close, Duration::from_secs(30)));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_panicking_handler_does_not_block_later_stops() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let shared = Arc::new(Shared::new(Box::new(move || {
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                #[allow(clippy::panic)]
                {
                    panic!("first stop fails");
                }
            }
        })));
        let first = {
            let shared = shared.clone();
            thread::spawn(move || shared.stop())
        };
        assert!(first.join().is_err());
        shared.stop();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    /// The process's one registration, counting its calls; a second one is
    /// refused.
    pub(crate) fn register_counting() -> (StopGuard, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let guard = on_stop(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        assert!(matches!(on_stop(|| {}), Err(Error::AlreadyRegistered)));
        (guard, calls)
    }

    #[cfg(unix)]
    #[test]
    fn one_registration_per_process_and_sigterm_reaches_the_handler() {
        let (guard, calls) = register_counting();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while calls.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        guard.finished();
    }
}
