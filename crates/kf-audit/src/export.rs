//! JSON and CSV export of the journal.

use std::io::Write;

use crate::{AuditError, JournalReader, JournalRecord, ListFilter, UploadState};

/// Export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportFormat {
    /// One JSON array of records; bodies are embedded as JSON values.
    Json,
    /// RFC 4180 CSV with a header row; the body is one JSON text column.
    Csv,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(ExportFormat::Json),
            "csv" => Ok(ExportFormat::Csv),
            other => Err(format!(
                "unknown export format {other:?} (expected json or csv)"
            )),
        }
    }
}

fn upload_columns(state: &UploadState) -> (&'static str, &str) {
    match state {
        UploadState::Pending => ("pending", ""),
        UploadState::Acknowledged { at, .. } => ("acknowledged", at.as_str()),
        UploadState::Rejected(why) => ("rejected", why.as_str()),
    }
}

fn receipt(state: &UploadState) -> &str {
    match state {
        UploadState::Acknowledged { receipt, .. } => receipt,
        _ => "",
    }
}

fn json_value(record: &JournalRecord) -> Result<serde_json::Value, AuditError> {
    let (state, detail) = upload_columns(&record.upload);
    Ok(serde_json::json!({
        "seq": record.seq,
        "timestamp": record.timestamp,
        "transaction_id": record.transaction_id,
        "kind": record.kind.as_str(),
        "body": record.body_json()?,
        "prev_link": record.prev_link,
        "link": record.link,
        "upload_state": state,
        "upload_detail": detail,
        "receipt": receipt(&record.upload),
    }))
}

fn csv_field(out: &mut impl Write, value: &str) -> std::io::Result<()> {
    if value.contains([',', '"', '\n', '\r']) {
        write!(out, "\"{}\"", value.replace('"', "\"\""))
    } else {
        out.write_all(value.as_bytes())
    }
}

/// Writes the records selected by `filter` to `out` in `format`.
/// Returns the number of records written.
pub fn export(
    journal: &JournalReader,
    filter: &ListFilter,
    format: ExportFormat,
    out: &mut impl Write,
) -> Result<usize, AuditError> {
    let records = journal.list(filter)?;
    match format {
        ExportFormat::Json => {
            let values = records
                .iter()
                .map(json_value)
                .collect::<Result<Vec<_>, _>>()?;
            serde_json::to_writer_pretty(&mut *out, &values)
                .map_err(|e| AuditError::Io(std::io::Error::other(e)))?;
            writeln!(out)?;
        }
        ExportFormat::Csv => {
            writeln!(
                out,
                "seq,timestamp,transaction_id,kind,upload_state,upload_detail,prev_link,link,receipt,body"
            )?;
            for r in &records {
                let (state, detail) = upload_columns(&r.upload);
                write!(out, "{},", r.seq)?;
                for field in [
                    r.timestamp.as_str(),
                    r.transaction_id.as_str(),
                    r.kind.as_str(),
                    state,
                    detail,
                    r.prev_link.as_str(),
                    r.link.as_str(),
                    receipt(&r.upload),
                ] {
                    csv_field(out, field)?;
                    out.write_all(b",")?;
                }
                csv_field(out, &r.body)?;
                out.write_all(b"\r\n")?;
            }
        }
    }
    Ok(records.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RecordKind;
    use serde_json::json;

    #[test]
    fn json_and_csv_exports() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let mut j = crate::Journal::open(&path, crate::JournalKey::from_bytes([1; 32])).unwrap();
        j.append("t,1", RecordKind::Started, &json!({"note": "say \"hi\""}))
            .unwrap();
        j.append(
            "t,1",
            RecordKind::Outcome,
            &json!({"overall_result": "SUCCESS"}),
        )
        .unwrap();

        let j = JournalReader::open(&path).unwrap();
        let mut buf = Vec::new();
        assert_eq!(
            export(&j, &ListFilter::default(), ExportFormat::Json, &mut buf).unwrap(),
            2
        );
        let parsed: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(parsed[1]["body"]["overall_result"], "SUCCESS");
        assert_eq!(parsed[0]["kind"], "started");
        assert_eq!(parsed[1]["upload_state"], "pending");

        let mut csv = Vec::new();
        export(&j, &ListFilter::default(), ExportFormat::Csv, &mut csv).unwrap();
        let text = String::from_utf8(csv).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert!(lines[0].starts_with("seq,timestamp,transaction_id,kind"));
        assert!(text.contains("\"t,1\""));
        assert!(text.contains(r#""{""note"":""say \""hi\""""}""#));
        assert_eq!("CSV".parse::<ExportFormat>().unwrap(), ExportFormat::Csv);
        assert_eq!(
            "xml".parse::<ExportFormat>(),
            Err("unknown export format \"xml\" (expected json or csv)".to_owned())
        );
    }
}
