//! Datetime payload values: Unix seconds or RFC 3339 text, both stored as Unix seconds.

/// Unix seconds of a datetime value: an integer (Unix seconds; a number with no fraction, as
/// JSON encoders may write it), an RFC 3339 date-time (`2026-03-01T10:00:00Z`,
/// `2026-03-01T10:00:00.5+05:30`; `t`/`z` and a space separator are accepted; a fraction is
/// dropped), or a date (`2026-03-01`, midnight UTC).
pub fn datetime_seconds(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Ok(n);
    }
    if let Ok(f) = t.parse::<f64>() {
        return if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 {
            Ok(f as i64)
        } else {
            Err(format!("'{text}' is not a whole number of Unix seconds"))
        };
    }
    rfc3339(t).ok_or_else(|| {
        format!(
            "'{text}' is not a datetime: give Unix seconds (1767225600) or RFC 3339 \
             (2026-01-01T00:00:00Z, 2026-01-01T05:30:00+05:30, 2026-01-01)"
        )
    })
}

/// Seconds of an RFC 3339 date-time or full date.
fn rfc3339(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let s = t.get(from..from + len)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let date = days_from_civil(year, month, day) * 86_400;
    if b.len() == 10 {
        return Some(date);
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) || b.get(13) != Some(&b':') {
        return None;
    }
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if b.get(16) != Some(&b':') || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = t.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), ..] if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let hours: i64 = rest.get(1..3)?.parse().ok()?;
            let minutes: i64 = rest.get(4..6)?.parse().ok()?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'+' { offset } else { -offset }
        }
        _ => return None,
    };
    Some(date + hour * 3600 + minute * 60 + second.min(59) - offset)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_and_rfc3339_agree() {
        for (text, want) in [
            ("1700000000", 1_700_000_000),
            ("1.7e9", 1_700_000_000),
            (" -5 ", -5),
            ("1970-01-01T00:00:00Z", 0),
            ("2026-03-01T10:00:00+05:30", 1_772_339_400),
            ("2026-03-01t04:30:00z", 1_772_339_400),
            ("2026-03-01 04:30:00.999Z", 1_772_339_400),
            ("2025-12-31T23:59:59.5Z", 1_767_225_599),
            ("2024-02-29T00:00:00-01:00", 1_709_168_400),
            ("2026-01-01", 1_767_225_600),
            ("1969-12-31T23:59:59Z", -1),
        ] {
            assert_eq!(datetime_seconds(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn malformed_datetimes_say_what_is_accepted() {
        for text in [
            "",
            "yesterday",
            "2026-13-01",
            "2025-02-29",
            "2026-03-01T10:00:00",
            "2026-03-01T25:00:00Z",
            "2026-03-01T10:00:00+5:30",
            "2026-03-01T10:00Z",
            "2026-03-01T10:00:00.Z",
            "1.5",
        ] {
            let e = datetime_seconds(text).unwrap_err();
            assert!(e.contains(&format!("'{text}'")), "{text}: {e}");
        }
        assert!(datetime_seconds("nope").unwrap_err().contains("RFC 3339"));
    }
}
