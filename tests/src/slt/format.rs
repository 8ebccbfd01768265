//! PostgreSQL's text output for values that arrive in binary (extended query protocol), so an
//! `.slt` expectation reads the same in both protocol modes.
//!
//! tokio-postgres asks for binary results. [`format_binary`] turns the binary form of the
//! common types into exactly what PostgreSQL's output functions print with the settings the
//! test servers use (`DateStyle=ISO, MDY`, `TimeZone=UTC`, `extra_float_digits=1`): `t`/`f`,
//! shortest round-trip floats with PostgreSQL's switch to exponent form, numeric with its
//! display scale, ISO dates and timestamps with BC and infinity. Types it does not know return
//! `None`; the connection then asks the server itself for the text (`$1::text`), as
//! sqllogictest-engines does for intervals. Like sqllogictest-engines, empty strings print as
//! `(empty)` and NULL as `NULL` (in both modes).

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};
use sqllogictest::DefaultColumnType;
use tokio_postgres::types::Type;

/// What an SQL NULL prints as.
pub const NULL: &str = "NULL";

/// What an empty string prints as (an empty field would vanish in a whitespace-split row).
pub const EMPTY: &str = "(empty)";

/// A text value as a result field.
pub fn text_field(text: &str) -> String {
    if text.is_empty() {
        EMPTY.to_string()
    } else {
        text.to_string()
    }
}

/// The sqllogictest column type letter for a PostgreSQL type: `I` integers, `R` floats and
/// numeric, `T` strings, `?` anything else.
pub fn column_type(ty: &Type) -> DefaultColumnType {
    match *ty {
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => DefaultColumnType::Integer,
        Type::FLOAT4 | Type::FLOAT8 | Type::NUMERIC => DefaultColumnType::FloatingPoint,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            DefaultColumnType::Text
        }
        _ => DefaultColumnType::Any,
    }
}

/// PostgreSQL's text for the binary value `raw` of type `ty`, or `None` for a type this module
/// does not decode. Malformed input is an `Err` naming the type.
pub fn format_binary(ty: &Type, raw: &[u8]) -> Option<Result<String, String>> {
    let text = match *ty {
        Type::BOOL => fixed::<1>(ty, raw).map(|[b]| if b != 0 { "t" } else { "f" }.to_string()),
        Type::INT2 => fixed(ty, raw).map(|b| i16::from_be_bytes(b).to_string()),
        Type::INT4 => fixed(ty, raw).map(|b| i32::from_be_bytes(b).to_string()),
        Type::INT8 => fixed(ty, raw).map(|b| i64::from_be_bytes(b).to_string()),
        Type::OID => fixed(ty, raw).map(|b| u32::from_be_bytes(b).to_string()),
        Type::FLOAT4 => fixed(ty, raw).map(|b| float4(f32::from_be_bytes(b))),
        Type::FLOAT8 => fixed(ty, raw).map(|b| float8(f64::from_be_bytes(b))),
        Type::NUMERIC => numeric(raw),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            std::str::from_utf8(raw)
                .map(text_field)
                .map_err(|e| format!("{ty}: {e}"))
        }
        Type::BYTEA => Ok(bytea(raw)),
        Type::DATE => fixed(ty, raw).map(|b| date(i32::from_be_bytes(b))),
        Type::TIME => fixed(ty, raw).map(|b| time_of_day(i64::from_be_bytes(b))),
        Type::TIMESTAMP => fixed(ty, raw).map(|b| timestamp(i64::from_be_bytes(b), "")),
        Type::TIMESTAMPTZ => fixed(ty, raw).map(|b| timestamp(i64::from_be_bytes(b), "+00")),
        _ => return None,
    };
    Some(text)
}

/// The `N` bytes of a fixed-width binary value.
fn fixed<const N: usize>(ty: &Type, raw: &[u8]) -> Result<[u8; N], String> {
    raw.try_into()
        .map_err(|_| format!("{ty}: {} bytes, expected {N}", raw.len()))
}

/// float8out: shortest round-trip digits, exponent form below 1e-4 and from 1e15.
pub fn float8(v: f64) -> String {
    float_text(v.is_nan(), v.is_infinite(), v < 0.0, &format!("{v:e}"), 15)
}

/// float4out: as [`float8`], exponent form from 1e6.
pub fn float4(v: f32) -> String {
    float_text(v.is_nan(), v.is_infinite(), v < 0.0, &format!("{v:e}"), 6)
}

/// Lays out Rust's shortest round-trip `{:e}` text (`-1.2345e17`) the way PostgreSQL does:
/// positional when `-4 <= exponent < max_fixed_exponent`, else `d.ddde+XX`.
fn float_text(nan: bool, infinite: bool, negative: bool, sci: &str, max_fixed: i32) -> String {
    if nan {
        return "NaN".to_string();
    }
    if infinite {
        return if negative { "-Infinity" } else { "Infinity" }.to_string();
    }
    let (mantissa, exponent) = sci.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if digits == "0" {
        return format!("{sign}0");
    }
    if !(-4..max_fixed).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        let point = if rest.is_empty() { "" } else { "." };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{point}{rest}e{exp_sign}{:02}", exponent.abs());
    }
    let mut out = sign.to_string();
    if exponent < 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exponent - 1) as usize));
        out.push_str(&digits);
    } else {
        let int_len = exponent as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', int_len - digits.len()));
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

/// numeric_out of the binary form: `ndigits, weight, sign, dscale` (i16/u16) and base-10000
/// digits; the integer part from the digits up to `weight`, then exactly `dscale` decimals.
fn numeric(raw: &[u8]) -> Result<String, String> {
    let word = |i: usize| -> Result<u16, String> {
        raw.get(2 * i..2 * i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "numeric: truncated".to_string())
    };
    let ndigits = word(0)? as usize;
    let weight = word(1)? as i16 as i32;
    let sign = word(2)?;
    let dscale = word(3)? as usize;
    match sign {
        0xC000 => return Ok("NaN".to_string()),
        0xD000 => return Ok("Infinity".to_string()),
        0xF000 => return Ok("-Infinity".to_string()),
        _ => {}
    }
    let digits = (0..ndigits)
        .map(|i| word(4 + i))
        .collect::<Result<Vec<u16>, String>>()?;
    // Base-10000 digit at position `p` (0 = the one with weight 0).
    let digit_at = |weight_pos: i32| -> u16 {
        let index = weight - weight_pos;
        if index >= 0 && (index as usize) < digits.len() {
            digits[index as usize]
        } else {
            0
        }
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        out.push_str(&digit_at(weight).to_string());
        for w in (0..weight).rev() {
            out.push_str(&format!("{:04}", digit_at(w)));
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut decimals = String::new();
        let mut w = -1;
        while decimals.len() < dscale {
            decimals.push_str(&format!("{:04}", digit_at(w)));
            w -= 1;
        }
        out.push_str(&decimals[..dscale]);
    }
    Ok(out)
}

/// byteaout in hex form.
fn bytea(raw: &[u8]) -> String {
    let mut out = String::from("\\x");
    for b in raw {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// PostgreSQL's epoch for dates and timestamps.
fn pg_epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2000, 1, 1)
        .expect("valid date")
        .and_hms_opt(0, 0, 0)
        .expect("valid time")
}

/// `YYYY-MM-DD` with the year counted as PostgreSQL does (no year 0), and whether it is BC.
fn ymd(date: NaiveDate) -> (String, bool) {
    let year = date.year();
    let (year, bc) = if year <= 0 {
        (1 - year, true)
    } else {
        (year, false)
    };
    (
        format!("{year:04}-{:02}-{:02}", date.month(), date.day()),
        bc,
    )
}

/// date_out of days since 2000-01-01.
fn date(days: i32) -> String {
    match days {
        i32::MAX => return "infinity".to_string(),
        i32::MIN => return "-infinity".to_string(),
        _ => {}
    }
    let date = pg_epoch().date() + Duration::days(days.into());
    let (text, bc) = ymd(date);
    if bc {
        format!("{text} BC")
    } else {
        text
    }
}

/// `HH:MM:SS` plus the fraction of a second without trailing zeros.
fn hms(hour: u32, minute: u32, second: u32, micros: u32) -> String {
    let mut out = format!("{hour:02}:{minute:02}:{second:02}");
    if micros > 0 {
        let fraction = format!("{micros:06}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out
}

/// time_out of microseconds since midnight.
fn time_of_day(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000);
    hms(
        (seconds / 3600) as u32,
        (seconds / 60 % 60) as u32,
        (seconds % 60) as u32,
        micros.rem_euclid(1_000_000) as u32,
    )
}

/// timestamp_out / timestamptz_out (UTC, `zone` = "+00") of microseconds since 2000-01-01.
fn timestamp(micros: i64, zone: &str) -> String {
    match micros {
        i64::MAX => return "infinity".to_string(),
        i64::MIN => return "-infinity".to_string(),
        _ => {}
    }
    let at = pg_epoch() + Duration::microseconds(micros);
    let (date, bc) = ymd(at.date());
    let time = hms(at.hour(), at.minute(), at.second(), at.nanosecond() / 1_000);
    let era = if bc { " BC" } else { "" };
    format!("{date} {time}{zone}{era}")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected texts are what PostgreSQL 15 prints for the same values.
    #[test]
    fn floats_as_postgres_prints_them() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e14, "100000000000000"),
            (1e15, "1e+15"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e300, "1e+300"),
            (1.0 / 3.0, "0.3333333333333333"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (v, text) in cases {
            assert_eq!(float8(*v), *text, "float8 {v:e}");
        }
        assert_eq!(float4(100000.0), "100000");
        assert_eq!(float4(1000000.0), "1e+06");
        assert_eq!(float4(0.1), "0.1");
        assert_eq!(float4(1.0 / 3.0), "0.33333334");
    }

    fn numeric_bytes(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut raw = Vec::new();
        for w in [ndigits, weight as u16, sign, dscale].iter().chain(digits) {
            raw.extend_from_slice(&w.to_be_bytes());
        }
        raw
    }

    #[test]
    fn numerics_keep_their_display_scale() {
        // 12345.6780 (dscale 4): digits 1, 2345, 6780.
        let raw = numeric_bytes(3, 1, 0, 4, &[1, 2345, 6780]);
        assert_eq!(numeric(&raw).unwrap(), "12345.6780");
        // -0.0012 (dscale 4): one digit 12 at weight -1.
        let raw = numeric_bytes(1, -1, 0x4000, 4, &[12]);
        assert_eq!(numeric(&raw).unwrap(), "-0.0012");
        // 10000000000 (dscale 0): digit 100 at weight 2, trailing zero digits stripped.
        let raw = numeric_bytes(1, 2, 0, 0, &[100]);
        assert_eq!(numeric(&raw).unwrap(), "10000000000");
        // 0 with dscale 2.
        let raw = numeric_bytes(0, 0, 0, 2, &[]);
        assert_eq!(numeric(&raw).unwrap(), "0.00");
        let raw = numeric_bytes(0, 0, 0xC000, 0, &[]);
        assert_eq!(numeric(&raw).unwrap(), "NaN");
    }

    #[test]
    fn dates_and_timestamps_in_iso_style() {
        assert_eq!(date(0), "2000-01-01");
        assert_eq!(date(-730_120), "0001-12-31 BC");
        assert_eq!(date(i32::MAX), "infinity");
        assert_eq!(timestamp(1_500_000, ""), "2000-01-01 00:00:01.5");
        assert_eq!(timestamp(-86_400_000_000, "+00"), "1999-12-31 00:00:00+00");
        assert_eq!(time_of_day(45_296_000_001), "12:34:56.000001");
        assert_eq!(bytea(&[0xde, 0xad]), "\\xdead");
    }
}
