//! The Windows console control handler.
//!
//! Win32 `SetConsoleCtrlHandler` adds a `HandlerRoutine` to the process's
//! list; for each console event the system starts a new thread in the process
//! that calls the routines, last added first, until one returns TRUE. For
//! `CTRL_CLOSE_EVENT`, `CTRL_LOGOFF_EVENT` and `CTRL_SHUTDOWN_EVENT` the
//! process is terminated when the routine returns (after about 5 s for
//! close at the latest), hence the wait in [`crate::Shared::on_event`].

// The one unsafe call of this crate: registering the routine.
#![allow(unsafe_code)]

use std::sync::{Arc, OnceLock};

use windows_sys::Win32::Foundation::{BOOL, FALSE, TRUE};
use windows_sys::Win32::System::Console::SetConsoleCtrlHandler;

use crate::{ConsoleEvent, Error, Shared, CLOSE_GRACE};

/// The routine has no context argument: the registration lives here.
static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();

pub(crate) fn register(shared: Arc<Shared>) -> Result<(), Error> {
    SHARED.set(shared).map_err(|_| Error::AlreadyRegistered)?;
    let routine: unsafe extern "system" fn(u32) -> BOOL = handler_routine;
    // SAFETY: `handler_routine` matches PHANDLER_ROUTINE, never unwinds (it
    // only locks, calls the registered closure and waits) and, being a
    // plain function, stays valid for the life of the process.
    let ok = unsafe { SetConsoleCtrlHandler(Some(routine), TRUE) };
    if ok == FALSE {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

/// The `HandlerRoutine`: TRUE for the five console events (stopped, and for
/// close/logoff/shutdown waited for), FALSE for anything else so the next
/// routine (the system's default) takes it.
extern "system" fn handler_routine(ctrl_type: u32) -> BOOL {
    match (ConsoleEvent::from_code(ctrl_type), SHARED.get()) {
        (Some(event), Some(shared)) => {
            shared.on_event(event, CLOSE_GRACE);
            TRUE
        }
        _ => FALSE,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use windows_sys::Win32::Foundation::{FALSE, TRUE};
    use windows_sys::Win32::System::Console::{
        CTRL_BREAK_EVENT, CTRL_CLOSE_EVENT, CTRL_C_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT,
    };

    use super::handler_routine;
    use crate::ConsoleEvent;

    #[test]
    fn the_registered_routine_takes_the_five_events_and_passes_others_on() {
        let (guard, calls) = crate::tests::register_counting();
        assert_eq!(handler_routine(CTRL_BREAK_EVENT), TRUE);
        assert_eq!(handler_routine(3), FALSE);
        guard.finished();
        // Finished: close returns at once.
        assert_eq!(handler_routine(CTRL_CLOSE_EVENT), TRUE);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn codes_match_the_sdk() {
        assert_eq!(ConsoleEvent::CtrlC.code(), CTRL_C_EVENT);
        assert_eq!(ConsoleEvent::CtrlBreak.code(), CTRL_BREAK_EVENT);
        assert_eq!(ConsoleEvent::Close.code(), CTRL_CLOSE_EVENT);
        assert_eq!(ConsoleEvent::Logoff.code(), CTRL_LOGOFF_EVENT);
        assert_eq!(ConsoleEvent::Shutdown.code(), CTRL_SHUTDOWN_EVENT);
    }
}
