//! Times as the log writes them: RFC 3339 in UTC with milliseconds (`2026-11-24T21:14:31.123Z`).

use roster_core::Time;

/// Formats a time as RFC 3339 in UTC with milliseconds, as the log and the HTTP API show it.
pub fn rfc3339(time: Time) -> String {
    let ms = time.unix_ms();
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    let nanos = u32::try_from(ms % 1000).unwrap_or(0) * 1_000_000;
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map(|t| t.replace_nanosecond(nanos).unwrap_or(t))
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| format!("@{ms}ms"))
}

/// Reads a time as [`rfc3339`] writes it back into Unix milliseconds; `None` for any other shape or an
/// impossible date.
pub fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let shape = b.len() == 24
        && [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
            (23, b'Z'),
        ]
        .iter()
        .all(|&(at, c)| b[at] == c);
    if !shape {
        return None;
    }
    let num = |at: usize, len: usize| -> Option<u16> {
        let digits = text.get(at..at + len)?;
        digits
            .bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| digits.parse().ok())?
    };
    let month = time::Month::try_from(u8::try_from(num(5, 2)?).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(i32::from(num(0, 4)?), month, num(8, 2)? as u8).ok()?;
    let at = date
        .with_hms_milli(
            num(11, 2)? as u8,
            num(14, 2)? as u8,
            num(17, 2)? as u8,
            num(20, 3)?,
        )
        .ok()?
        .assume_utc();
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_times_read_back_to_the_millisecond() {
        for ms in [0, 951_825_600_500, 1_795_554_871_123] {
            assert_eq!(parse_rfc3339_ms(&rfc3339(Time::from_unix_ms(ms))), Some(ms));
        }
        assert_eq!(
            parse_rfc3339_ms("2026-11-24T21:14:31.123Z"),
            Some(1_795_554_871_123)
        );
        for bad in [
            "2026-11-24 21:14:31Z",
            "2026-02-30T00:00:00.000Z",
            "2026-11-24T21:14:31.12xZ",
            "",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn time_is_rfc3339_utc_with_milliseconds() {
        assert_eq!(
            rfc3339(Time::from_unix_ms(1_795_986_130_004)),
            "2026-11-29T21:02:10.004Z"
        );
        assert_eq!(rfc3339(Time::ZERO), "1970-01-01T00:00:00.000Z");
    }
}
