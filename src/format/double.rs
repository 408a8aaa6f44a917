//! Text forms of doubles (RDB-FORMAT.md §3.3, §11).
//!
//! * The *old* RDB double (ZSET type 3, before RDB 8): a length byte, then that many ASCII bytes that Redis reads
//!   with `%lg`; the length bytes 253, 254 and 255 stand alone for NaN, +inf and −inf. [`decode_old_double`] and
//!   [`parse_text_double`] read it; [`format_old_double`] writes it exactly as Redis 2.6–3.2 `rdbSaveDoubleValue`
//!   did (integers via `ll2string` when `|v| < 2^52`, otherwise C's `%.17g`, reimplemented here digit for digit).
//! * The *human* form of Redis's `d2string` (listpack zset scores, replies): [`format_human_double`].
//!
//! The binary form (8 bytes little-endian) needs no help beyond `f64::from_le_bytes`.

use std::fmt::Write as _;

/// Length byte of an old-form double meaning NaN.
pub const OLD_DOUBLE_NAN: u8 = 253;
/// Length byte of an old-form double meaning +inf.
pub const OLD_DOUBLE_POS_INF: u8 = 254;
/// Length byte of an old-form double meaning −inf.
pub const OLD_DOUBLE_NEG_INF: u8 = 255;

/// A small stack buffer that `write!` can format into (enough for any `f64` in `{:e}` or `{:.16e}` form).
struct StackBuf {
    buf: [u8; 48],
    len: usize,
}

impl StackBuf {
    fn new() -> Self {
        StackBuf { buf: [0; 48], len: 0 }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(std::fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Decimal digits and exponent of a finite, non-zero `|v|` as Rust formats it in scientific notation: `digits`
/// (no decimal point, no sign) and `exp`, the power of ten of the first digit. `precision` `None` gives the shortest
/// round-trip digits, `Some(p)` exactly `p + 1` correctly rounded significant digits.
fn sci_digits(v: f64, precision: Option<usize>, digits: &mut [u8; 24]) -> Option<(usize, i32)> {
    let mut buf = StackBuf::new();
    let v = v.abs();
    match precision {
        None => write!(buf, "{v:e}").ok()?,
        Some(p) => write!(buf, "{v:.p$e}").ok()?,
    }
    let s = buf.as_bytes();
    let e = s.iter().position(|&b| b == b'e')?;
    let exp: i32 = std::str::from_utf8(&s[e + 1..]).ok()?.parse().ok()?;
    let mut n = 0;
    for &b in &s[..e] {
        if b.is_ascii_digit() {
            *digits.get_mut(n)? = b;
            n += 1;
        }
    }
    if n == 0 {
        return None;
    }
    Some((n, exp))
}

/// Parses the text of an old RDB double the way Redis's `sscanf(buf, "%lg", ...)` reads what Redis writes: leading
/// C whitespace is skipped; then an optional sign and either a decimal number (digits with an optional `.` and an
/// optional exponent `e`/`E` with optional sign, as `strtod` accepts) or `inf`/`infinity`/`nan`/`nan(...)` in any
/// case. Unlike `sscanf`, trailing bytes after the number are rejected (`None`), as are hexadecimal floats and
/// non-ASCII bytes; Redis never writes either.
pub fn parse_text_double(bytes: &[u8]) -> Option<f64> {
    let (neg, at) = sign_at(bytes, skip_c_space(bytes));
    let body = &bytes[at..];
    let v = if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        f64::INFINITY
    } else if body.eq_ignore_ascii_case(b"nan")
        || (body.len() >= 5
            && body[..4].eq_ignore_ascii_case(b"nan(")
            && body[body.len() - 1] == b')'
            && body[4..body.len() - 1].iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        f64::NAN
    } else {
        match body.first() {
            Some(b) if b.is_ascii_digit() || *b == b'.' => {}
            _ => return None,
        }
        if !body.iter().all(|&b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')) {
            return None;
        }
        std::str::from_utf8(body).ok()?.parse::<f64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// Decodes an old RDB double from its length byte and the `len_byte` bytes that follow it (`body`, empty for the
/// sentinels): 253 → NaN, 254 → +inf, 255 → −inf, otherwise what the servers read from `body` (see
/// [`scan_text_double`]: the number at its start, extra bytes ignored). Returns `None` when `body.len()` differs
/// from what the length byte says or the text holds no number.
pub fn decode_old_double(len_byte: u8, body: &[u8]) -> Option<f64> {
    match len_byte {
        OLD_DOUBLE_NAN => body.is_empty().then_some(f64::NAN),
        OLD_DOUBLE_POS_INF => body.is_empty().then_some(f64::INFINITY),
        OLD_DOUBLE_NEG_INF => body.is_empty().then_some(f64::NEG_INFINITY),
        n if usize::from(n) == body.len() => scan_text_double(body).map(|s| s.value),
        _ => None,
    }
}

/// What [`scan_text_double`] read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scanned {
    /// The number.
    pub value: f64,
    /// Whether the number was the whole text (no leading blanks, nothing after it): what Redis writes.
    pub whole: bool,
}

/// Reads a text double the way the servers load old (RDB ≤ 7) scores: Redis and Valkey put the bytes in a
/// NUL-terminated buffer and call `sscanf(buf, "%lg", &v)`, accepting whatever number glibc's scanner finds at
/// the start. Modelled on glibc (checked against it in the tests): leading C blanks skipped; an optional sign;
/// `inf`/`infinity` and `nan`/`nan(chars)` in any case (but `infi`, `infin` and `in` match nothing, as the scanner
/// cannot back up); hexadecimal `0x…[p…]` (a bare `0x` matches nothing, `0x.` reads 0); decimal digits with an
/// optional point and an exponent, which is ignored when no digit follows the `e`. A NUL ends the text. `None`
/// when nothing matches. (Hexadecimal values with more than 15 significant digits are rounded once more than
/// glibc does when the result is subnormal.)
pub fn scan_text_double(bytes: &[u8]) -> Option<Scanned> {
    let full = bytes.len();
    let s = bytes.split(|&b| b == 0).next().unwrap_or_default();
    let lead = skip_c_space(s);
    let (neg, i) = sign_at(s, lead);
    let ci = |at: usize, word: &[u8]| s.get(at..at + word.len()).is_some_and(|w| w.eq_ignore_ascii_case(word));
    let (v, end) = match s.get(i).map(u8::to_ascii_lowercase) {
        Some(b'i') => {
            if !ci(i, b"inf") {
                return None;
            }
            let mut end = i + 3;
            if s.get(end).is_some_and(|b| b.eq_ignore_ascii_case(&b'i')) {
                if !ci(end, b"inity") {
                    return None;
                }
                end += 5;
            }
            (f64::INFINITY, end)
        }
        Some(b'n') => {
            if !ci(i, b"nan") {
                return None;
            }
            let mut end = i + 3;
            if s.get(end) == Some(&b'(') {
                let mut j = end + 1;
                while s.get(j).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_') {
                    j += 1;
                }
                end = if s.get(j) == Some(&b')') { j + 1 } else { j };
            }
            (f64::NAN, end)
        }
        Some(b'0') if s.get(i + 1).is_some_and(|b| b.eq_ignore_ascii_case(&b'x')) => scan_hex(s, i + 2)?,
        _ => scan_decimal(s, i)?,
    };
    let value = if neg { -v } else { v };
    Some(Scanned { value, whole: lead == 0 && end == full })
}

/// The score the servers use for a ziplist/listpack sorted-set element stored as text (`zzlStrtod`: `strtod` of
/// at most 127 bytes): the number at the start of the text, `0` when there is none. Deep validation accepts any
/// text there (the servers check none, Valkey only refuses NaN), so decoders should read scores with this.
/// (Where glibc's `strtod` and `sscanf` differ, `infi` and `infin` read as infinity here too.)
pub fn listpack_score(b: &[u8]) -> f64 {
    let b = &b[..b.len().min(127)];
    if let Some(s) = scan_text_double(b) {
        return s.value;
    }
    let (neg, at) = sign_at(b, skip_c_space(b));
    let t = &b[at..];
    match t.get(..3) {
        Some(w) if w.eq_ignore_ascii_case(b"inf") => {
            if neg {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }
        }
        _ => 0.0,
    }
}

/// Where C's `isspace` stops: the index of the first byte of `s` that is not a space, tab, newline, vertical tab,
/// form feed or carriage return.
fn skip_c_space(s: &[u8]) -> usize {
    s.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')).unwrap_or(s.len())
}

/// An optional `-` or `+` at `s[i]`: whether it was `-`, and the index after it.
fn sign_at(s: &[u8], i: usize) -> (bool, usize) {
    match s.get(i) {
        Some(b'-') => (true, i + 1),
        Some(b'+') => (false, i + 1),
        _ => (false, i),
    }
}

/// Decimal part of [`scan_text_double`] from `i`: the value and where the number ends.
fn scan_decimal(s: &[u8], i: usize) -> Option<(f64, usize)> {
    let digits = |mut j: usize| {
        while s.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        j
    };
    let int_end = digits(i);
    let mut end = int_end;
    let mut frac = int_end;
    if s.get(end) == Some(&b'.') {
        frac = digits(end + 1);
        end = frac;
    }
    if int_end == i && frac <= int_end + 1 {
        return None; // no digit at all
    }
    // Rebuilt as "int.frac" (each part at least one digit) plus the exponent, which Rust's parser takes whole.
    let mut text = String::with_capacity(end - i + 8);
    let int = std::str::from_utf8(&s[i..int_end]).ok()?;
    let fr = if frac > int_end { std::str::from_utf8(&s[int_end + 1..frac]).ok()? } else { "" };
    text.push_str(if int.is_empty() { "0" } else { int });
    text.push('.');
    text.push_str(if fr.is_empty() { "0" } else { fr });
    if s.get(end).is_some_and(|b| b.eq_ignore_ascii_case(&b'e')) {
        let mut j = end + 1;
        if matches!(s.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let e_end = digits(j);
        if e_end > j {
            text.push('e');
            text.push_str(std::str::from_utf8(&s[end + 1..e_end]).ok()?);
            end = e_end;
        }
    }
    Some((text.parse::<f64>().ok()?, end))
}

/// Hexadecimal part of [`scan_text_double`], from just after `0x`.
fn scan_hex(s: &[u8], i: usize) -> Option<(f64, usize)> {
    let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
    let (mut m, mut sticky, mut used) = (0u64, false, 0u32);
    let mut exp: i64 = 0;
    let mut j = i;
    let mut any = false;
    while let Some(d) = hex(s.get(j)) {
        any = true;
        if used < 15 {
            m = m << 4 | u64::from(d);
            if m != 0 {
                used += 1;
            }
        } else {
            sticky |= d != 0;
            exp += 4;
        }
        j += 1;
    }
    let point = s.get(j) == Some(&b'.');
    if point {
        j += 1;
        while let Some(d) = hex(s.get(j)) {
            any = true;
            if used < 15 {
                m = m << 4 | u64::from(d);
                if m != 0 {
                    used += 1;
                }
                exp -= 4;
            } else {
                sticky |= d != 0;
            }
            j += 1;
        }
    }
    if !any && !point {
        return None;
    }
    let mut end = j;
    if s.get(j).is_some_and(|b| b.eq_ignore_ascii_case(&b'p')) {
        let (neg, mut k) = sign_at(s, j + 1);
        let start = k;
        let mut e: i64 = 0;
        while let Some(d) = s.get(k).filter(|b| b.is_ascii_digit()) {
            e = (e * 10 + i64::from(d - b'0')).min(100_000);
            k += 1;
        }
        if k > start {
            exp += if neg { -e } else { e };
            end = k;
        }
    }
    // 60 bits of mantissa and a sticky bit below them: one correct rounding to 53 bits.
    let m = if sticky { m << 1 | 1 } else { m << 1 };
    let e = (exp - 1).clamp(-2200, 2200) as i32;
    let v = (m as f64) * 2f64.powi(e / 2) * 2f64.powi(e - e / 2);
    Some((v, end))
}

/// Appends `v` in the old RDB double form, as Redis 2.6–3.2 `rdbSaveDoubleValue` wrote it: the single byte 253
/// (NaN), 254 (+inf) or 255 (−inf); otherwise a length byte and the text, which is the integer (`ll2string`) when
/// `v` is integral and `-4503599627370495 < v < 4503599627370496`, and C's `%.17g` otherwise (see
/// [`format_g17`]). One deliberate difference keeps every value exact: −0.0 is written `-0` (what `%.17g` gives;
/// Redis's integer shortcut wrote `0` and lost the sign). Every server reads this form with `strtod`, which gives
/// back −0.0, so the text always parses back to the same bits.
pub fn format_old_double(v: f64, out: &mut Vec<u8>) {
    if v.is_nan() {
        out.push(OLD_DOUBLE_NAN);
        return;
    }
    if v.is_infinite() {
        out.push(if v < 0.0 { OLD_DOUBLE_NEG_INF } else { OLD_DOUBLE_POS_INF });
        return;
    }
    let len_at = out.len();
    out.push(0);
    if v == 0.0 && v.is_sign_negative() {
        out.extend_from_slice(b"-0");
    } else if v > -4503599627370495.0 && v < 4503599627370496.0 && (v as i64) as f64 == v {
        push_i64(v as i64, out);
    } else {
        format_g17(v, out);
    }
    // At most 24 bytes ("-1.2345678901234567e-308"), well below the sentinels.
    out[len_at] = (out.len() - len_at - 1) as u8;
}

fn push_i64(i: i64, out: &mut Vec<u8>) {
    let mut buf = super::itoa_buf();
    out.extend_from_slice(super::fmt_i64(i, &mut buf));
}

/// Appends C's `printf("%.17g", v)` of a finite `v` (glibc output, digit for digit): 17 significant digits,
/// correctly rounded (ties to even on the exact binary value); exponent form when the decimal exponent X is below −4
/// or at least 17, fixed form otherwise; trailing zeros and a trailing `.` removed; exponent written with a sign and
/// at least two digits (`1e+20`, `1.0000000000000001e-05`). Non-finite values are written `inf`, `-inf`, `nan`.
pub fn format_g17(v: f64, out: &mut Vec<u8>) {
    if !v.is_finite() {
        out.extend_from_slice(match (v.is_nan(), v < 0.0) {
            (true, _) => b"nan",
            (false, true) => b"-inf",
            (false, false) => b"inf",
        });
        return;
    }
    if v.is_sign_negative() {
        out.push(b'-');
    }
    if v == 0.0 {
        out.push(b'0');
        return;
    }
    let mut digits = [0u8; 24];
    let Some((n, x)) = sci_digits(v, Some(16), &mut digits) else {
        return;
    };
    let mut d = &digits[..n];
    if !(-4..17).contains(&x) {
        while d.len() > 1 && d[d.len() - 1] == b'0' {
            d = &d[..d.len() - 1];
        }
        out.push(d[0]);
        if d.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&d[1..]);
        }
        out.push(b'e');
        out.push(if x < 0 { b'-' } else { b'+' });
        let ax = x.unsigned_abs();
        if ax < 10 {
            out.push(b'0');
        }
        push_i64(i64::from(ax), out);
    } else if x >= 0 {
        let int_len = (x as usize + 1).min(d.len());
        let (int, mut frac) = d.split_at(int_len);
        out.extend_from_slice(int);
        while let [rest @ .., b'0'] = frac {
            frac = rest;
        }
        if !frac.is_empty() {
            out.push(b'.');
            out.extend_from_slice(frac);
        }
    } else {
        while d.len() > 1 && d[d.len() - 1] == b'0' {
            d = &d[..d.len() - 1];
        }
        out.extend_from_slice(b"0.");
        for _ in 0..(-x - 1) {
            out.push(b'0');
        }
        out.extend_from_slice(d);
    }
}

/// Appends Redis's `d2string` text of `v` (listpack zset scores, replies, JSON output):
///
/// * NaN → `nan`, ±inf → `inf` / `-inf`, ±0 → `0` / `-0`;
/// * an integral `v` with `-2^62 <= v <= 2^62` (Redis's `double2ll` range) → the exact integer (`3`, `-17`,
///   `4611686018427387904`);
/// * anything else → the shortest digits that round-trip (Rust's algorithm; Redis's grisu2 `fpconv_dtoa` gives the
///   same digits except in rare cases where grisu2 is not shortest) laid out as fpconv's `emit_digits` does, with
///   D the n digits and K the exponent of the last one (v = D·10^K), E = |K + n − 1|:
///   - K ≥ 0 and E < n + 7: D followed by K zeros (`9223372036854776000`);
///   - K < 0 and (K > −7 or E < 4): plain decimal (`1.5`, `0.001`, `0.000001`, `0.1234567`);
///   - otherwise scientific, `d.ddd` then `e`, a sign and the exponent without padding (`1e+20`, `1.5e-7`,
///     `1.2345678901234e+4`).
///
/// The text always parses back (with [`parse_text_double`] or `str::parse`) to the same bits.
pub fn format_human_double(v: f64, out: &mut Vec<u8>) {
    if v.is_nan() {
        out.extend_from_slice(b"nan");
        return;
    }
    if v.is_infinite() {
        out.extend_from_slice(if v < 0.0 { b"-inf" } else { b"inf" });
        return;
    }
    if v == 0.0 {
        out.extend_from_slice(if v.is_sign_negative() { b"-0" } else { b"0" });
        return;
    }
    const LIM: f64 = 4611686018427387904.0; // (double)(LLONG_MAX / 2) = 2^62
    if (-LIM..=LIM).contains(&v) && (v as i64) as f64 == v {
        push_i64(v as i64, out);
        return;
    }
    if v < 0.0 {
        out.push(b'-');
    }
    let mut digits = [0u8; 24];
    let Some((n, e)) = sci_digits(v, None, &mut digits) else {
        return;
    };
    let d = &digits[..n];
    let n = n as i32;
    let k = e - (n - 1);
    let exp = e.unsigned_abs();
    if k >= 0 && (exp as i32) < n + 7 {
        out.extend_from_slice(d);
        out.resize(out.len() + k as usize, b'0');
    } else if k < 0 && (k > -7 || exp < 4) {
        let offset = n + k;
        if offset <= 0 {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + (-offset) as usize, b'0');
            out.extend_from_slice(d);
        } else {
            let (int, frac) = d.split_at(offset as usize);
            out.extend_from_slice(int);
            out.push(b'.');
            out.extend_from_slice(frac);
        }
    } else {
        out.push(d[0]);
        if d.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&d[1..]);
        }
        out.push(b'e');
        out.push(if e < 0 { b'-' } else { b'+' });
        push_i64(i64::from(exp), out);
    }
}

#[cfg(test)]
mod scan_tests {
    use super::*;

    #[test]
    fn reads_the_numeric_prefix() {
        let v = |t: &[u8]| scan_text_double(t).map(|s| (s.value, s.whole));
        assert_eq!(v(b"1.5"), Some((1.5, true)));
        assert_eq!(v(b"1.5abc"), Some((1.5, false)));
        assert_eq!(v(b" 2"), Some((2.0, false)));
        assert_eq!(v(b"1e"), Some((1.0, false)));
        assert_eq!(v(b"1e5x"), Some((100000.0, false)));
        assert_eq!(v(b"0x1p3"), Some((8.0, true)));
        assert_eq!(v(b"0x."), Some((0.0, true)));
        assert_eq!(v(b"-0").map(|(x, _)| x.is_sign_negative()), Some(true));
        assert_eq!(v(b"infinityx"), Some((f64::INFINITY, false)));
        assert_eq!(v(b"1.5\x003"), Some((1.5, false)));
        assert!(v(b"nan(abc").is_some_and(|(x, _)| x.is_nan()));
        for bad in [&b"abc"[..], b"0x", b"0xg", b"in", b"infi", b"infin", b".e1", b"-", b".", b"", b"e5"] {
            assert_eq!(v(bad), None, "{}", crate::escape_bytes(bad));
        }
    }

    #[test]
    fn listpack_scores_read_like_strtod() {
        assert_eq!(listpack_score(b"1.5abc"), 1.5);
        assert_eq!(listpack_score(b"abc"), 0.0);
        assert_eq!(listpack_score(b""), 0.0);
        assert_eq!(listpack_score(b"-infi"), f64::NEG_INFINITY);
        assert!(listpack_score(b"nan").is_nan());
        let long = [&b"2"[..], &[b'0'; 200]].concat();
        assert_eq!(listpack_score(&long), 2e126, "only 127 bytes are read");
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    mod glibc {
        use super::*;
        use proptest::prelude::*;

        unsafe extern "C" {
            fn sscanf(s: *const std::ffi::c_char, format: *const std::ffi::c_char, ...) -> std::ffi::c_int;
        }

        fn glibc(text: &[u8]) -> Option<f64> {
            let mut buf = text.to_vec();
            buf.push(0);
            let mut v = 0f64;
            // SAFETY: both strings are NUL-terminated and `%lg` writes one double through the pointer given.
            let n = unsafe { sscanf(buf.as_ptr().cast(), c"%lg".as_ptr(), &mut v as *mut f64) };
            (n == 1).then_some(v)
        }

        fn same(a: Option<f64>, b: Option<f64>) -> bool {
            match (a, b) {
                (Some(x), Some(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
                (None, None) => true,
                _ => false,
            }
        }

        proptest! {
            /// The model agrees with glibc's `sscanf("%lg")`, the servers' parser, on number-like texts.
            #[test]
            fn agrees_with_glibc(t in "[ +\\-]{0,2}(0[xX])?[0-9a-fA-F.]{0,8}([eEpP][+\\-]?[0-9]{0,3})?[a-z()\\x00 ]{0,3}|(?i)[+-]?(inf|infinity|nan|nan\\([a-z0-9_]*\\)?|in|infi|infin)[a-z]{0,2}") {
                let b = t.as_bytes();
                prop_assert!(same(scan_text_double(b).map(|s| s.value), glibc(b)), "{:?}: {:?} vs {:?}", t, scan_text_double(b), glibc(b));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn g17(v: f64) -> String {
        let mut out = Vec::new();
        format_g17(v, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn human(v: f64) -> String {
        let mut out = Vec::new();
        format_human_double(v, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn old(v: f64) -> Vec<u8> {
        let mut out = Vec::new();
        format_old_double(v, &mut out);
        out
    }

    /// `printf("%.17g")` outputs of glibc 2.x (gcc on x86-64), for the same decimal literals.
    const C_G17: &[(f64, &str)] = &[
        (0.1, "0.10000000000000001"),
        (1.5, "1.5"),
        (-2.25, "-2.25"),
        (1e20, "1e+20"),
        (1e-5, "1.0000000000000001e-05"),
        (std::f64::consts::PI, "3.1415926535897931"),
        (1e17, "1e+17"),
        (4503599627370496.0, "4503599627370496"),
        (-4503599627370495.0, "-4503599627370495"),
        (4503599627370495.5, "4503599627370495.5"),
        (123456789012345678.0, "1.2345678901234568e+17"),
        (0.0001, "0.0001"),
        (0.00001234, "1.234e-05"),
        (5e-324, "4.9406564584124654e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (-2.2250738585072014e-308, "-2.2250738585072014e-308"),
        // 7.62940216064453125 exactly: a tie at 17 digits, rounded to even.
        (1000001.0 / 131072.0, "7.6294021606445312"),
        (100.5, "100.5"),
        (0.3, "0.29999999999999999"),
        (2.5, "2.5"),
        (1.0 / 3.0, "0.33333333333333331"),
        (-2.0 / 3.0, "-0.66666666666666663"),
        (12345.678, "12345.678"),
        (1e16, "10000000000000000"),
        (9007199254740993.0, "9007199254740992"),
        (9.5367431640625e-07, "9.5367431640625e-07"),
        (0.5, "0.5"),
        (1e100, "1e+100"),
        (1.25e-300, "1.25e-300"),
        (99999999999999.99, "99999999999999.984"),
        (123456.7890123, "123456.7890123"),
        (1e21, "1e+21"),
        (4611686018427387904.0, "4.6116860184273879e+18"),
        (-1e-10, "-1e-10"),
        (6.02214076e23, "6.0221407599999999e+23"),
    ];

    #[test]
    fn g17_matches_glibc() {
        for &(v, want) in C_G17 {
            assert_eq!(g17(v), want, "{v:e}");
        }
        assert_eq!(g17(0.0), "0");
        assert_eq!(g17(-0.0), "-0");
    }

    #[test]
    fn old_form() {
        assert_eq!(old(f64::NAN), [253]);
        assert_eq!(old(f64::INFINITY), [254]);
        assert_eq!(old(f64::NEG_INFINITY), [255]);
        assert_eq!(old(0.0), b"\x010");
        assert_eq!(old(-0.0), b"\x02-0");
        assert_eq!(old(100.0), b"\x03100");
        assert_eq!(old(-12.0), b"\x03-12");
        assert_eq!(old(4503599627370495.0), b"\x104503599627370495");
        assert_eq!(old(1.5), b"\x031.5");
        assert_eq!(old(0.1), b"\x130.10000000000000001");
        assert_eq!(old(1e17), b"\x051e+17");
        let mut out = b"x".to_vec();
        format_old_double(-2.25, &mut out);
        assert_eq!(out, b"x\x05-2.25");
        for &(v, want) in C_G17 {
            let b = old(v);
            assert_eq!(usize::from(b[0]), b.len() - 1);
            if v.fract() != 0.0 || v.abs() >= 4503599627370495.0 {
                assert_eq!(&b[1..], want.as_bytes());
            }
            assert_eq!(decode_old_double(b[0], &b[1..]).unwrap().to_bits(), v.to_bits());
        }
    }

    #[test]
    fn parse_text() {
        let ok: &[(&str, f64)] = &[
            ("1.5", 1.5),
            ("-2", -2.0),
            ("+3", 3.0),
            ("  7", 7.0),
            ("1e5", 1e5),
            ("1E+05", 1e5),
            ("1.0000000000000001e-05", 1e-5),
            (".5", 0.5),
            ("5.", 5.0),
            ("inf", f64::INFINITY),
            ("-INF", f64::NEG_INFINITY),
            ("Infinity", f64::INFINITY),
            ("+inf", f64::INFINITY),
            ("0.10000000000000001", 0.1),
        ];
        for &(s, v) in ok {
            assert_eq!(parse_text_double(s.as_bytes()).map(f64::to_bits), Some(v.to_bits()), "{s}");
        }
        for s in ["nan", "NaN", "-nan", "nan(123)"] {
            assert!(parse_text_double(s.as_bytes()).unwrap().is_nan(), "{s}");
        }
        for s in ["", " ", "abc", "1e", "+-1", "--1", "1.5x", "0x1p3", ".", "e5", "1 ", "in", "nanx", "1\u{e9}"] {
            assert_eq!(parse_text_double(s.as_bytes()), None, "{s:?}");
        }
        assert_eq!(parse_text_double(b"\xff"), None);
    }

    #[test]
    fn decode_old() {
        assert!(decode_old_double(253, b"").unwrap().is_nan());
        assert_eq!(decode_old_double(254, b""), Some(f64::INFINITY));
        assert_eq!(decode_old_double(255, b""), Some(f64::NEG_INFINITY));
        assert_eq!(decode_old_double(3, b"1.5"), Some(1.5));
        assert_eq!(decode_old_double(4, b"1.5"), None);
        assert_eq!(decode_old_double(0, b""), None);
        assert_eq!(decode_old_double(254, b"x"), None);
    }

    #[test]
    fn human_form() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (-3.0, "-3"),
            (0.0, "0"),
            (-0.0, "-0"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (-0.3, "-0.3"),
            (100.5, "100.5"),
            (123.456, "123.456"),
            (0.001, "0.001"),
            (1e-6, "0.000001"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (0.1234567, "0.1234567"),
            (1.2345678e-6, "1.2345678e-6"),
            (12345.678901234, "1.2345678901234e+4"),
            (1e17, "100000000000000000"),
            (4611686018427387904.0, "4611686018427387904"),
            (-4611686018427387904.0, "-4611686018427387904"),
            (4611686018427388928.0, "4611686018427389000"),
            (9223372036854775808.0, "9223372036854776000"),
            (1e20, "1e+20"),
            (1e100, "1e+100"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (-1e-10, "-1e-10"),
            (std::f64::consts::PI, "3.141592653589793"),
        ];
        for &(v, want) in cases {
            assert_eq!(human(v), want, "{v:e}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn human_roundtrips(bits in any::<u64>()) {
            let v = f64::from_bits(bits);
            prop_assume!(v.is_finite());
            let s = human(v);
            prop_assert_eq!(parse_text_double(s.as_bytes()).map(f64::to_bits), Some(bits), "{}", s);
            prop_assert_eq!(s.parse::<f64>().map(f64::to_bits).ok(), Some(bits), "{}", s);
        }

        #[test]
        fn human_roundtrips_small(v in -1e6f64..1e6) {
            let s = human(v);
            prop_assert_eq!(parse_text_double(s.as_bytes()).map(f64::to_bits), Some(v.to_bits()), "{}", s);
        }

        #[test]
        fn old_roundtrips(bits in any::<u64>()) {
            let v = f64::from_bits(bits);
            let b = old(v);
            prop_assert!(b[0] >= 253 || usize::from(b[0]) == b.len() - 1);
            prop_assert!(b.len() <= 25);
            let back = decode_old_double(b[0], &b[1..]).unwrap();
            if v.is_nan() {
                prop_assert!(back.is_nan());
            } else {
                prop_assert_eq!(back.to_bits(), bits);
            }
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = parse_text_double(&bytes);
        }
    }
}
