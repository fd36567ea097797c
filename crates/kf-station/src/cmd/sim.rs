//! `kf-station sim serve`: a virtual JCOP 4 key fob plugged into pcscd through
//! vsmartcard's vpcd driver, so the station's real PC/SC path can be exercised
//! without hardware. One process per vpcd slot (35963, 35964, ...).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use kf_card::{FobConfig, Mode, Uid, VirtualFob};
use kf_crypto::StaticKeys;
use kf_transport::vpcd::{serve, BridgeControl, VpcdConfig};

use crate::exit;

/// Simulator subcommands.
#[derive(Subcommand)]
pub enum SimCommand {
    /// Serve a virtual key fob to pcscd through vpcd until SIGINT/SIGTERM.
    Serve(ServeArgs),
}

/// Options of `sim serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// vpcd address (host:port); slot 0 is 35963, slot 1 35964.
    #[arg(long, default_value = kf_transport::vpcd::DEFAULT_VPCD_ADDR)]
    pub vpcd: String,
    /// Fob UID in hex (4, 7 or 10 bytes); random 10 bytes by default.
    #[arg(long)]
    pub uid: Option<String>,
    /// Key version of the static key set given with --keys.
    #[arg(long, default_value_t = kf_profile::DEV_SAMPLE_KVN, requires = "keys")]
    pub kvn: u8,
    /// Static keys ENC:MAC:DEK in hex (default: the specification's dev-sample keys at KVN 255).
    #[arg(long)]
    pub keys: Option<String>,
    /// SCP03 "i" parameter in hex (00, 10, 20, 30, 60, 70).
    #[arg(long, default_value = "70")]
    pub scp_i: String,
    /// Use S16 mode (16-byte challenges, cryptograms and MACs).
    #[arg(long)]
    pub s16: bool,
    /// Persist the fob's state in this file (survives restarts).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Answer at the modeled speed of a real fob at this ISO/IEC 14443-4
    /// bit rate (106k, 212k, 424k, 848k); the PC/SC path adds its own time.
    #[arg(long, value_name = "RATE")]
    pub link: Option<kf_transport::BitRate>,
}

/// Runs a simulator subcommand.
pub fn run(command: SimCommand) -> u8 {
    match command {
        SimCommand::Serve(args) => match serve_fob(args) {
            Ok(()) => exit::OK,
            Err(e) => {
                errln!("error: {}", crate::out::error_line(&e));
                exit::BAD_INPUT
            }
        },
    }
}

/// Builds the fob configuration from the command line.
pub fn fob_config(args: &ServeArgs) -> anyhow::Result<FobConfig> {
    let mut config = FobConfig::dev_sample();
    if let Some(uid) = &args.uid {
        config = config.with_uid(Uid::from_hex(uid)?);
    }
    if let Some(keys) = &args.keys {
        let parts: Vec<&str> = keys.split(':').collect();
        let [enc, mac, dek] = parts.as_slice() else {
            anyhow::bail!("--keys must be ENC:MAC:DEK in hex");
        };
        config = config.with_only_key_set(args.kvn, StaticKeys::from_hex(enc, mac, dek)?);
    }
    let i = u8::from_str_radix(&args.scp_i, 16)
        .map_err(|_| anyhow::anyhow!("--scp-i must be a hex byte such as 70"))?;
    config = config.with_scp_i(i);
    if args.s16 {
        config = config.with_mode(Mode::S16);
    }
    if let Some(state) = &args.state {
        config = config.with_state_file(state.clone());
    }
    Ok(config)
}

fn serve_fob(args: ServeArgs) -> anyhow::Result<()> {
    let fob = VirtualFob::new(fob_config(&args)?)?;
    let control = BridgeControl::new();
    let stopper = control.clone();
    let _stopping = kf_stop::on_stop(move || stopper.stop())?;
    errln!(
        "virtual fob UID {} serving vpcd at {} (Ctrl-C to stop)",
        fob.uid(),
        args.vpcd
    );
    let mut fob = kf_transport::PacedCard::new(fob, args.link.map(kf_transport::LinkModel::new));
    serve(&mut fob, &VpcdConfig::new(args.vpcd.clone()), &control)?;
    errln!("stopped after {} APDUs", control.apdus());
    Ok(())
}
