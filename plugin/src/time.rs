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

/// `4m 07s`, `1h 02m 03s`, `38s` for a duration in milliseconds (rounded to the second).
pub fn duration(ms: i64) -> String {
    let total = (ms.max(0) + 500) / 1000;
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
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
}
