//! A private pcscd + vpcd stack for one test, and virtual cards presented on it.

use std::io;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use kf_transport::vpcd::{BridgeHandle, VpcdConfig};
use kf_transport::VirtualCard;

use crate::pcscd::{free_port_pair, Pcscd};

/// pcsc-lite has one socket per machine: the tests of a process take turns.
static ONE_PCSCD: Mutex<()> = Mutex::new(());

/// A pcscd with the vpcd driver on two free ports, its configuration and log
/// in a temporary directory. Dropping it stops the daemon (by PID), removes
/// the directory, then lets the next test of this process start its own.
#[derive(Debug)]
pub struct VpcdStack {
    // Fields drop in order: the daemon stops before the lock is released.
    pcscd: Pcscd,
    dir: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl VpcdStack {
    /// Waits for this process's turn, then starts pcscd and waits until it
    /// lists both vpcd readers.
    pub fn start() -> io::Result<VpcdStack> {
        Self::start_with(|dir| Pcscd::start(dir, free_port_pair()?))
    }

    /// Like [`VpcdStack::start`], with at least `slots` vpcd readers.
    pub fn start_slots(slots: usize) -> io::Result<VpcdStack> {
        Self::start_with(|dir| Pcscd::start_slots(dir, slots))
    }

    /// Like [`VpcdStack::start`], with an empty reader configuration: pcscd
    /// runs and lists no readers at all.
    pub fn start_without_readers() -> io::Result<VpcdStack> {
        Self::start_with(Pcscd::start_without_readers)
    }

    fn start_with(start: impl FnOnce(&Path) -> io::Result<Pcscd>) -> io::Result<VpcdStack> {
        let turn = ONE_PCSCD.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::tempdir()?;
        let pcscd = start(dir.path()).map_err(|e| {
            io::Error::other(format!("cannot start pcscd with the vpcd driver: {e}"))
        })?;
        Ok(VpcdStack {
            pcscd,
            dir,
            _turn: turn,
        })
    }

    /// The daemon (stop, restart, PID, log).
    pub fn pcscd(&self) -> &Pcscd {
        &self.pcscd
    }

    /// The daemon, to stop or restart it.
    pub fn pcscd_mut(&mut self) -> &mut Pcscd {
        &mut self.pcscd
    }

    /// The temporary directory (pcscd's configuration and log; free for the
    /// test's own files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// PC/SC name of vpcd slot `slot`.
    pub fn reader_name(&self, slot: u8) -> String {
        self.pcscd.reader_name(slot)
    }

    /// Presents `card` on vpcd slot 0 and waits up to `timeout` until the
    /// bridge is connected to vpcd (pcscd notices the card shortly after).
    pub fn insert<C: VirtualCard + Send + 'static>(
        &self,
        card: C,
        timeout: Duration,
    ) -> io::Result<BridgeHandle<C>> {
        self.insert_at(0, card, timeout)
    }

    /// [`VpcdStack::insert`] on vpcd slot `slot`.
    pub fn insert_at<C: VirtualCard + Send + 'static>(
        &self,
        slot: u16,
        card: C,
        timeout: Duration,
    ) -> io::Result<BridgeHandle<C>> {
        let bridge = BridgeHandle::spawn(card, fast_vpcd_config(self.pcscd.vpcd_addr(slot)))
            .map_err(|e| io::Error::other(format!("cannot start the vpcd bridge: {e}")))?;
        if bridge.wait_connected(timeout) {
            Ok(bridge)
        } else {
            Err(io::Error::other(format!(
                "the vpcd bridge did not reach vpcd within {timeout:?}"
            )))
        }
    }
}

/// A bridge configuration with short reconnect back-off and polling, so that
/// insertion and removal in tests take milliseconds rather than seconds.
pub fn fast_vpcd_config(addr: String) -> VpcdConfig {
    VpcdConfig {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        poll_interval: Duration::from_millis(20),
        ..VpcdConfig::new(addr)
    }
}
