//! `kf-station run`: the station loop over one reader or many ([`crate::line`]):
//! wait for a fob, provision it, print a PASS/FAIL line, next. Ctrl-C (on
//! Windows also Ctrl-Break, closing the console window, logoff, shutdown)
//! stops after the fobs in flight, with the journal closed.

use crate::cmd::provision::StationArgs;
use crate::exit;

/// Options of `run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub station: StationArgs,
    /// `all`: drive every reader present, each named after its PC/SC name
    /// (instead of `--reader` or the configuration's `[[readers]]`).
    #[arg(long, value_parser = ["all"], conflicts_with = "reader")]
    pub readers: Option<String>,
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

/// The configuration, the pipeline options and the readers to drive, or
/// the operator's error (checked before anything is opened or created).
fn checked_config(
    args: &RunArgs,
) -> anyhow::Result<(
    crate::config::StationConfig,
    kf_perso::pipeline::PipelineOptions,
    crate::line::ReaderSelection,
)> {
    use crate::line::ReaderSelection;
    let config = args.station.config()?;
    let selection = if args.readers.is_some() {
        ReaderSelection::All
    } else if args.station.reader.is_none() && !config.readers.is_empty() {
        ReaderSelection::Configured(config.readers.clone())
    } else if !config.reader.is_empty() {
        ReaderSelection::One {
            name: config.reader.clone(),
            reader_id: config
                .reader_id()
                .unwrap_or_else(|| kf_audit::identifier::from_name(&config.reader)),
        }
    } else {
        anyhow::bail!(
            "`run` needs readers: --reader NAME, --readers all, or `[[readers]]` in the config"
        );
    };
    let options = config.pipeline_options()?;
    Ok((config, options, selection))
}

#[cfg(any(feature = "pcsc", windows, target_os = "macos"))]
fn station_loop(args: &RunArgs) -> anyhow::Result<u8> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use kf_transport::pcsc::PcscContext;

    use crate::line::{Line, LineSetup, Sources};
    use crate::station::{open_source, Recorder};

    let (config, options, selection) = checked_config(args)?;
    // PC/SC before the source and the journal: without pcscd the station is
    // refused without leaving a journal behind.
    let context = PcscContext::establish()?;
    let opened = open_source(&config)?;
    let recorder = Recorder::open(
        &config.journal,
        config.audit_file.as_deref(),
        opened.klms.as_ref(),
    )?
    .repersonalize(args.station.repersonalize)?;
    let sources = match &opened.klms {
        Some(client) => Sources::Klms(client),
        None => Sources::Shared(kf_source::SharedSource::new(opened.source)),
    };
    let console = args.console.start(args.station.json)?;
    let stop = Arc::new(AtomicBool::new(false));
    let cancellers = Arc::new(Mutex::new(vec![context.canceller()]));
    // Ctrl-C, and on Windows also closing the console window, logoff and
    // shutdown: the fobs in flight finish and the journal is closed before
    // the process ends (`finished` below).
    let stopping = {
        let stop = stop.clone();
        let cancellers = cancellers.clone();
        kf_stop::on_stop(move || {
            stop.store(true, Ordering::SeqCst);
            // Best effort: it only wakes pending waits early; every wait
            // also returns to look at `stop` twice a second.
            if let Ok(cancellers) = cancellers.lock() {
                for canceller in cancellers.iter() {
                    let _ = canceller.cancel();
                }
            }
        })?
    };
    errln!(
        "station {}: present fobs (Ctrl-C to stop)",
        config.station_id
    );
    let line = Line::new(LineSetup {
        selection,
        recorder: &recorder,
        options: &options,
        sources,
        console: console.as_ref().map(|(c, _)| c),
        stop: &stop,
        cancellers: &cancellers,
    });
    let result = line.run(&context);
    let (good, failed) = line.counts();
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
    stopping.finished();
    result?;
    Ok(if failed == 0 { exit::OK } else { exit::FAILED })
}

#[cfg(not(any(feature = "pcsc", windows, target_os = "macos")))]
fn station_loop(args: &RunArgs) -> anyhow::Result<u8> {
    // The configuration's own errors first, as with PC/SC support.
    checked_config(args)?;
    anyhow::bail!(
        "this build has no PC/SC support: rebuild with `--features pcsc` (needs libpcsclite-dev)"
    )
}
