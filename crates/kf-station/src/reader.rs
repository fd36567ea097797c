//! Real PC/SC readers (WinSCard on Windows, pcsc-lite on Linux with the
//! `pcsc` feature).

use kf_perso::pipeline::{FobOutcome, PipelineOptions};
use kf_source::ProvisioningSource;

use crate::station::Recorder;

/// Whether this build can talk to PC/SC readers.
pub const SUPPORTED: bool = cfg!(any(feature = "pcsc", windows, target_os = "macos"));

/// Refuses early, before any file is opened, on a build without PC/SC.
pub fn ensure_supported() -> anyhow::Result<()> {
    if SUPPORTED {
        Ok(())
    } else {
        anyhow::bail!(
            "this build has no PC/SC support: rebuild with `--features pcsc` (needs libpcsclite-dev)"
        )
    }
}

/// Connects to the card in `reader` and provisions it.
#[cfg(any(feature = "pcsc", windows, target_os = "macos"))]
pub fn provision_on_reader(
    reader: &str,
    source: &mut dyn ProvisioningSource,
    options: &PipelineOptions,
    recorder: &Recorder,
) -> anyhow::Result<FobOutcome> {
    use kf_transport::pcsc::{CardDisposition, PcscContext};
    let context = PcscContext::establish()?;
    let mut card = context.connect(reader)?;
    let outcome = recorder.provision(&mut card, source, options);
    // Reset: whatever happened, no secure-channel state survives on the card.
    if let Err(e) = card.disconnect(CardDisposition::Reset) {
        tracing::warn!(error = %e, "disconnect failed");
    }
    outcome
}

/// Without PC/SC support compiled in (Linux without the `pcsc` feature).
#[cfg(not(any(feature = "pcsc", windows, target_os = "macos")))]
pub fn provision_on_reader(
    _reader: &str,
    _source: &mut dyn ProvisioningSource,
    _options: &PipelineOptions,
    _recorder: &Recorder,
) -> anyhow::Result<FobOutcome> {
    anyhow::bail!(
        "this build has no PC/SC support: rebuild with `--features pcsc` (needs libpcsclite-dev)"
    )
}
