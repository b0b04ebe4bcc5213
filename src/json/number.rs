//! Numbers: the ECMAScript form of an f64, and whether a decimal text keeps
//! its value through one.
//!
//! Argus canonical JSON (RFC 8785) writes every number as the ECMAScript
//! `Number.prototype.toString` of an IEEE 754 double. A number text is only
//! accepted if that form denotes the same decimal value as the text: then
//! storing the canonical form changes how the number is spelled, never what
//! it is.
use std::cmp::Ordering;

/// Largest magnitude below which every integer is an exact f64 (2^53).
pub(crate) const EXACT_INT_MAX: u64 = 1 << 53;

/// Why a number text cannot be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Beyond the largest finite f64.
    OutOfRange,
    /// The nearest f64 prints as another decimal value.
    Inexact,
}

/// A grammatical JSON number text, judged: its canonical form, or why it
/// has none that keeps its value.
pub(crate) fn canonical_text(text: &str) -> Result<String, Refusal> {
    // Rust's float parsing is correctly rounded, so `f` is the double
    // nearest to the text's exact decimal value.
    let f: f64 = text.parse().map_err(|_| Refusal::Inexact)?;
    if !f.is_finite() {
        return Err(Refusal::OutOfRange);
    }
    let canonical = ecma(f);
    if Decimal::of(text) == Decimal::of(&canonical) {
        Ok(canonical)
    } else {
        Err(Refusal::Inexact)
    }
}

/// `Number.prototype.toString(f)` (ECMA-262 §6.1.6.1.20) for a finite `f`:
/// the shortest digits that round-trip, placed by the exponent rules, with
/// `-0` written `0`.
pub(crate) fn ecma(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    // ryu gives the shortest digits that round-trip and, where two are
    // equally short and equally near, the even one, as ECMAScript requires
    // (std's `{:e}` rounds such ties up).
    let mut buf = ryu::Buffer::new();
    let Decimal { digits, exp: n, .. } = Decimal::of(buf.format_finite(f.abs()));
    let digits = String::from_utf8(digits).unwrap_or_default();
    let k = digits.len() as i64;
    // The value is 0.DIGITS × 10^n.
    let mut out = String::with_capacity(digits.len() + 8);
    if f < 0.0 {
        out.push('-');
    }
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if n > 0 { '+' } else { '-' });
        out.push_str(&(n - 1).abs().to_string());
    }
    out
}

/// A decimal value in normal form: sign, significant digits without leading
/// or trailing zeros, and `exp` such that the value is 0.DIGITS × 10^exp.
/// Zero is `(false, "", 0)` whatever its sign, so `-0` and `0` are equal.
#[derive(Debug, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exp: i64,
}

/// Exponents are clamped here: far beyond any f64, so two clamped values
/// never both pass the range check, and the arithmetic cannot overflow.
const EXP_CLAMP: i64 = 1 << 40;

impl Decimal {
    /// Reads a text in JSON number grammar (the caller has checked it).
    fn of(text: &str) -> Self {
        let b = text.as_bytes();
        let negative = b.first() == Some(&b'-');
        let body = if negative { &b[1..] } else { b };
        let (mantissa, exp_part) = match body.iter().position(|&c| c == b'e' || c == b'E') {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let (int, frac) = match mantissa.iter().position(|&c| c == b'.') {
            Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
            None => (mantissa, &mantissa[mantissa.len()..]),
        };
        let mut exp = exp_part.map(parse_exp).unwrap_or(0);
        exp = exp.saturating_add(int.len() as i64);
        let mut digits: Vec<u8> = Vec::with_capacity(int.len() + frac.len());
        digits.extend_from_slice(int);
        digits.extend_from_slice(frac);
        let lead = digits.iter().take_while(|&&c| c == b'0').count();
        if lead == digits.len() {
            return Self {
                negative: false,
                digits: Vec::new(),
                exp: 0,
            };
        }
        digits.drain(..lead);
        exp = exp.saturating_sub(lead as i64);
        while digits.last() == Some(&b'0') {
            digits.pop();
        }
        Self {
            negative,
            digits,
            exp,
        }
    }
}

/// An exponent `[+-]digits`, clamped to ±[`EXP_CLAMP`].
fn parse_exp(b: &[u8]) -> i64 {
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let mut v: i64 = 0;
    for &c in digits {
        v = (v * 10 + i64::from(c - b'0')).min(EXP_CLAMP);
    }
    if neg {
        -v
    } else {
        v
    }
}

/// UTF-16 code-unit order, the order RFC 8785 sorts object members by. It
/// differs from UTF-8 byte order only where a character above U+FFFF (a
/// surrogate pair, 0xD800..) meets one in U+E000..U+FFFF.
pub(crate) fn utf16_cmp(a: &str, b: &str) -> Ordering {
    if a.is_ascii() || b.is_ascii() {
        // An ASCII character is below every other in both orders.
        return a.as_bytes().cmp(b.as_bytes());
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical form.
    #[test]
    fn rfc8785_appendix_b_numbers() {
        let table: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for &(bits, want) in table {
            assert_eq!(ecma(f64::from_bits(bits)), want, "bits {bits:016x}");
            // Each canonical form is itself accepted and unchanged.
            assert_eq!(canonical_text(want).as_deref(), Ok(want), "{want}");
        }
    }

    #[test]
    fn ecma_forms_at_the_exponent_boundaries() {
        for (f, want) in [
            (1.0, "1"),
            (5.0, "5"),
            (-5.0, "-5"),
            (0.1, "0.1"),
            (1.5e-7, "1.5e-7"),
            (1e-7, "1e-7"),
            (1e-6, "0.000001"),
            (1.25e-6, "0.00000125"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (123.456, "123.456"),
            (-0.0, "0"),
        ] {
            assert_eq!(ecma(f), want, "{f:e}");
        }
    }

    #[test]
    fn texts_that_keep_their_value_are_accepted_in_canonical_form() {
        for (text, want) in [
            ("0.10", "0.1"),
            ("1e20", "100000000000000000000"),
            ("1E21", "1e+21"),
            ("5.0", "5"),
            ("-0", "0"),
            ("-0.0e5", "0"),
            ("0e99999999999999999999", "0"),
            ("2e-3", "0.002"),
            ("4.50", "4.5"),
            ("0.000000000000000000000000001", "1e-27"),
            ("9007199254740992", "9007199254740992"),
            ("5e-324", "5e-324"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
        ] {
            assert_eq!(canonical_text(text).as_deref(), Ok(want), "{text}");
        }
    }

    #[test]
    fn texts_that_would_change_value_are_refused() {
        for text in [
            "9007199254740993",
            "1.00000000000000000001",
            "12345678901234567890",
            "333333333.33333329",
            "1e-400",
            "0.1000000000000000000000000001",
        ] {
            assert_eq!(canonical_text(text), Err(Refusal::Inexact), "{text}");
        }
        for text in ["1e400", "-1e309", "1e99999999999999999999"] {
            assert_eq!(canonical_text(text), Err(Refusal::OutOfRange), "{text}");
        }
    }

    #[test]
    fn utf16_order_puts_astral_characters_before_the_private_use_area() {
        // U+1F600 is D83D DE00 in UTF-16, below U+FB33; UTF-8 says otherwise.
        assert_eq!(utf16_cmp("\u{1F600}", "\u{FB33}"), Ordering::Less);
        assert_eq!("\u{1F600}".cmp("\u{FB33}"), Ordering::Greater);
        assert_eq!(utf16_cmp("a", "b"), Ordering::Less);
        assert_eq!(utf16_cmp("ab", "a"), Ordering::Greater);
        assert_eq!(utf16_cmp("é", "é"), Ordering::Equal);
    }
}
