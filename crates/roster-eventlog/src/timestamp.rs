//! Times as the log writes them: RFC 3339 in UTC with milliseconds (`2026-11-24T21:14:31.123Z`).

use roster_core::Time;

/// Formats a time as RFC 3339 in UTC with milliseconds, as the log and the HTTP API show it.
pub fn rfc3339(time: Time) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(time.unix_ms());
    humantime::format_rfc3339_millis(at).to_string()
}

/// Reads a time as [`rfc3339`] writes it (`2026-11-24T21:14:31.123Z`), or any RFC 3339 time in UTC, back into
/// Unix milliseconds, for programs that replay event logs; `None` for anything else or an impossible date.
pub fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    let at = humantime::parse_rfc3339(text).ok()?;
    let since = at.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(since.as_millis()).ok()
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
