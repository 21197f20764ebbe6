//! STRING values in cells, and the string functions of the standard library.
//!
//! A `STRING(n)` in the program's cells is a header cell holding its length, then
//! `ceil(n / 8)` data cells holding its bytes, eight to a cell (little-endian). A
//! string is single-byte characters (Latin-1). Every write truncates to the
//! destination's capacity, as IEC does when a longer string is assigned.
//!
//! The rules, which `python/softplc/iectypes.py` (`IecString`) follows to the byte:
//! - `LEN(s)` is the length; `LEFT(s, n)` the first `n` characters (none for `n <= 0`,
//!   all for `n >= LEN`), `RIGHT(s, n)` the last `n`; `MID(s, l, p)` the `l` characters
//!   from position `p` (1-based; none when `p` is outside 1..LEN or `l <= 0`);
//!   `FIND(s1, s2)` the 1-based position of the first `s2` in `s1`, 0 when there is
//!   none or `s2` is empty; strings compare byte by byte.
//! - To a number: surrounding spaces, an optional sign and decimal digits make an
//!   integer (wrapped to the type, as every integer conversion); for REAL/LREAL, the
//!   decimal forms `1`, `1.5`, `.5`, `1e3`, `-2.5E-3`; anything else gives 0.
//! - From a number: integers in decimal; REAL and LREAL in the shortest decimal form
//!   that reads back as the same value, without exponent (`0.1`, `1`, `-0`,
//!   `1000000`), and `NaN`, `INF`, `-INF`; BOOL as `TRUE`/`FALSE`.
//!
//! Real-time notes: nothing here allocates, locks or makes syscalls (texts are built in
//! a stack buffer).

use std::fmt::{self, Write as _};

/// A string taken out of cells, on the stack.
#[derive(Clone, Copy)]
pub struct Text {
    len: usize,
    bytes: [u8; 256],
}

impl Text {
    /// An empty text.
    pub fn new() -> Text {
        Text {
            len: 0,
            bytes: [0; 256],
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Appends `b` (what does not fit 256 bytes is dropped: no STRING is longer than
    /// 254).
    pub fn append(&mut self, b: &[u8]) {
        self.push(b);
    }

    fn push(&mut self, b: &[u8]) {
        let n = b.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&b[..n]);
        self.len += n;
    }
}

impl Default for Text {
    fn default() -> Self {
        Text::new()
    }
}

impl fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes());
        Ok(())
    }
}

/// The string whose header is cell `h`.
#[inline]
pub fn get(c: &[u64], h: usize) -> Text {
    let mut t = Text::new();
    let len = (c[h] as usize).min(254);
    for (i, byte) in t.bytes[..len].iter_mut().enumerate() {
        *byte = (c.get(h + 1 + i / 8).copied().unwrap_or(0) >> (8 * (i % 8))) as u8;
    }
    t.len = len;
    t
}

/// Writes `s` into the string of capacity `cap` whose header is cell `h`, truncated.
#[inline]
pub fn put(c: &mut [u64], h: usize, cap: u8, s: &[u8]) {
    let n = s.len().min(cap as usize);
    c[h] = n as u64;
    for k in 0..(cap as usize).div_ceil(8) {
        let mut w = 0u64;
        for (j, b) in s
            .iter()
            .skip(8 * k)
            .take(8.min(n.saturating_sub(8 * k)))
            .enumerate()
        {
            w |= (*b as u64) << (8 * j);
        }
        c[h + 1 + k] = w;
    }
}

/// The first `n` bytes (none for `n <= 0`).
pub fn left(s: &[u8], n: i64) -> &[u8] {
    &s[..n.clamp(0, s.len() as i64) as usize]
}

/// The last `n` bytes (none for `n <= 0`).
pub fn right(s: &[u8], n: i64) -> &[u8] {
    let n = n.clamp(0, s.len() as i64) as usize;
    &s[s.len() - n..]
}

/// `l` bytes from position `p` (1-based); none when `p` is outside `1..=len`.
pub fn mid(s: &[u8], l: i64, p: i64) -> &[u8] {
    if p < 1 || p > s.len() as i64 || l <= 0 {
        return &[];
    }
    let from = (p - 1) as usize;
    let to = (from as i64).saturating_add(l).min(s.len() as i64) as usize;
    &s[from..to]
}

/// The 1-based position of the first `b` in `a`; 0 when none or `b` is empty.
pub fn find(a: &[u8], b: &[u8]) -> i64 {
    if b.is_empty() || b.len() > a.len() {
        return 0;
    }
    a.windows(b.len())
        .position(|w| w == b)
        .map_or(0, |k| k as i64 + 1)
}

fn trimmed(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| *b != b' ').unwrap_or(s.len());
    let end = s.iter().rposition(|b| *b != b' ').map_or(start, |k| k + 1);
    &s[start..end]
}

/// An integer from decimal text, modulo 2^64 (the caller wraps it to its type); 0 for
/// anything but spaces, an optional sign and digits.
pub fn parse_int(s: &[u8]) -> u64 {
    let t = trimmed(s);
    let (neg, digits) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return 0;
    }
    let v = digits.iter().fold(0u64, |acc, d| {
        acc.wrapping_mul(10).wrapping_add((d - b'0') as u64)
    });
    if neg {
        v.wrapping_neg()
    } else {
        v
    }
}

/// A float from decimal text (`1`, `1.5`, `.5`, `1e3`, `-2.5E-3`, with spaces around);
/// 0.0 for anything else.
pub fn parse_float(s: &[u8]) -> f64 {
    let t = trimmed(s);
    if !is_decimal(t) {
        return 0.0;
    }
    std::str::from_utf8(t)
        .ok()
        .and_then(|x| x.parse().ok())
        .unwrap_or(0.0)
}

fn is_decimal(t: &[u8]) -> bool {
    let mut i = usize::from(matches!(t.first(), Some(b'+' | b'-')));
    let int = t[i..].iter().take_while(|b| b.is_ascii_digit()).count();
    i += int;
    let mut frac = 0;
    if t.get(i) == Some(&b'.') {
        i += 1;
        frac = t[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        i += frac;
    }
    if int + frac == 0 {
        return false;
    }
    if matches!(t.get(i), Some(b'e' | b'E')) {
        i += 1;
        i += usize::from(matches!(t.get(i), Some(b'+' | b'-')));
        let exp = t[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == t.len()
}

/// An integer (canonical bits of a signed or unsigned type) in decimal.
pub fn format_int(bits: u64, signed: bool) -> Text {
    let mut t = Text::new();
    let _ = if signed {
        write!(t, "{}", bits as i64)
    } else {
        write!(t, "{bits}")
    };
    t
}

/// A float in its shortest round-trip decimal form, without exponent (`f32` when
/// `single`).
pub fn format_float(x: f64, single: bool) -> Text {
    let mut t = Text::new();
    let _ = if x.is_nan() {
        t.write_str("NaN")
    } else if x.is_infinite() {
        t.write_str(if x > 0.0 { "INF" } else { "-INF" })
    } else if single {
        write!(t, "{}", x as f32)
    } else {
        write!(t, "{x}")
    };
    t
}

/// `TRUE` or `FALSE`.
pub fn format_bool(b: bool) -> Text {
    let mut t = Text::new();
    t.push(if b { b"TRUE" } else { b"FALSE" });
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_through_cells_and_truncate_to_the_capacity() {
        let mut c = vec![0u64; 1 + 2];
        put(&mut c, 0, 12, b"hello, world!");
        assert_eq!(get(&c, 0).as_bytes(), b"hello, world");
        put(&mut c, 0, 12, b"ab");
        assert_eq!((c[0], c[1], c[2]), (2, 0x6261, 0));
    }

    #[test]
    fn substrings_follow_the_documented_rules() {
        let s = b"conveyor";
        assert_eq!(left(s, 3), b"con");
        assert_eq!(left(s, -1), b"");
        assert_eq!(right(s, 4), b"eyor");
        assert_eq!(right(s, 99), s);
        assert_eq!(mid(s, 3, 2), b"onv");
        assert_eq!(mid(s, 3, 0), b"");
        assert_eq!(mid(s, 3, 9), b"");
        assert_eq!(mid(s, 99, 7), b"or");
        assert_eq!((find(s, b"vey"), find(s, b"x"), find(s, b"")), (4, 0, 0));
    }

    #[test]
    fn numbers_parse_and_format_as_documented() {
        assert_eq!(parse_int(b" -42 ") as i64, -42);
        assert_eq!(parse_int(b"4x2"), 0);
        assert_eq!(parse_int(b"18446744073709551617"), 1);
        assert_eq!(parse_float(b".5"), 0.5);
        assert_eq!(parse_float(b"1e3"), 1000.0);
        assert_eq!(parse_float(b"1e"), 0.0);
        assert_eq!(parse_float(b"nan"), 0.0);
        assert_eq!(format_float(0.1, true).as_bytes(), b"0.1");
        assert_eq!(format_float(-0.0, false).as_bytes(), b"-0");
        assert_eq!(
            format_float(1e20, false).as_bytes(),
            b"100000000000000000000"
        );
        assert_eq!(format_float(f64::NEG_INFINITY, true).as_bytes(), b"-INF");
        assert_eq!(format_int((-7i64) as u64, true).as_bytes(), b"-7");
        assert_eq!(
            format_int(u64::MAX, false).as_bytes(),
            b"18446744073709551615"
        );
    }
}
