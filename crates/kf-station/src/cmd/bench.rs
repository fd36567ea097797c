//! `kf-station bench`: end-to-end fobs through the full pipeline against the
//! floor of the same transport, measured in the same run. The measurement
//! lives in `kf_bench::e2e`; this command turns the station's options into
//! pipeline options and prints the rows.

use clap::Args;
use kf_bench::e2e::{self, Link};
use kf_bench::link_model::LinkRow;

use crate::config::StationConfig;
use crate::exit;

/// Options of `bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Fobs per transport and level.
    #[arg(long, default_value_t = 100)]
    pub fobs: usize,
    /// Security levels, comma-separated.
    #[arg(long, default_value = "01,33", value_delimiter = ',')]
    pub level: Vec<String>,
    /// loopback (in-process), vpcd (pcscd + vpcd, started by the bench), or both.
    #[arg(long, default_value = "loopback", value_parser = ["loopback", "vpcd", "both"])]
    pub transport: String,
    /// With `--transport vpcd`: N readers provisioning at once, for each N
    /// given (e.g. 1,2,4,8; `--fobs` per reader): fobs/s and the scaling
    /// efficiency, fobs/s ÷ (N × fobs/s of the first N).
    #[arg(long, value_delimiter = ',', value_name = "N,…")]
    pub readers: Vec<usize>,
    /// With `--readers`: virtual fobs answer at the modeled speed of a real
    /// fob at this bit rate (106k, 212k, 424k, 848k).
    #[arg(long, value_name = "RATE", requires = "readers")]
    pub link: Option<kf_transport::BitRate>,
    /// Instead of measuring: the modeled time per fob on a real ISO/IEC
    /// 14443-4 link at every bit rate, for short and extended-length STORE
    /// DATA (one row per plan, rate and level).
    #[arg(long)]
    pub link_model: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Runs the benchmark.
pub fn run(args: BenchArgs) -> u8 {
    match bench(&args) {
        Ok(()) => exit::OK,
        Err(e) => {
            errln!("error: {}", crate::out::error_line(&e));
            exit::FAILED
        }
    }
}

fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    if args.fobs == 0 {
        anyhow::bail!("--fobs must be at least 1");
    }
    let mut rows = Vec::new();
    let mut link_rows = Vec::new();
    for level in &args.level {
        let options = StationConfig {
            security_level: level.clone(),
            station_id: "BENCH".into(),
            ..StationConfig::default()
        }
        .pipeline_options()?;
        if !args.readers.is_empty() {
            if args.transport != "vpcd" {
                anyhow::bail!("--readers needs --transport vpcd");
            }
            if args.readers.contains(&0) {
                anyhow::bail!("--readers: every count must be at least 1");
            }
            let rows = kf_bench::line::scaling(&args.readers, args.fobs, &options, args.link)?;
            outln!("security level {level}, {} fobs per reader:", args.fobs);
            if args.json {
                outln!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                outln!("{}", kf_bench::line::table(&rows).trim_end());
            }
            continue;
        }
        if args.link_model {
            link_rows.extend(
                kf_bench::link_model::model(&options)?
                    .into_iter()
                    .map(|row| (level.clone(), row)),
            );
            continue;
        }
        if args.transport != "vpcd" {
            rows.push(e2e::run(Link::Loopback, args.fobs, level, &options)?);
        }
        if args.transport != "loopback" {
            rows.push(e2e::run(Link::Vpcd, args.fobs, level, &options)?);
        }
    }
    if args.link_model {
        return print_link_model(&link_rows, args.json);
    }
    if !args.readers.is_empty() {
        return Ok(());
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        outln!("{}", e2e::table(&rows).trim_end());
    }
    Ok(())
}

fn print_link_model(rows: &[(String, LinkRow)], json: bool) -> anyhow::Result<()> {
    if json {
        let rows: Vec<_> = rows
            .iter()
            .map(|(level, row)| serde_json::json!({ "level": level, "model": row }))
            .collect();
        outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let mut levels: Vec<&String> = rows.iter().map(|(level, _)| level).collect();
    levels.dedup();
    for level in levels {
        let of_level: Vec<LinkRow> = rows
            .iter()
            .filter(|(l, _)| l == level)
            .map(|(_, row)| row.clone())
            .collect();
        outln!("security level {level}, modeled per fob:");
        outln!("{}", kf_bench::link_model::table(&of_level).trim_end());
    }
    Ok(())
}
