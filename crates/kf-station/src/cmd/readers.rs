//! `kf-station readers`: list PC/SC readers and whether a card is present.

use crate::exit;

/// Prints the readers (a table, or JSON with `--json`).
pub fn run(json: bool) -> u8 {
    match kf_transport::readers::list_readers_with_status() {
        Ok(readers) => {
            if json {
                match serde_json::to_string_pretty(&readers) {
                    Ok(text) => outln!("{text}"),
                    Err(e) => {
                        errln!("error: {e}");
                        return exit::FAILED;
                    }
                }
            } else if readers.is_empty() {
                outln!("no readers found");
            } else {
                for r in &readers {
                    let state = if r.card_present {
                        "card present"
                    } else {
                        "empty"
                    };
                    match &r.atr {
                        Some(atr) => outln!("{}\t{state}\tATR {atr}", r.name),
                        None => outln!("{}\t{state}", r.name),
                    }
                }
            }
            exit::OK
        }
        Err(e) => {
            errln!("error: {e}");
            exit::FAILED
        }
    }
}
