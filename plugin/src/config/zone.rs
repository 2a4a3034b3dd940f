//! Time zones for follow-up due dates ("ISO 8601 with offset, in the configured time zone").
//!
//! The tz database (or `chrono-tz`, which embeds it) would cost far more of the component's size
//! budget than this feature is worth, so this is a hand-written table of common IANA zones, each
//! with its standard UTC offset and one of five daylight-saving rules, all computed from the
//! civil-date arithmetic in [`crate::inbound::time`]:
//!
//! * none;
//! * US/Canada: second Sunday of March 02:00 local standard → first Sunday of November 02:00
//!   local daylight;
//! * EU: last Sunday of March 01:00 UTC → last Sunday of October 01:00 UTC;
//! * Australia south-east: first Sunday of October 02:00 local standard → first Sunday of April
//!   03:00 local daylight (southern hemisphere: daylight time spans the new year);
//! * New Zealand: last Sunday of September 02:00 local standard → first Sunday of April 03:00
//!   local daylight.
//!
//! Zones covered (see [`ZONE_NAMES`]): UTC; America/New_York, Chicago, Denver, Phoenix (no DST),
//! Los_Angeles, Anchorage, Toronto, Vancouver, Edmonton, Winnipeg, Halifax, Mexico_City (no DST
//! since 2022), Bogota, Lima, Sao_Paulo, Argentina/Buenos_Aires, Puerto_Rico; Pacific/Honolulu;
//! Europe/London, Dublin, Lisbon, Paris, Berlin, Madrid, Rome, Amsterdam, Brussels, Zurich,
//! Vienna, Warsaw, Copenhagen, Oslo, Stockholm, Athens, Helsinki, Istanbul, Moscow;
//! Africa/Lagos, Johannesburg, Nairobi; Asia/Dubai, Karachi, Kolkata, Bangkok, Jakarta,
//! Singapore, Manila, Hong_Kong, Shanghai, Seoul, Tokyo; Australia/Perth, Brisbane (no DST),
//! Adelaide, Sydney, Melbourne, Hobart; Pacific/Auckland. Any other place can be configured as a
//! fixed offset such as `+05:45`.
//!
//! The rules are today's (US since 2007, EU since 1996, Australia since 2008, New Zealand since
//! 2007); instants before those years may get the wrong offset, which due dates never need.
//! Europe/Dublin's winter "negative DST" in the tz database gives the same offsets as London.

use crate::inbound::time::{civil_from_days, days_from_civil};

/// Daylight-saving rule of a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    None,
    Us,
    Eu,
    AuSe,
    Nz,
}

/// (IANA name, standard offset in minutes east of UTC, DST rule).
const TABLE: &[(&str, i16, Rule)] = &[
    ("UTC", 0, Rule::None),
    ("America/New_York", -300, Rule::Us),
    ("America/Chicago", -360, Rule::Us),
    ("America/Denver", -420, Rule::Us),
    ("America/Phoenix", -420, Rule::None),
    ("America/Los_Angeles", -480, Rule::Us),
    ("America/Anchorage", -540, Rule::Us),
    ("America/Toronto", -300, Rule::Us),
    ("America/Vancouver", -480, Rule::Us),
    ("America/Edmonton", -420, Rule::Us),
    ("America/Winnipeg", -360, Rule::Us),
    ("America/Halifax", -240, Rule::Us),
    ("America/Mexico_City", -360, Rule::None),
    ("America/Bogota", -300, Rule::None),
    ("America/Lima", -300, Rule::None),
    ("America/Sao_Paulo", -180, Rule::None),
    ("America/Argentina/Buenos_Aires", -180, Rule::None),
    ("America/Puerto_Rico", -240, Rule::None),
    ("Pacific/Honolulu", -600, Rule::None),
    ("Europe/London", 0, Rule::Eu),
    ("Europe/Dublin", 0, Rule::Eu),
    ("Europe/Lisbon", 0, Rule::Eu),
    ("Europe/Paris", 60, Rule::Eu),
    ("Europe/Berlin", 60, Rule::Eu),
    ("Europe/Madrid", 60, Rule::Eu),
    ("Europe/Rome", 60, Rule::Eu),
    ("Europe/Amsterdam", 60, Rule::Eu),
    ("Europe/Brussels", 60, Rule::Eu),
    ("Europe/Zurich", 60, Rule::Eu),
    ("Europe/Vienna", 60, Rule::Eu),
    ("Europe/Warsaw", 60, Rule::Eu),
    ("Europe/Copenhagen", 60, Rule::Eu),
    ("Europe/Oslo", 60, Rule::Eu),
    ("Europe/Stockholm", 60, Rule::Eu),
    ("Europe/Athens", 120, Rule::Eu),
    ("Europe/Helsinki", 120, Rule::Eu),
    ("Europe/Istanbul", 180, Rule::None),
    ("Europe/Moscow", 180, Rule::None),
    ("Africa/Lagos", 60, Rule::None),
    ("Africa/Johannesburg", 120, Rule::None),
    ("Africa/Nairobi", 180, Rule::None),
    ("Asia/Dubai", 240, Rule::None),
    ("Asia/Karachi", 300, Rule::None),
    ("Asia/Kolkata", 330, Rule::None),
    ("Asia/Bangkok", 420, Rule::None),
    ("Asia/Jakarta", 420, Rule::None),
    ("Asia/Singapore", 480, Rule::None),
    ("Asia/Manila", 480, Rule::None),
    ("Asia/Hong_Kong", 480, Rule::None),
    ("Asia/Shanghai", 480, Rule::None),
    ("Asia/Seoul", 540, Rule::None),
    ("Asia/Tokyo", 540, Rule::None),
    ("Australia/Perth", 480, Rule::None),
    ("Australia/Brisbane", 600, Rule::None),
    ("Australia/Adelaide", 570, Rule::AuSe),
    ("Australia/Sydney", 600, Rule::AuSe),
    ("Australia/Melbourne", 600, Rule::AuSe),
    ("Australia/Hobart", 600, Rule::AuSe),
    ("Pacific/Auckland", 720, Rule::Nz),
];

const fn names() -> [&'static str; TABLE.len()] {
    let mut out = [""; TABLE.len()];
    let mut i = 0;
    while i < TABLE.len() {
        out[i] = TABLE[i].0;
        i += 1;
    }
    out
}

/// The IANA names the table knows (for error messages and the JSON Schema enum/examples).
pub const ZONE_NAMES: &[&str] = &names();

/// A configured time zone: an IANA name from the table, "UTC", or a fixed offset like "+05:30" /
/// "-04:00".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone {
    name: &'static str,
    std: i16,
    rule: Rule,
}

/// Parses a zone setting; None when unknown. Accepts exact IANA names from the table
/// (case-sensitive as IANA spells them), "UTC", "Etc/UTC", and fixed offsets "+HH:MM"/"-HH:MM"
/// (hours 0..=14, minutes 0..=59).
pub fn zone(name: &str) -> Option<Zone> {
    let name = if name == "Etc/UTC" { "UTC" } else { name };
    if let Some(&(name, std, rule)) = TABLE.iter().find(|z| z.0 == name) {
        return Some(Zone { name, std, rule });
    }
    let b = name.as_bytes();
    let sign = match b.first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return None,
    };
    let digits = |i: usize| -> Option<i16> {
        let (t, u) = (b[i].wrapping_sub(b'0'), b[i + 1].wrapping_sub(b'0'));
        (t < 10 && u < 10).then_some(i16::from(t * 10 + u))
    };
    if b.len() != 6 || b[3] != b':' {
        return None;
    }
    let (h, m) = (digits(1)?, digits(4)?);
    (h <= 14 && m <= 59).then_some(Zone { name: "fixed offset", std: sign * (h * 60 + m), rule: Rule::None })
}

/// Day number (days since 1970-01-01) of the `n`th Sunday (1-based) of month `m`; `n == 0` is
/// the Sunday before the first one, i.e. the last Sunday of the previous month.
fn sunday(y: i64, m: i64, n: i64) -> i64 {
    let first = days_from_civil(y, m, 1);
    first + (7 - (first + 4).rem_euclid(7)) % 7 + 7 * (n - 1) // 1970-01-01 was a Thursday
}

impl Rule {
    /// Start and end of daylight time in `year`, in Unix minutes (UTC); the start is after the
    /// end in the southern hemisphere.
    fn window(self, year: i64, std: i64) -> Option<(i64, i64)> {
        let day = |m, n| sunday(year, m, n) * 1440;
        let dst = std + 60;
        Some(match self {
            Rule::None => return None,
            Rule::Us => (day(3, 2) + 120 - std, day(11, 1) + 120 - dst),
            Rule::Eu => (day(4, 0) + 60, day(11, 0) + 60),
            Rule::AuSe => (day(10, 1) + 120 - std, day(4, 1) + 180 - dst),
            Rule::Nz => (day(10, 0) + 120 - std, day(4, 1) + 180 - dst),
        })
    }
}

impl Zone {
    /// The IANA name ("UTC" for "Etc/UTC"), or "fixed offset".
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// UTC offset in minutes in effect at this instant (Unix ms, UTC).
    pub fn offset_minutes_at(&self, utc_ms: i64) -> i32 {
        i32::from(self.std) + self.dst_at(utc_ms.div_euclid(60_000))
    }

    /// Daylight saving (0 or 60 minutes) at a Unix minute.
    fn dst_at(&self, min: i64) -> i32 {
        let year = civil_from_days(min.div_euclid(1440)).0;
        let Some((start, end)) = self.rule.window(year, self.std.into()) else {
            return 0;
        };
        let on = if start < end { start <= min && min < end } else { min >= start || min < end };
        i32::from(on) * 60
    }

    /// `2026-03-11T09:00:00-05:00` (seconds always shown; `+00:00` for UTC, never `Z`).
    pub fn format_iso(&self, utc_ms: i64) -> String {
        let off = self.offset_minutes_at(utc_ms);
        let secs = utc_ms.div_euclid(1000) + i64::from(off) * 60;
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let rem = secs.rem_euclid(86_400);
        let (sign, a) = if off < 0 { ('-', -off) } else { ('+', off) };
        format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60, a / 60, a % 60)
    }

    /// The first instant strictly after `after_utc_ms` whose local wall-clock time is
    /// hour:minute, on the next local calendar day or later (i.e. "next day at 09:00"): take the
    /// local date of `after_utc_ms`, add `days_ahead` days (at least 1), at hour:minute local
    /// (clamped to 23:59). Returns Unix ms UTC.
    ///
    /// A wall-clock time skipped by the spring-forward gap moves forward by the gap (02:30 on
    /// the day New York skips 02:00–03:00 is 03:30 daylight time); a time that occurs twice in
    /// the fall-back overlap is its first occurrence.
    pub fn local_time_on_day_after(&self, after_utc_ms: i64, days_ahead: u32, hour: u32, minute: u32) -> i64 {
        let std = i64::from(self.std);
        let local_now = after_utc_ms.div_euclid(60_000) + i64::from(self.offset_minutes_at(after_utc_ms));
        let day = local_now.div_euclid(1440) + i64::from(days_ahead.max(1));
        let local = day * 1440 + i64::from(hour.min(23) * 60 + minute.min(59));
        // Daylight reading first (the earlier instant when both are valid), then standard; in the
        // gap neither is, and the standard reading lands one hour later on the wall clock.
        let daylight = local - std - 60;
        let utc_min = if self.dst_at(daylight) == 60 { daylight } else { local - std };
        utc_min.saturating_mul(60_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix ms for `YYYY-MM-DD HH:MM` UTC.
    fn at(text: &str) -> i64 {
        crate::inbound::time::parse_utc_minutes(&format!("{text} UTC")).unwrap()
    }

    fn off(name: &str, text: &str) -> i32 {
        zone(name).unwrap().offset_minutes_at(at(text))
    }

    #[test]
    fn table_is_well_formed() {
        assert_eq!(ZONE_NAMES.len(), TABLE.len());
        for (i, name) in ZONE_NAMES.iter().enumerate() {
            assert_eq!(zone(name).unwrap().name(), *name);
            assert!(!ZONE_NAMES[..i].contains(name), "duplicate {name}");
        }
        for name in [
            "UTC",
            "America/New_York",
            "America/Chicago",
            "America/Denver",
            "America/Phoenix",
            "America/Los_Angeles",
            "America/Anchorage",
            "Pacific/Honolulu",
            "America/Toronto",
            "America/Vancouver",
            "America/Halifax",
            "America/Mexico_City",
            "America/Sao_Paulo",
            "Europe/London",
            "Europe/Dublin",
            "Europe/Lisbon",
            "Europe/Paris",
            "Europe/Berlin",
            "Europe/Madrid",
            "Europe/Rome",
            "Europe/Amsterdam",
            "Europe/Stockholm",
            "Europe/Athens",
            "Europe/Helsinki",
            "Africa/Johannesburg",
            "Asia/Dubai",
            "Asia/Kolkata",
            "Asia/Singapore",
            "Asia/Manila",
            "Asia/Tokyo",
            "Australia/Sydney",
            "Australia/Melbourne",
            "Australia/Brisbane",
            "Australia/Perth",
            "Pacific/Auckland",
        ] {
            assert!(ZONE_NAMES.contains(&name), "{name}");
        }
    }

    #[test]
    fn parses_names_utc_and_fixed_offsets() {
        assert_eq!(zone("Etc/UTC"), zone("UTC"));
        assert_eq!(zone("Etc/UTC").unwrap().name(), "UTC");
        let plus = zone("+05:30").unwrap();
        assert_eq!(plus.name(), "fixed offset");
        assert_eq!(plus.offset_minutes_at(at("2026-07-01 00:00")), 330);
        assert_eq!(zone("-04:00").unwrap().offset_minutes_at(at("2026-01-01 00:00")), -240);
        assert_eq!(zone("+14:00").unwrap().offset_minutes_at(0), 840);
        assert_eq!(zone("-00:00").unwrap().offset_minutes_at(0), 0);
        for bad in [
            "Mars/Base",
            "+15:00",
            "America/new_york",
            "",
            "utc",
            "+5:30",
            "+05:60",
            "05:30",
            "+05-30",
            "+05:30 ",
            "+0a:00",
            "+05:3",
            "+005:30",
            "Europe/London ",
        ] {
            assert_eq!(zone(bad), None, "{bad}");
        }
    }

    #[test]
    fn new_york_transitions_2026() {
        assert_eq!(off("America/New_York", "2026-03-08 06:59"), -300);
        assert_eq!(off("America/New_York", "2026-03-08 07:00"), -240);
        assert_eq!(off("America/New_York", "2026-11-01 05:59"), -240);
        assert_eq!(off("America/New_York", "2026-11-01 06:00"), -300);
        assert_eq!(off("America/New_York", "2026-01-15 12:00"), -300);
        assert_eq!(off("America/New_York", "2026-07-15 12:00"), -240);
        // 2027: second Sunday of March is the 14th, first Sunday of November the 7th.
        assert_eq!(off("America/Los_Angeles", "2027-03-14 09:59"), -480);
        assert_eq!(off("America/Los_Angeles", "2027-03-14 10:00"), -420);
        assert_eq!(off("America/Los_Angeles", "2027-11-07 08:59"), -420);
        assert_eq!(off("America/Los_Angeles", "2027-11-07 09:00"), -480);
    }

    #[test]
    fn europe_transitions_2026() {
        assert_eq!(off("Europe/London", "2026-03-29 00:59"), 0);
        assert_eq!(off("Europe/London", "2026-03-29 01:00"), 60);
        assert_eq!(off("Europe/London", "2026-10-25 00:59"), 60);
        assert_eq!(off("Europe/London", "2026-10-25 01:00"), 0);
        assert_eq!(off("Europe/Berlin", "2026-03-29 00:59"), 60);
        assert_eq!(off("Europe/Berlin", "2026-03-29 01:00"), 120);
        assert_eq!(off("Europe/Athens", "2026-10-25 00:59"), 180);
        assert_eq!(off("Europe/Athens", "2026-10-25 01:00"), 120);
    }

    #[test]
    fn southern_hemisphere_transitions_2026() {
        // Sydney: DST ends 2026-04-05 03:00 AEDT (16:00Z Apr 4), starts 2026-10-04 02:00 AEST
        // (16:00Z Oct 3).
        assert_eq!(off("Australia/Sydney", "2026-01-15 00:00"), 660);
        assert_eq!(off("Australia/Sydney", "2026-04-04 15:59"), 660);
        assert_eq!(off("Australia/Sydney", "2026-04-04 16:00"), 600);
        assert_eq!(off("Australia/Sydney", "2026-10-03 15:59"), 600);
        assert_eq!(off("Australia/Sydney", "2026-10-03 16:00"), 660);
        assert_eq!(off("Australia/Sydney", "2026-12-31 23:59"), 660);
        assert_eq!(off("Australia/Adelaide", "2026-10-03 16:29"), 570);
        assert_eq!(off("Australia/Adelaide", "2026-10-03 16:30"), 630);
        assert_eq!(off("Australia/Brisbane", "2026-01-15 00:00"), 600);
        // Auckland: DST ends 2026-04-05 03:00 NZDT (14:00Z Apr 4), starts 2026-09-27 02:00 NZST
        // (14:00Z Sep 26).
        assert_eq!(off("Pacific/Auckland", "2026-04-04 13:59"), 780);
        assert_eq!(off("Pacific/Auckland", "2026-04-04 14:00"), 720);
        assert_eq!(off("Pacific/Auckland", "2026-09-26 13:59"), 720);
        assert_eq!(off("Pacific/Auckland", "2026-09-26 14:00"), 780);
    }

    #[test]
    fn zones_without_dst_keep_their_offset() {
        for text in ["2026-01-15 12:00", "2026-03-08 07:00", "2026-07-15 12:00", "2026-11-01 06:00"] {
            assert_eq!(off("America/Phoenix", text), -420);
            assert_eq!(off("Asia/Kolkata", text), 330);
            assert_eq!(off("America/Mexico_City", text), -360);
            assert_eq!(off("UTC", text), 0);
        }
    }

    #[test]
    fn formats_iso_with_offset() {
        let ny = zone("America/New_York").unwrap();
        assert_eq!(ny.format_iso(at("2026-03-11 13:00")), "2026-03-11T09:00:00-04:00");
        assert_eq!(ny.format_iso(at("2026-01-02 03:04") + 5_999), "2026-01-01T22:04:05-05:00");
        assert_eq!(zone("UTC").unwrap().format_iso(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(zone("Asia/Kolkata").unwrap().format_iso(at("2026-03-10 15:04")), "2026-03-10T20:34:00+05:30");
        assert_eq!(zone("-04:00").unwrap().format_iso(at("2026-03-10 02:00")), "2026-03-09T22:00:00-04:00");
        assert_eq!(zone("Pacific/Auckland").unwrap().format_iso(at("2026-12-31 11:00")), "2027-01-01T00:00:00+13:00");
        assert_eq!(zone("America/Phoenix").unwrap().format_iso(-1), "1969-12-31T16:59:59-07:00");
    }

    #[test]
    fn next_day_at_local_time() {
        let ny = zone("America/New_York").unwrap();
        let due = ny.local_time_on_day_after(at("2026-03-10 15:04"), 1, 9, 0);
        assert_eq!(due, at("2026-03-11 13:00"));
        assert_eq!(ny.format_iso(due), "2026-03-11T09:00:00-04:00");
        // Local date, not UTC date: 2026-03-11 02:00Z is still the 10th in New York.
        assert_eq!(ny.local_time_on_day_after(at("2026-03-11 02:00"), 1, 9, 0), at("2026-03-11 13:00"));
        assert_eq!(ny.local_time_on_day_after(at("2026-03-10 15:04"), 3, 17, 30), at("2026-03-13 21:30"));
        assert_eq!(ny.local_time_on_day_after(at("2026-03-10 15:04"), 0, 9, 0), at("2026-03-11 13:00"));
        let tokyo = zone("Asia/Tokyo").unwrap();
        assert_eq!(tokyo.local_time_on_day_after(at("2026-12-31 16:00"), 1, 9, 0), at("2027-01-02 00:00"));
        let fixed = zone("+05:30").unwrap();
        assert_eq!(fixed.local_time_on_day_after(at("2026-03-10 20:00"), 1, 9, 0), at("2026-03-12 03:30"));
    }

    #[test]
    fn next_day_across_dst_changes() {
        let ny = zone("America/New_York").unwrap();
        // Saturday 10:00 EST → Sunday 09:00 EDT.
        let due = ny.local_time_on_day_after(at("2026-03-07 15:00"), 1, 9, 0);
        assert_eq!(ny.format_iso(due), "2026-03-08T09:00:00-04:00");
        assert_eq!(due, at("2026-03-08 13:00"));
        // 02:30 does not exist that Sunday: it moves forward by the gap to 03:30 EDT.
        let gap = ny.local_time_on_day_after(at("2026-03-07 15:00"), 1, 2, 30);
        assert_eq!(ny.format_iso(gap), "2026-03-08T03:30:00-04:00");
        // Saturday 10:00 EDT → Sunday 09:00 EST; 01:30 happens twice, the first one wins.
        let due = ny.local_time_on_day_after(at("2026-10-31 14:00"), 1, 9, 0);
        assert_eq!(ny.format_iso(due), "2026-11-01T09:00:00-05:00");
        let twice = ny.local_time_on_day_after(at("2026-10-31 14:00"), 1, 1, 30);
        assert_eq!(ny.format_iso(twice), "2026-11-01T01:30:00-04:00");
        // Sydney gains daylight time on 2026-10-04 at 02:00.
        let syd = zone("Australia/Sydney").unwrap();
        let due = syd.local_time_on_day_after(at("2026-10-03 00:00"), 1, 9, 0);
        assert_eq!(syd.format_iso(due), "2026-10-04T09:00:00+11:00");
        let gap = syd.local_time_on_day_after(at("2026-10-03 00:00"), 1, 2, 15);
        assert_eq!(syd.format_iso(gap), "2026-10-04T03:15:00+11:00");
        let lon = zone("Europe/London").unwrap();
        let gap = lon.local_time_on_day_after(at("2026-03-28 12:00"), 1, 1, 0);
        assert_eq!(lon.format_iso(gap), "2026-03-29T02:00:00+01:00");
    }

    #[test]
    fn result_is_always_strictly_later_and_at_the_wall_time() {
        for name in ZONE_NAMES {
            let z = zone(name).unwrap();
            let mut t = at("2026-01-01 00:00");
            while t < at("2027-01-01 00:00") {
                for (h, m) in [(0, 0), (9, 0), (23, 59)] {
                    let due = z.local_time_on_day_after(t, 1, h, m);
                    assert!(due > t, "{name} {t}");
                    let text = z.format_iso(due);
                    let wall = format!("T{h:02}:{m:02}:00");
                    // Only a gap (never at these hours in the table's rules) could move it.
                    assert!(text.contains(&wall), "{name} {t} {text}");
                }
                t += 7 * 3_600_000 + 13 * 60_000;
            }
        }
    }
}
