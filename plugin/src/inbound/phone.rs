//! Phone numbers to E.164.
//!
//! Hand-written on purpose: the `phonenumber` crate carries libphonenumber's full metadata and
//! costs 1.8 MB inside the component against a 400 KB budget (`../shared/design.md` §8). What
//! the sync needs is smaller: Dialpad sends E.164 (`+14155550100`) or NANP display formats
//! (`(415) 555-0100`), and a national number is completed from the configured default region.
//! The table holds each supported region's calling code, trunk prefix and national number
//! lengths; a number that fits none of them is refused rather than guessed.

/// A phone number in E.164 form: `+` then 8 to 15 digits, the first not 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(String);

impl E164 {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for E164 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A region the default-region rule knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// ISO 3166-1 alpha-2 code.
    pub code: &'static str,
    pub calling_code: &'static str,
    /// Dialled before a national number inside the country (stripped for E.164).
    pub trunk_prefix: &'static str,
    /// Lengths of the national significant number.
    pub national_lengths: &'static [usize],
}

pub const REGIONS: &[Region] = &[
    Region { code: "US", calling_code: "1", trunk_prefix: "1", national_lengths: &[10] },
    Region { code: "CA", calling_code: "1", trunk_prefix: "1", national_lengths: &[10] },
    Region { code: "GB", calling_code: "44", trunk_prefix: "0", national_lengths: &[9, 10] },
    Region { code: "IE", calling_code: "353", trunk_prefix: "0", national_lengths: &[7, 8, 9] },
    Region { code: "AU", calling_code: "61", trunk_prefix: "0", national_lengths: &[9] },
    Region { code: "NZ", calling_code: "64", trunk_prefix: "0", national_lengths: &[8, 9, 10] },
    Region { code: "DE", calling_code: "49", trunk_prefix: "0", national_lengths: &[6, 7, 8, 9, 10, 11] },
    Region { code: "FR", calling_code: "33", trunk_prefix: "0", national_lengths: &[9] },
    Region { code: "ES", calling_code: "34", trunk_prefix: "", national_lengths: &[9] },
    Region { code: "NL", calling_code: "31", trunk_prefix: "0", national_lengths: &[9] },
    Region { code: "IN", calling_code: "91", trunk_prefix: "0", national_lengths: &[10] },
    Region { code: "JP", calling_code: "81", trunk_prefix: "0", national_lengths: &[9, 10] },
    Region { code: "BR", calling_code: "55", trunk_prefix: "0", national_lengths: &[10, 11] },
    Region { code: "MX", calling_code: "52", trunk_prefix: "", national_lengths: &[10] },
    Region { code: "PH", calling_code: "63", trunk_prefix: "0", national_lengths: &[10] },
];

pub fn region(code: &str) -> Option<&'static Region> {
    REGIONS.iter().find(|r| r.code.eq_ignore_ascii_case(code))
}

/// Why a string is not a usable phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneError {
    Empty,
    /// Letters or other characters that no phone format uses.
    NotAPhoneNumber,
    /// Digits that fit neither E.164 nor the default region's national format.
    UnknownFormat,
}

/// Normalises `raw` to E.164. International forms (`+…`, `00…`, `011…` in NANP) are taken as
/// they are; anything else must be a national number of `default_region`.
pub fn to_e164(raw: &str, default_region: &Region) -> Result<E164, PhoneError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(PhoneError::Empty);
    }
    if !trimmed.chars().any(|c| c.is_ascii_digit()) {
        return Err(if trimmed.chars().any(char::is_alphanumeric) { PhoneError::NotAPhoneNumber } else { PhoneError::Empty });
    }
    // Extensions ("x123", "ext. 12", ";ext=12") are not part of the number.
    let lower = trimmed.to_ascii_lowercase();
    let cut = ["ext", "x", ";", ","].iter().filter_map(|m| lower.find(m)).min().unwrap_or(trimmed.len());
    let number_part = trimmed[..cut].trim_end();
    // "+44 (0)20 …": the "(0)" is the national trunk prefix, written for callers dialling at
    // home, and is not part of the international number.
    let without_trunk;
    let number_part = if number_part.starts_with('+') && number_part.contains("(0)") {
        without_trunk = number_part.replacen("(0)", "", 1);
        without_trunk.as_str()
    } else {
        number_part
    };
    let mut digits = String::with_capacity(16);
    let mut plus = false;
    for (i, c) in number_part.char_indices() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if i == 0 || number_part[..i].trim().is_empty() => plus = true,
            ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' => {}
            _ => return Err(PhoneError::NotAPhoneNumber),
        }
    }
    if digits.is_empty() {
        return Err(PhoneError::Empty);
    }
    let international = if plus {
        Some(digits.as_str())
    } else if let Some(rest) = digits.strip_prefix("00") {
        Some(rest)
    } else if default_region.calling_code == "1" {
        digits.strip_prefix("011")
    } else {
        None
    };
    let e164_digits = match international {
        Some(d) => d.to_string(),
        None => national_to_international(&digits, default_region).ok_or(PhoneError::UnknownFormat)?,
    };
    if !(8..=15).contains(&e164_digits.len()) || e164_digits.starts_with('0') {
        return Err(PhoneError::UnknownFormat);
    }
    Ok(E164(format!("+{e164_digits}")))
}

fn national_to_international(digits: &str, region: &Region) -> Option<String> {
    let fits = |n: &str| region.national_lengths.contains(&n.len());
    if fits(digits) && !(region.trunk_prefix == "0" && digits.starts_with('0')) {
        return Some(format!("{}{digits}", region.calling_code));
    }
    if !region.trunk_prefix.is_empty() {
        if let Some(rest) = digits.strip_prefix(region.trunk_prefix) {
            if fits(rest) {
                return Some(format!("{}{rest}", region.calling_code));
            }
        }
    }
    None
}

/// True when `s` is what carriers and Dialpad put in place of a withheld caller ID ("blocked",
/// "Anonymous", "Restricted", …) rather than a number: such a call has no number to match, and
/// is no less a call for it.
pub fn is_withheld(s: &str) -> bool {
    const WORDS: [&str; 8] = ["anonymous", "blocked", "private", "restricted", "unavailable", "unknown", "withheld", "private number"];
    let s = s.trim();
    WORDS.iter().any(|w| s.eq_ignore_ascii_case(w))
}

/// True when `s` reads as a phone number rather than a name: Dialpad fills `contact.name` with
/// a formatted number for unknown callers, and that must never become a person's name.
pub fn looks_like_phone_number(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    digits >= 3 && s.chars().all(|c| c.is_ascii_digit() || " +-.()/".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(s: &str) -> Result<String, PhoneError> {
        to_e164(s, region("US").unwrap()).map(|e| e.0)
    }

    #[test]
    fn dialpad_formats_become_e164() {
        for raw in [
            "+14155550100",
            "(415) 555-0100",
            "415-555-0100",
            "415.555.0100",
            "1 415 555 0100",
            "+1 (415) 555-0100",
            "001 415 555 0100",
            "011 1 415 555 0100",
            " +1 415 555 0100 x12 ",
        ] {
            assert_eq!(us(raw).as_deref(), Ok("+14155550100"), "{raw}");
        }
    }

    #[test]
    fn other_regions_strip_their_trunk_prefix() {
        let gb = region("gb").unwrap();
        assert_eq!(to_e164("020 7946 0958", gb).unwrap().as_str(), "+442079460958");
        assert_eq!(to_e164("+44 20 7946 0958", gb).unwrap().as_str(), "+442079460958");
        assert_eq!(to_e164("0412 345 678", region("AU").unwrap()).unwrap().as_str(), "+61412345678");
    }

    #[test]
    fn unusable_input_is_refused_not_guessed() {
        assert_eq!(us(""), Err(PhoneError::Empty));
        assert_eq!(us("   "), Err(PhoneError::Empty));
        assert_eq!(us("blocked"), Err(PhoneError::NotAPhoneNumber));
        assert_eq!(us("555-0100"), Err(PhoneError::UnknownFormat));
        assert_eq!(us("+1234"), Err(PhoneError::UnknownFormat));
        assert_eq!(us("+1234567890123456"), Err(PhoneError::UnknownFormat));
        assert_eq!(us("anonymous"), Err(PhoneError::NotAPhoneNumber));
        // Multi-byte characters before a `+` must not split a character.
        assert_eq!(us("\u{a0}\u{a0}+1 415 555 0100").as_deref(), Ok("+14155550100"));
        assert_eq!(us("☎ +1 415 555 0100"), Err(PhoneError::NotAPhoneNumber));
    }

    #[test]
    fn the_trunk_prefix_in_brackets_is_dropped() {
        let gb = region("GB").unwrap();
        assert_eq!(to_e164("+44 (0)20 7946 0958", gb).unwrap().as_str(), "+442079460958");
        assert_eq!(to_e164("+44 (0)20 7946 0958", region("US").unwrap()).unwrap().as_str(), "+442079460958");
    }

    #[test]
    fn formatted_numbers_are_not_names() {
        assert!(looks_like_phone_number("(312) 555-0187"));
        assert!(looks_like_phone_number("+13125550187"));
        assert!(!looks_like_phone_number("Dana Whitfield"));
        assert!(!looks_like_phone_number("Agent 007"));
    }
}
