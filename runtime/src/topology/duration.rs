//! ISO 8601 durations as AVA writes them: `PT1S`, `PT1.0S`, `-PT5S`, `PT1M30S`, `P30D`.

use crate::media::time::MediaDuration;

const NANOS_PER_SEC: f64 = 1e9;

/// Parses an ISO 8601 duration (`[-]P[nW][nD][T[nH][nM][nS]]`, fractions on any number).
/// Years and months are rejected: they have no fixed length.
pub fn parse_iso8601_duration(text: &str) -> Result<MediaDuration, String> {
    let bad = |why: &str| {
        format!(
            "'{text}' is not an ISO 8601 duration ({why}); write e.g. PT5S, -PT1.5S, PT2M or P1D"
        )
    };
    let trimmed = text.trim();
    let (negative, rest) = match trimmed.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
    };
    let rest = rest
        .strip_prefix(['P', 'p'])
        .ok_or_else(|| bad("it must start with P"))?;
    if rest.is_empty() {
        return Err(bad("no value after P"));
    }
    let mut total = 0f64;
    let mut in_time = false;
    let mut number = String::new();
    let mut seen_unit = false;
    for c in rest.chars() {
        match c.to_ascii_uppercase() {
            'T' if !in_time && number.is_empty() => in_time = true,
            d if d.is_ascii_digit() || d == '.' || d == ',' => {
                number.push(if d == ',' { '.' } else { d })
            }
            unit => {
                let value: f64 = number
                    .parse()
                    .map_err(|_| bad(&format!("missing number before '{unit}'")))?;
                let seconds = match (in_time, unit) {
                    (false, 'W') => 7.0 * 86_400.0,
                    (false, 'D') => 86_400.0,
                    (false, 'Y') | (false, 'M') => {
                        return Err(bad("years and months have no fixed length"));
                    }
                    (true, 'H') => 3_600.0,
                    (true, 'M') => 60.0,
                    (true, 'S') => 1.0,
                    _ => return Err(bad(&format!("unexpected '{c}'"))),
                };
                total += value * seconds;
                number.clear();
                seen_unit = true;
            }
        }
    }
    if !number.is_empty() {
        return Err(bad("a number has no unit"));
    }
    if !seen_unit {
        return Err(bad("no value"));
    }
    let nanos = (total * NANOS_PER_SEC).round();
    if !nanos.is_finite() || nanos > i64::MAX as f64 {
        return Err(bad("too long"));
    }
    let nanos = nanos as i64;
    Ok(MediaDuration::from_nanos(if negative {
        -nanos
    } else {
        nanos
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> f64 {
        parse_iso8601_duration(text)
            .map(|d| d.as_secs_f64())
            .unwrap_or(f64::NAN)
    }

    #[test]
    fn parses_ava_forms() {
        assert_eq!(secs("PT1S"), 1.0);
        assert_eq!(secs("PT1.0S"), 1.0);
        assert_eq!(secs("-PT1.0S"), -1.0);
        assert_eq!(secs("-PT5S"), -5.0);
        assert_eq!(secs("PT0S"), 0.0);
        assert_eq!(secs("PT1M30S"), 90.0);
        assert_eq!(secs("PT1H"), 3600.0);
        assert_eq!(secs("P30D"), 30.0 * 86_400.0);
        assert_eq!(secs("pt0.5s"), 0.5);
        assert_eq!(secs("PT0,25S"), 0.25);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "", "P", "PT", "5S", "PTS", "PT5", "P1M", "P1Y", "PT5X", "T5S", "PT1S5",
        ] {
            assert!(
                parse_iso8601_duration(bad).is_err(),
                "{bad} should be rejected"
            );
        }
    }
}
