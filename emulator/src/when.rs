//! Times as the service writes them: OSS policy expirations (`2025-07-12T12:10:24.488Z`), the
//! date segment of an `upload_dir`, and task times (`2025-07-12 12:10:24.488`).

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, NaiveDateTime, Utc};

/// The time as chrono reads it; a clock moved past chrono's range (a test may move it by any
/// amount) reads as its last representable instant rather than panicking.
fn utc(t: SystemTime) -> DateTime<Utc> {
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(_) => (0, 0),
    };
    DateTime::from_timestamp(secs, nanos).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, as OSS policies and the emulator's clock endpoint write it.
pub(crate) fn iso8601(t: SystemTime) -> String {
    utc(t).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// `YYYY-MM-DD HH:MM:SS.mmm`, the task API's `submit_time`, `end_time` and friends.
pub(crate) fn service_time(t: SystemTime) -> String {
    utc(t).format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// `YYYY-MM-DD`, the date segment of an `upload_dir` and of the daily capacity.
pub(crate) fn date(t: SystemTime) -> String {
    utc(t).format("%Y-%m-%d").to_string()
}

/// A policy's `expiration`: UTC with a `Z`, fractions optional (OSS refuses other forms).
pub(crate) fn parse_expiration(s: &str) -> Option<SystemTime> {
    let naive = NaiveDateTime::parse_from_str(s.strip_suffix('Z')?, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    Some(naive.and_utc().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_documented_expiration() {
        let t = parse_expiration("2025-07-12T12:10:24.488Z").expect("parses");
        assert_eq!(iso8601(t), "2025-07-12T12:10:24.488Z");
        assert_eq!(date(t), "2025-07-12");
        assert_eq!(service_time(t), "2025-07-12 12:10:24.488");
        for bad in [
            "",
            "2025-07-12",
            "2025-13-01T00:00:00Z",
            "2025-07-12T12:10:24+08:00",
        ] {
            assert!(parse_expiration(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_clock_moved_past_any_calendar_does_not_panic() {
        let far = UNIX_EPOCH + std::time::Duration::from_secs(10_000_000_000_000);
        assert!(iso8601(far).ends_with('Z'));
        assert!(!date(far).is_empty());
    }
}
