//! The line station behind `run`: every configured reader at once.
//!
//! ```text
//! supervisor (the calling thread): reader list + PnP notification
//!   └─ one worker per reader present, own PC/SC context:
//!        CardWatch ─Inserted─▶ connect ─▶ Recorder::provision_shown ─▶ PASS/FAIL line
//!                                 └─ no connection ─▶ the same pipeline over the
//!                                    reader's error: FAILURE at READ_UID, journaled
//! shared: one Recorder (one journal chain), one source (a pool behind one
//! lock, or a KLMS source per reader naming it), the console
//! Ctrl-C: stop flag + every wait cancelled; a fob in flight finishes and is
//! journaled before its worker ends
//! ```
//!
//! A reader that disappears ends its worker; a fob it was personalizing
//! fails with the reader's error at the stage it reached, journaled like any
//! other failure. A reader that appears (or comes back) gets a worker.

use std::collections::BTreeMap;

use crate::config::ReaderSpec;

#[cfg(any(feature = "pcsc", windows, target_os = "macos"))]
mod workers;
#[cfg(any(feature = "pcsc", windows, target_os = "macos"))]
pub use workers::{Line, LineSetup, Sources};

/// Which readers `run` drives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderSelection {
    /// One reader by its exact name, with its identifier.
    One {
        /// PC/SC name.
        name: String,
        /// Identifier in audit records and on the console.
        reader_id: String,
    },
    /// The `[[readers]]` entries of the configuration.
    Configured(Vec<ReaderSpec>),
    /// Every reader present (`--readers all`), named after its PC/SC name.
    All,
}

impl ReaderSelection {
    /// The readers of `present` this selection drives, each with its
    /// identifier, in the order of `present`.
    pub fn assign(&self, present: &[String]) -> Vec<(String, String)> {
        match self {
            ReaderSelection::One { name, reader_id } => present
                .iter()
                .filter(|p| *p == name)
                .map(|p| (p.clone(), reader_id.clone()))
                .collect(),
            ReaderSelection::Configured(specs) => {
                let mut out: Vec<(String, String)> = Vec::new();
                for spec in specs {
                    let pattern = wildmatch::WildMatch::new(&spec.name);
                    let mut n = 0;
                    for name in present {
                        if out.iter().any(|(taken, _)| taken == name) || !pattern.matches(name) {
                            continue;
                        }
                        n += 1;
                        let id = match n {
                            1 => spec.reader_id.clone(),
                            _ => format!("{}-{n}", spec.reader_id),
                        };
                        out.push((name.clone(), id));
                    }
                }
                out
            }
            ReaderSelection::All => {
                let mut ids: BTreeMap<String, usize> = BTreeMap::new();
                present
                    .iter()
                    .map(|name| {
                        let base = kf_audit::identifier::from_name(name);
                        let n = ids.entry(base.clone()).or_default();
                        *n += 1;
                        let id = match *n {
                            1 => base,
                            n => format!("{base}-{n}"),
                        };
                        (name.clone(), id)
                    })
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn spec(name: &str, reader_id: &str) -> ReaderSpec {
        ReaderSpec {
            name: name.into(),
            reader_id: reader_id.into(),
        }
    }

    #[test]
    fn configured_patterns_claim_readers_in_order_and_number_the_extra_ones() {
        let present = names(&[
            "ACS ACR1252 Dual Reader PICC 0",
            "ACS ACR1252 Dual Reader SAM 0",
            "ACS ACR1252 Dual Reader PICC 1",
            "Virtual PCD 00 00",
        ]);
        let selection = ReaderSelection::Configured(vec![
            spec("ACS * PICC 1", "LINE_04_READER_02"),
            spec("ACS * PICC ?", "LINE_04_READER_01"),
        ]);
        assert_eq!(
            selection.assign(&present),
            vec![
                (present[2].clone(), "LINE_04_READER_02".to_string()),
                (present[0].clone(), "LINE_04_READER_01".to_string()),
            ]
        );
        let two = ReaderSelection::Configured(vec![spec("Virtual PCD 00 *", "VPCD")]);
        assert_eq!(
            two.assign(&names(&["Virtual PCD 00 00", "Virtual PCD 00 01"])),
            vec![
                ("Virtual PCD 00 00".to_string(), "VPCD".to_string()),
                ("Virtual PCD 00 01".to_string(), "VPCD-2".to_string()),
            ]
        );
    }

    #[test]
    fn all_readers_get_identifiers_from_their_names() {
        let present = names(&["Virtual PCD 00 00", "Virtual PCD 00 00", "  (x) ", ""]);
        let ids: Vec<String> = ReaderSelection::All
            .assign(&present)
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        assert_eq!(
            ids,
            ["Virtual_PCD_00_00", "Virtual_PCD_00_00-2", "x__", "READER"]
        );
        for id in ids {
            kf_audit::identifier::check_identifier(&id).unwrap();
        }
        let long = "Ä".repeat(80);
        let (_, id) = &ReaderSelection::All.assign(&[long])[0];
        assert_eq!(id, "READER");
    }

    #[test]
    fn one_reader_is_matched_by_its_exact_name() {
        let selection = ReaderSelection::One {
            name: "Virtual PCD 00 01".into(),
            reader_id: "R1".into(),
        };
        assert_eq!(
            selection.assign(&names(&["Virtual PCD 00 00", "Virtual PCD 00 01"])),
            vec![("Virtual PCD 00 01".to_string(), "R1".to_string())]
        );
        assert!(selection.assign(&names(&["Virtual PCD 00 00"])).is_empty());
    }
}
