//! UTC timestamps in the ISO 8601 form OSS policies use (`2025-07-12T12:10:24.488Z`), without a
//! date-time dependency: the civil-date arithmetic is a few lines (Howard Hinnant's algorithms).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

// The client formats expiries in its errors; the emulator, its policies and upload dirs.

/// Days since 1970-01-01 → (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn since_epoch(t: SystemTime) -> Duration {
    t.duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_iso8601(t: SystemTime) -> String {
    let d = since_epoch(t);
    let secs = d.as_secs() as i64;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
/// `YYYY-MM-DD`, the date segment of an `upload_dir`.
pub fn format_date(t: SystemTime) -> String {
    let (year, month, day) = civil_from_days((since_epoch(t).as_secs() / 86_400) as i64);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff…]Z` (UTC only, as OSS writes it). `None` for anything else.
pub fn parse_iso8601(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let rest = s.get(19..)?;
    let rest = rest.strip_suffix('Z')?;
    let nanos = match rest.strip_prefix('.') {
        None if rest.is_empty() => 0,
        Some(frac)
            if !frac.is_empty() && frac.len() <= 9 && frac.bytes().all(|c| c.is_ascii_digit()) =>
        {
            frac.parse::<u32>().ok()? * 10u32.pow(9 - frac.len() as u32)
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_documented_expiration() {
        let t = parse_iso8601("2025-07-12T12:10:24.488Z").expect("parses");
        assert_eq!(format_iso8601(t), "2025-07-12T12:10:24.488Z");
        assert_eq!(format_date(t), "2025-07-12");
        assert_eq!(since_epoch(t).as_secs(), 1_752_322_224);
    }

    #[test]
    fn leap_days_and_bad_input() {
        let t = parse_iso8601("2024-02-29T23:59:59Z").expect("leap day");
        assert_eq!(
            format_iso8601(t + Duration::from_secs(1)),
            "2024-03-01T00:00:00.000Z"
        );
        for bad in [
            "",
            "2025-07-12",
            "2025-13-01T00:00:00Z",
            "2025-07-12T12:10:24+08:00",
            "2025-07-12T12:10:24.Z",
            "２０２５-07-12T12:10:24Z",
        ] {
            assert!(parse_iso8601(bad).is_none(), "{bad}");
        }
    }
}
