//! Numbers as libxlutil reads them: C `strtol` with base 0.

/// Why a text is not a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NumError {
    /// Not a number at all, or trailing characters after it.
    Invalid,
    /// A number that does not fit in 64 bits.
    Overflow,
}

/// Parse `text` the way `strtol(text, &end, 0)` does when the whole text must be consumed:
/// optional leading spaces, an optional sign, then `0x`/`0X` hexadecimal, a leading `0` for
/// octal, or decimal.
pub(crate) fn strtol(text: &str) -> Result<i64, NumError> {
    let s = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(rest) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))
    {
        (16, rest)
    } else if s.len() > 1 && s.starts_with('0') {
        (8, &s[1..])
    } else {
        (10, s)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(NumError::Invalid);
    }
    // Accumulate as a negative number so that i64::MIN is representable.
    let mut value: i64 = 0;
    for c in digits.chars() {
        let d = i64::from(c.to_digit(radix).ok_or(NumError::Invalid)?);
        value = value
            .checked_mul(i64::from(radix))
            .and_then(|v| v.checked_sub(d))
            .ok_or(NumError::Overflow)?;
    }
    if negative {
        Ok(value)
    } else {
        value.checked_neg().ok_or(NumError::Overflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_follow_strtol() {
        assert_eq!(strtol("512"), Ok(512));
        assert_eq!(strtol("0x1f"), Ok(31));
        assert_eq!(strtol("0X1F"), Ok(31));
        assert_eq!(strtol("010"), Ok(8));
        assert_eq!(strtol("0"), Ok(0));
        assert_eq!(strtol("-1"), Ok(-1));
        assert_eq!(strtol("+7"), Ok(7));
        assert_eq!(strtol("  42"), Ok(42));
    }

    #[test]
    fn garbage_and_overflow_are_refused() {
        assert_eq!(strtol(""), Err(NumError::Invalid));
        assert_eq!(strtol("12abc"), Err(NumError::Invalid));
        assert_eq!(strtol("08"), Err(NumError::Invalid));
        assert_eq!(strtol("0x"), Err(NumError::Invalid));
        assert_eq!(strtol("1 "), Err(NumError::Invalid));
        assert_eq!(strtol("-"), Err(NumError::Invalid));
        assert_eq!(strtol("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(strtol("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(strtol("9223372036854775808"), Err(NumError::Overflow));
        assert_eq!(strtol("0xffffffffffffffffff"), Err(NumError::Overflow));
    }
}
