//! `kf-station run`: the station loop. Wait for a fob, provision it, print a
//! PASS/FAIL line, wait for its removal, next. Ctrl-C stops after the current fob.

use crate::cmd::provision::StationArgs;
use crate::exit;

/// Options of `run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub station: StationArgs,
    #[command(flatten)]
    pub console: crate::console::ConsoleArgs,
}

/// Runs the loop until Ctrl-C.
pub fn run(args: RunArgs) -> u8 {
    match station_loop(&args) {
        Ok(code) => code,
        Err(e) => {
            errln!("error: {}", crate::out::error_line(&e));
            exit::BAD_INPUT
        }
    }
}

/// The configuration and the pipeline options, or the operator's error
/// (checked before anything is opened or created).
fn checked_config(
    args: &StationArgs,
) -> anyhow::Result<(
    crate::config::StationConfig,
    kf_perso::pipeline::PipelineOptions,
)> {
    let config = args.config()?;
    if config.reader.is_empty() {
        anyhow::bail!("`run` needs a reader: --reader NAME or `reader = ...` in the config");
    }
    let options = config.pipeline_options()?;
    Ok((config, options))
}

#[cfg(any(feature = "pcsc", windows, target_os = "macos"))]
fn station_loop(args: &RunArgs) -> anyhow::Result<u8> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use kf_transport::error::TransportError;
    use kf_transport::pcsc::{CardDisposition, PcscContext};

    use crate::station::{open_source, outcome_line, Recorder};

    let (config, options) = checked_config(&args.station)?;
    // PC/SC before the source and the journal: without pcscd the station is
    // refused without leaving a journal behind.
    let context = PcscContext::establish()?;
    let opened = open_source(&config)?;
    let mut source = opened.source;
    let recorder = Recorder::open(
        &config.journal,
        config.audit_file.as_deref(),
        opened.klms.as_ref(),
    )?;
    let console = args.console.start(args.station.json)?;
    let reader_id = config.reader_id().unwrap_or_else(|| config.reader.clone());
    let tile = console.as_ref().map(|(c, _)| c.reader(&reader_id));
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let canceller = context.canceller();
        ctrlc::set_handler(move || {
            stop.store(true, Ordering::SeqCst);
            // Best effort: it only wakes a pending wait early; the loop
            // also sees `stop` once the wait times out.
            let _ = canceller.cancel();
        })?;
    }
    let (mut good, mut failed) = (0u64, 0u64);
    errln!(
        "station {} on {:?}: present a fob (Ctrl-C to stop)",
        config.station_id,
        config.reader
    );
    // A short poll keeps Ctrl-C responsive even if cancel is not delivered.
    let poll = Some(Duration::from_millis(500));
    while !stop.load(Ordering::SeqCst) {
        match context.wait_for_card(&config.reader, poll) {
            Ok(_) => {
                if let Some(tile) = &tile {
                    tile.fob_present();
                }
            }
            Err(TransportError::Timeout | TransportError::Cancelled) => continue,
            Err(e) => {
                if let Some(tile) = &tile {
                    tile.offline(crate::console::words::transport_words(&e));
                }
                return Err(e.into());
            }
        }
        let outcome = match context.connect(&config.reader) {
            Ok(mut card) => {
                let outcome =
                    recorder.provision_shown(&mut card, source.as_mut(), &options, tile.as_ref());
                // The outcome is recorded already; a reader that fails to
                // reset shows up on the next connect.
                let _ = card.disconnect(CardDisposition::Reset);
                outcome?
            }
            Err(e) => {
                errln!("FAIL  -  cannot connect: {e}");
                if let Some(tile) = &tile {
                    tile.fail(crate::console::words::transport_words(&e));
                }
                failed += 1;
                wait_removed(&context, &config.reader, &stop);
                continue;
            }
        };
        if outcome.is_success() {
            good += 1;
        } else {
            failed += 1;
        }
        outln!(
            "{}   [good {good}, failed {failed}]",
            outcome_line(&outcome)
        );
        errln!("remove the fob");
        wait_removed(&context, &config.reader, &stop);
        if let Some(tile) = &tile {
            tile.idle();
        }
    }
    outln!("stopped: good {good}, failed {failed}");
    if let Some((_, server)) = console {
        server.shutdown();
    }
    if let Some(stats) = recorder.close(Duration::from_secs(5)) {
        outln!(
            "audit upload: {} sent, {} pending",
            stats.uploaded,
            stats.pending
        );
    }
    Ok(if failed == 0 { exit::OK } else { exit::FAILED })
}

#[cfg(any(feature = "pcsc", windows, target_os = "macos"))]
fn wait_removed(
    context: &kf_transport::pcsc::PcscContext,
    reader: &str,
    stop: &std::sync::atomic::AtomicBool,
) {
    use kf_transport::error::TransportError;
    let poll = Some(std::time::Duration::from_millis(500));
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        match context.wait_for_removal(reader, poll) {
            Err(TransportError::Timeout | TransportError::Cancelled) => continue,
            _ => return,
        }
    }
}

#[cfg(not(any(feature = "pcsc", windows, target_os = "macos")))]
fn station_loop(args: &RunArgs) -> anyhow::Result<u8> {
    // The configuration's own errors first, as with PC/SC support.
    checked_config(&args.station)?;
    anyhow::bail!(
        "this build has no PC/SC support: rebuild with `--features pcsc` (needs libpcsclite-dev)"
    )
}
