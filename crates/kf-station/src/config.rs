//! Station configuration: `station.toml`, overridden by `KF_*` environment
//! variables, overridden by command-line flags.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use kf_perso::pipeline::{IsdStatus, PipelineOptions, VerifyMode};
use kf_perso::{LastBlockStyle, PlanOptions};
use kf_profile::P1Style;
use kf_scp03::{Mode, SecurityLevel};
use serde::Deserialize;

/// `station.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StationConfig {
    /// Station identifier in audit records (`KF_STATION_ID`).
    pub station_id: String,
    /// PC/SC reader name (`KF_READER`); empty with `sim = true`.
    pub reader: String,
    /// The readers `run` drives at once (`[[readers]]`); when empty, `run`
    /// drives the one `reader`.
    pub readers: Vec<ReaderSpec>,
    /// Use an in-process virtual fob instead of a reader (`KF_SIM`).
    pub sim: bool,
    /// SCP03 security level, hex: 01, 03, 11, 13, 33 (`KF_SECURITY_LEVEL`).
    pub security_level: String,
    /// S8 or S16 (`KF_SCP_MODE`).
    pub scp_mode: String,
    /// STORE DATA P1 style: `jcshell` (the reference JCShell script) or `gp-dgi` (`KF_P1_STYLE`).
    pub p1_style: String,
    /// Set b8 on the last data block instead of a separate empty block.
    pub last_block_on_data: bool,
    /// Extended-length STORE DATA: `auto` (when the reader carries extended
    /// APDUs and the fob's ATR announces extended Lc/Le), `on` (whenever the
    /// reader carries them), `off`; `true`/`false` mean `on`/`off`.
    pub extended_length: ExtendedLength,
    /// Verify the key pair with a fresh challenge (`KF_VERIFY`).
    pub verify: bool,
    /// Final ISD SET STATUS: `none`, `secured` or `locked` (`KF_ISD_STATUS`).
    pub isd_status: String,
    /// The durable audit journal, SQLite (`KF_JOURNAL`).
    pub journal: PathBuf,
    /// Optional copy of every audit record as JSON lines (`KF_AUDIT_FILE`).
    pub audit_file: Option<PathBuf>,
    /// Provisioning source.
    pub source: SourceConfig,
    /// KLMS connection (for `source.kind = "klms"`).
    pub klms: crate::klms::KlmsSettings,
}

/// When STORE DATA goes in extended-length APDUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtendedLength {
    /// When the reader carries them and the fob's ATR announces them.
    Auto,
    /// Whenever the reader carries them.
    On,
    /// Never.
    Off,
}

impl<'de> Deserialize<'de> for ExtendedLength {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Word(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Flag(true) => Ok(ExtendedLength::On),
            Raw::Flag(false) => Ok(ExtendedLength::Off),
            Raw::Word(word) => match word.as_str() {
                "auto" => Ok(ExtendedLength::Auto),
                "on" => Ok(ExtendedLength::On),
                "off" => Ok(ExtendedLength::Off),
                _ => Err(serde::de::Error::custom(
                    "extended_length must be \"auto\", \"on\", \"off\", true or false",
                )),
            },
        }
    }
}

/// One `[[readers]]` entry: which PC/SC readers, and their name in audit
/// records and KLMS requests.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReaderSpec {
    /// PC/SC reader name; `*` matches any run of characters, `?` one.
    pub name: String,
    /// The reader's identifier (`A-Z a-z 0-9 . _ -`, at most 64). A pattern
    /// that matches several readers numbers them: `ID`, `ID-2`, `ID-3` …
    pub reader_id: String,
}

/// `[source]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// `dev`, `container` or `klms` (`KF_SOURCE`; klms reads `[klms]`).
    pub kind: String,
    /// Container pool directory (container; optional for dev) (`KF_SOURCE_DIR`).
    pub dir: Option<PathBuf>,
    /// Where packages of fobs that passed are moved (`KF_DONE_DIR`; default `<dir>/done`).
    pub done_dir: Option<PathBuf>,
    /// Keep the private-key file of finished packages (`KF_KEEP_PACKAGES`; debugging only).
    pub keep_packages: bool,
    /// The package producer's public key (PEM, EC P-256) that signs package
    /// manifests (`KF_MANIFEST_KEY`).
    pub manifest_key: Option<PathBuf>,
    /// Refuse packages without a signed manifest (`KF_REQUIRE_MANIFEST`).
    pub require_manifest: bool,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            kind: "dev".into(),
            dir: None,
            done_dir: None,
            keep_packages: false,
            manifest_key: None,
            require_manifest: false,
        }
    }
}

impl Default for StationConfig {
    fn default() -> Self {
        StationConfig {
            station_id: "EOL-STATION-01".into(),
            reader: String::new(),
            readers: Vec::new(),
            sim: false,
            security_level: "01".into(),
            scp_mode: "S8".into(),
            p1_style: "jcshell".into(),
            last_block_on_data: false,
            extended_length: ExtendedLength::Auto,
            verify: true,
            isd_status: "none".into(),
            journal: crate::paths::default_journal(),
            audit_file: None,
            source: SourceConfig::default(),
            klms: crate::klms::KlmsSettings::default(),
        }
    }
}

/// A configuration field an environment variable overrides.
enum EnvField {
    Text(fn(&mut StationConfig) -> &mut String),
    Path(fn(&mut StationConfig) -> &mut PathBuf),
    OptionalPath(fn(&mut StationConfig) -> &mut Option<PathBuf>),
    /// `1`/`true`/`yes` or `0`/`false`/`no`.
    Flag(fn(&mut StationConfig) -> &mut bool),
}

/// The `KF_*` environment overrides and the fields they set.
const ENV_OVERRIDES: &[(&str, EnvField)] = &[
    ("KF_STATION_ID", EnvField::Text(|c| &mut c.station_id)),
    ("KF_READER", EnvField::Text(|c| &mut c.reader)),
    ("KF_SIM", EnvField::Flag(|c| &mut c.sim)),
    (
        "KF_SECURITY_LEVEL",
        EnvField::Text(|c| &mut c.security_level),
    ),
    ("KF_SCP_MODE", EnvField::Text(|c| &mut c.scp_mode)),
    ("KF_P1_STYLE", EnvField::Text(|c| &mut c.p1_style)),
    ("KF_VERIFY", EnvField::Flag(|c| &mut c.verify)),
    ("KF_ISD_STATUS", EnvField::Text(|c| &mut c.isd_status)),
    (
        "KF_AUDIT_FILE",
        EnvField::OptionalPath(|c| &mut c.audit_file),
    ),
    ("KF_JOURNAL", EnvField::Path(|c| &mut c.journal)),
    ("KF_SOURCE", EnvField::Text(|c| &mut c.source.kind)),
    ("KF_KLMS_URL", EnvField::Text(|c| &mut c.klms.url)),
    (
        "KF_SOURCE_DIR",
        EnvField::OptionalPath(|c| &mut c.source.dir),
    ),
    (
        "KF_DONE_DIR",
        EnvField::OptionalPath(|c| &mut c.source.done_dir),
    ),
    (
        "KF_KEEP_PACKAGES",
        EnvField::Flag(|c| &mut c.source.keep_packages),
    ),
    (
        "KF_MANIFEST_KEY",
        EnvField::OptionalPath(|c| &mut c.source.manifest_key),
    ),
    (
        "KF_REQUIRE_MANIFEST",
        EnvField::Flag(|c| &mut c.source.require_manifest),
    ),
];

impl StationConfig {
    /// Reads a TOML file (when `path` is `None`: the default one of
    /// [`crate::paths::default_config`], else the defaults), then applies the
    /// `KF_*` environment overrides.
    pub fn load(path: Option<&Path>) -> anyhow::Result<StationConfig> {
        let default = crate::paths::default_config();
        let mut config = match path.or(default.as_deref()) {
            Some(p) => {
                let text = kf_files::read_regular_text(
                    p,
                    kf_files::CONFIG_MAX_BYTES,
                    kf_files::Links::Follow,
                )
                .with_context(|| format!("config {}: cannot read", p.display()))?;
                toml::from_str(&text).map_err(|e| {
                    anyhow::anyhow!("config {}: {}", p.display(), one_line(&text, &e))
                })?
            }
            None => StationConfig::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        config.check_readers()?;
        Ok(config)
    }

    /// Every `[[readers]]` entry has a name and a valid, unique identifier.
    fn check_readers(&self) -> anyhow::Result<()> {
        let mut seen = std::collections::BTreeSet::new();
        for (n, spec) in self.readers.iter().enumerate() {
            if spec.name.trim().is_empty() {
                bail!("readers[{n}]: name is empty");
            }
            kf_audit::identifier::check_identifier(&spec.reader_id)
                .with_context(|| format!("readers[{n}]: reader_id"))?;
            if !seen.insert(spec.reader_id.as_str()) {
                bail!("readers[{n}]: reader_id {:?} is used twice", spec.reader_id);
            }
        }
        Ok(())
    }

    /// Applies overrides from an environment lookup ([`ENV_OVERRIDES`], in
    /// that order).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        for (name, field) in ENV_OVERRIDES {
            let Some(v) = get(name) else { continue };
            match field {
                EnvField::Text(f) => *f(self) = v,
                EnvField::Path(f) => *f(self) = v.into(),
                EnvField::OptionalPath(f) => *f(self) = Some(v.into()),
                EnvField::Flag(f) => {
                    *f(self) = match v.as_str() {
                        "1" | "true" | "yes" => true,
                        "0" | "false" | "no" => false,
                        _ => bail!("{name} must be true or false"),
                    }
                }
            }
        }
        Ok(())
    }

    /// The reader's identifier in audit records and KLMS requests: `[klms]
    /// reader_id`, else the PC/SC reader name made an identifier (most
    /// names have spaces, which the KLMS refuses); none for a virtual fob.
    pub fn reader_id(&self) -> Option<String> {
        self.klms.reader_id.clone().or_else(|| {
            (!self.reader.is_empty()).then(|| kf_audit::identifier::from_name(&self.reader))
        })
    }

    /// The pipeline options this configuration describes.
    pub fn pipeline_options(&self) -> anyhow::Result<PipelineOptions> {
        let level = u8::from_str_radix(&self.security_level, 16)
            .ok()
            .and_then(|v| SecurityLevel::new(v).ok())
            .filter(|l| l.c_mac())
            .with_context(|| {
                format!(
                    "security level {:?}: use 01, 03, 11, 13 or 33 (STORE DATA needs C-MAC)",
                    self.security_level
                )
            })?;
        let mode = match self.scp_mode.to_ascii_uppercase().as_str() {
            "S8" => Mode::S8,
            "S16" => Mode::S16,
            other => bail!("scp_mode {other:?}: use S8 or S16"),
        };
        let p1_style = match self.p1_style.as_str() {
            "jcshell" => P1Style::JcShell,
            "gp-dgi" => P1Style::GpDgi,
            other => bail!("p1_style {other:?}: use jcshell or gp-dgi"),
        };
        let isd_status = match self.isd_status.as_str() {
            "none" => None,
            "secured" => Some(IsdStatus::Secured),
            "locked" => Some(IsdStatus::CardLocked),
            other => bail!("isd_status {other:?}: use none, secured or locked"),
        };
        Ok(PipelineOptions {
            station_id: self.station_id.clone(),
            reader_id: self.reader_id(),
            extended_length_needs_atr: self.extended_length == ExtendedLength::Auto,
            plan: PlanOptions {
                security_level: level,
                mode,
                p1_style,
                extended_length: self.extended_length != ExtendedLength::Off,
                last_block: if self.last_block_on_data {
                    LastBlockStyle::OnLastDataBlock
                } else {
                    LastBlockStyle::SeparateEmptyBlock
                },
                ..PlanOptions::default()
            },
            verify: if self.verify {
                VerifyMode::Require
            } else {
                VerifyMode::Skip("disabled in the station configuration".into())
            },
            isd_status,
            ..PipelineOptions::default()
        })
    }
}

/// A TOML error as one line: the message, the key and where it is.
///
/// toml's own `Display` is a multi-line snippet with a caret, which breaks
/// the station's one-line error convention (logs, the operator's terminal).
/// Example: `unknown field `foo`, expected one of … (key `foo` at line 3 column 1)`.
fn one_line(text: &str, error: &toml::de::Error) -> String {
    let message = crate::text::join_lines(error.message());
    let Some(span) = error.span() else {
        return message;
    };
    let start = span.start.min(text.len());
    let before = text.get(..start).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    match key_at(text, line) {
        Some(key) => format!("{message} (key `{key}` at line {line} column {column})"),
        None => format!("{message} (at line {line} column {column})"),
    }
}

/// The dotted key assigned on line `line` (1-based) of a simple TOML file:
/// `[table]` header above it, then `name = ...` on the line.
fn key_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let index = line.checked_sub(1)?;
    let (name, _) = lines.get(index)?.split_once('=')?;
    let name = name.trim().trim_matches('"');
    if name.is_empty() || name.starts_with('[') || name.starts_with('#') {
        return None;
    }
    let table = lines.get(..index)?.iter().rev().find_map(|l| {
        let l = l.trim();
        l.starts_with('[')
            .then(|| l.trim_start_matches('[').trim_end_matches(']').trim())
    });
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{name}"),
        _ => name.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_seed() {
        let opts = StationConfig::default().pipeline_options().unwrap();
        assert_eq!(opts.plan.security_level, SecurityLevel::C_MAC);
        assert_eq!(opts.plan.p1_style, P1Style::JcShell);
        assert_eq!(opts.isd_status, None);
        assert_eq!(opts.verify, VerifyMode::Require);
    }

    #[test]
    fn toml_and_environment_overrides() {
        let mut config: StationConfig = toml::from_str(
            "station_id = \"LINE-04\"\nsecurity_level = \"33\"\n[source]\nkind = \"container\"\ndir = \"/pool\"\n",
        )
        .unwrap();
        config
            .apply_env(|k| match k {
                "KF_STATION_ID" => Some("LINE-05".into()),
                "KF_ISD_STATUS" => Some("secured".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.station_id, "LINE-05");
        let opts = config.pipeline_options().unwrap();
        assert_eq!(opts.plan.security_level, SecurityLevel::FULL);
        assert_eq!(opts.isd_status, Some(IsdStatus::Secured));
        assert_eq!(config.source.dir.as_deref(), Some(Path::new("/pool")));
    }

    fn load_text(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("station.toml");
        std::fs::write(&path, text).unwrap();
        let error = StationConfig::load(Some(&path)).unwrap_err();
        format!("{error:#}").replace(&path.display().to_string(), "PATH")
    }

    #[test]
    fn extended_length_takes_auto_on_off_and_booleans() {
        let parse = |value: &str| {
            toml::from_str::<StationConfig>(&format!("extended_length = {value}"))
                .map(|c| c.extended_length)
                .map_err(|e| e.message().to_string())
        };
        assert_eq!(parse("\"auto\""), Ok(ExtendedLength::Auto));
        assert_eq!(parse("\"on\""), Ok(ExtendedLength::On));
        assert_eq!(parse("\"off\""), Ok(ExtendedLength::Off));
        assert_eq!(parse("true"), Ok(ExtendedLength::On));
        assert_eq!(parse("false"), Ok(ExtendedLength::Off));
        assert_eq!(
            parse("\"yes\""),
            Err("extended_length must be \"auto\", \"on\", \"off\", true or false".into())
        );
        assert_eq!(
            StationConfig::default().extended_length,
            ExtendedLength::Auto
        );
        let options = |e| {
            StationConfig {
                extended_length: e,
                ..StationConfig::default()
            }
            .pipeline_options()
            .unwrap()
        };
        let auto = options(ExtendedLength::Auto);
        assert!(auto.plan.extended_length && auto.extended_length_needs_atr);
        let on = options(ExtendedLength::On);
        assert!(on.plan.extended_length && !on.extended_length_needs_atr);
        assert!(!options(ExtendedLength::Off).plan.extended_length);
    }

    #[test]
    fn toml_errors_are_one_line_with_file_key_and_position() {
        // (config text, the line starts with, contains, ends with); "" checks nothing.
        for (text, starts, contains, ends) in [
            (
                "station_id = \"L\"\n\nfoo = 1\n",
                "config PATH: unknown field `foo`",
                "",
                "(key `foo` at line 3 column 1)",
            ),
            (
                "station_id = \"L\"\nverify = \"yes\"\n",
                "config PATH: invalid type: string \"yes\", expected a boolean",
                "",
                "(key `verify` at line 2 column 10)",
            ),
            (
                "[source]\nkind = \"dev\"\ndri = \"/pool\"\n",
                "",
                "unknown field `dri`",
                "(key `source.dri` at line 3 column 1)",
            ),
            ("station_id = \n", "config PATH: ", "line 1", ""),
        ] {
            let line = load_text(text);
            assert!(!line.contains('\n'), "{line}");
            assert!(line.starts_with(starts), "{line}");
            assert!(line.contains(contains), "{line}");
            assert!(line.ends_with(ends), "{line}");
        }
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let unknown = toml::from_str::<StationConfig>("unknown_key = 1").unwrap_err();
        assert!(
            unknown.message().starts_with("unknown field `unknown_key`"),
            "{unknown}"
        );
        for (k, v, message) in [
            (
                "KF_SECURITY_LEVEL",
                "00",
                "security level \"00\": use 01, 03, 11, 13 or 33 (STORE DATA needs C-MAC)",
            ),
            (
                "KF_SECURITY_LEVEL",
                "zz",
                "security level \"zz\": use 01, 03, 11, 13 or 33 (STORE DATA needs C-MAC)",
            ),
            ("KF_P1_STYLE", "x", "p1_style \"x\": use jcshell or gp-dgi"),
            (
                "KF_ISD_STATUS",
                "gone",
                "isd_status \"gone\": use none, secured or locked",
            ),
        ] {
            let mut c = StationConfig::default();
            c.apply_env(|key| (key == k).then(|| v.to_string()))
                .unwrap();
            let error = c.pipeline_options().unwrap_err();
            assert_eq!(error.to_string(), message, "{k}={v}");
        }
        let mut c = StationConfig::default();
        let error = c
            .apply_env(|k| (k == "KF_SIM").then(|| "maybe".into()))
            .unwrap_err();
        assert_eq!(error.to_string(), "KF_SIM must be true or false");
    }
}
