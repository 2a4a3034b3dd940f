//! Dialpad timestamps (Unix milliseconds, UTC) and durations (milliseconds) in words.
//!
//! Civil-date conversion is Howard Hinnant's `civil_from_days`, a dozen lines; a date crate
//! with time-zone data would cost far more of the component's size budget than it saves.

/// `2026-03-10 15:04 UTC` for a Unix-milliseconds timestamp.
pub fn utc_minutes(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

/// `2026-03-10T15:04:05.000Z` (ISO 8601, UTC) for a Unix-milliseconds timestamp.
pub fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, ms.rem_euclid(1000))
}

/// `4m 07s`, `1h 02m 03s`, `38s` for a duration in milliseconds (rounded to the second).
pub fn duration(ms: i64) -> String {
    // Saturating: a talk time of i64::MAX ms (a corrupt field) must not wrap to a negative one.
    let total = ms.max(0).saturating_add(500) / 1000;
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// Reads back what [`utc_minutes`] wrote.
pub fn parse_utc_minutes(text: &str) -> Option<i64> {
    let rest = text.trim().strip_suffix(" UTC")?;
    let (date, clock) = rest.split_once(' ')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (h, min) = clock.split_once(':')?;
    let (h, min) = (h.parse::<i64>().ok()?, min.parse::<i64>().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || !(0..24).contains(&h) || !(0..60).contains(&min) {
        return None;
    }
    Some((days_from_civil(y, m, day) * 86_400 + h * 3600 + min * 60) * 1000)
}

/// Reads back what [`duration`] wrote, in milliseconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let mut secs = 0i64;
    for part in text.split_whitespace() {
        let (n, unit) = part.split_at(part.find(|c: char| !c.is_ascii_digit())?);
        let n: i64 = n.parse().ok()?;
        secs += n * match unit {
            "h" => 3600,
            "m" => 60,
            "s" => 1,
            _ => return None,
        };
    }
    Some(secs * 1000)
}

pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_durations_read_well() {
        assert_eq!(utc_minutes(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_minutes(1_773_155_045_211), "2026-03-10 15:04 UTC");
        assert_eq!(utc_minutes(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(duration(247_318), "4m 07s");
        assert_eq!(duration(38_000), "38s");
        assert_eq!(duration(3_723_400), "1h 02m 03s");
        assert_eq!(duration(-5), "0s");
    }

    #[test]
    fn what_is_written_reads_back() {
        for ms in [0, 1_773_155_040_000, 951_782_400_000, 4_102_444_800_000] {
            assert_eq!(parse_utc_minutes(&utc_minutes(ms)), Some(ms), "{ms}");
        }
        for ms in [0, 38_000, 247_000, 3_723_000] {
            assert_eq!(parse_duration(&duration(ms)), Some(ms));
        }
        assert_eq!(parse_utc_minutes("yesterday"), None);
        assert_eq!(parse_duration("4 minutes"), None);
    }
}
