//! The one timestamp text of the station's records and of the KLMS answers.

use time::{OffsetDateTime, UtcOffset};

/// `2023-10-27T14:32:01.123Z`: RFC 3339, UTC, milliseconds.
pub fn format_timestamp(at: OffsetDateTime) -> String {
    let utc = at.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
        utc.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn utc_with_milliseconds() {
        assert_eq!(
            format_timestamp(datetime!(2023-10-27 16:32:01.123456 +02:00)),
            "2023-10-27T14:32:01.123Z"
        );
        assert_eq!(
            format_timestamp(datetime!(0999-01-02 03:04:05 UTC)),
            "0999-01-02T03:04:05.000Z"
        );
    }
}
