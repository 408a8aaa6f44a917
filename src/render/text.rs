//! Byte-exact text forms shared by the renderers: JSON strings and numbers (UTF-8 as a JSON string, anything
//! else as `{"b64": "…"}`), base64, and integers without allocation.
//!
//! Output buffers grow fallibly: a value too large for the memory at hand fails its record with
//! [`ErrorKind::OutOfMemory`](crate::ErrorKind::OutOfMemory) instead of aborting the process.

thread_local! {
    /// The size of the first output buffer that could not be grown since [`take_out_of_memory`] (see [`room`]).
    static OUT_OF_MEMORY: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// Makes room for `n` more bytes in an output buffer, as writing one element of a value needs. When the memory
/// cannot be had, returns false and latches the failure: the writer skips the element and the renderer turns the
/// latch ([`take_out_of_memory`]) into an error for the record, instead of the abort an infallible growth would be.
pub(crate) fn room(o: &mut Vec<u8>, n: usize) -> bool {
    if o.capacity() - o.len() >= n || o.try_reserve(n).is_ok() {
        return true;
    }
    OUT_OF_MEMORY.set(Some(o.len().saturating_add(n) as u64));
    false
}

/// The error for an output buffer [`room`] could not grow since the last call, for the record at `offset`.
pub(crate) fn take_out_of_memory(offset: u64) -> Option<crate::Error> {
    let bytes = OUT_OF_MEMORY.take()?;
    Some(crate::Error::new(crate::ErrorKind::OutOfMemory { what: "a record's output", bytes }, offset))
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        s.push(T[(n >> 18) as usize & 63] as char);
        s.push(T[(n >> 12) as usize & 63] as char);
        s.push(if c.len() > 1 { T[(n >> 6) as usize & 63] as char } else { '=' });
        s.push(if c.len() > 2 { T[n as usize & 63] as char } else { '=' });
    }
    s
}

/// Writes a byte string as a JSON value: a string when the bytes are valid UTF-8, else `{"b64":"…"}`.
pub fn json_bytes(out: &mut Vec<u8>, b: &[u8]) {
    let start = out.len();
    if !json_escape(out, b, false) {
        out.truncate(start);
        out.extend_from_slice(b"{\"b64\":\"");
        out.extend_from_slice(base64(b).as_bytes());
        out.extend_from_slice(b"\"}");
    }
}

/// Writes a JSON string literal.
pub fn json_str(out: &mut Vec<u8>, s: &str) {
    json_escape(out, s.as_bytes(), true);
}

/// Writes an integer.
pub fn json_int(out: &mut Vec<u8>, v: impl JsonInt) {
    v.push_to(out);
}

/// Integers [`json_int`] writes (in decimal, without allocating).
pub trait JsonInt {
    /// Appends the decimal text.
    fn push_to(self, out: &mut Vec<u8>);
}

macro_rules! json_int_impl {
    ($($u:ty),*; $($i:ty),*) => {
        $(impl JsonInt for $u {
            fn push_to(self, out: &mut Vec<u8>) {
                push_u64(out, self as u64);
            }
        })*
        $(impl JsonInt for $i {
            fn push_to(self, out: &mut Vec<u8>) {
                push_i64(out, self as i64);
            }
        })*
    };
}
json_int_impl!(u8, u16, u32, u64, usize; i8, i16, i32, i64, isize);

/// The two-digit decimal numbers 00 to 99, back to back.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869\
    707172737475767778798081828384858687888990919293949596979899";

/// Writes the `n` decimal digits of `v` into `out[..n]`.
#[inline(always)]
fn fill_digits(mut v: u64, out: &mut [u8], mut n: usize) {
    while v >= 100 {
        let d = (v % 100) as usize * 2;
        v /= 100;
        n -= 2;
        out[n..n + 2].copy_from_slice(&PAIRS[d..d + 2]);
    }
    if v >= 10 {
        let d = v as usize * 2;
        out[n - 2..n].copy_from_slice(&PAIRS[d..d + 2]);
    } else {
        out[n - 1] = b'0' + v as u8;
    }
}

/// The number of decimal digits of `v`.
#[inline(always)]
fn digit_count(v: u64) -> usize {
    v.checked_ilog10().unwrap_or(0) as usize + 1
}

/// Formats `v` in decimal into `buf` (20 bytes hold any `i64`), returning the text.
pub fn i64_text(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    let neg = usize::from(v < 0);
    let n = digit_count(v.unsigned_abs());
    buf[0] = b'-';
    fill_digits(v.unsigned_abs(), &mut buf[neg..], n);
    &buf[..neg + n]
}

/// Appends `v` in decimal.
#[inline]
pub fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    if v >= 10_000_000_000_000_000 {
        let mut buf = [0u8; 20];
        let n = digit_count(v);
        fill_digits(v, &mut buf, n);
        out.extend_from_slice(&buf[..n]);
        return;
    }
    // At most 16 digits: gathered in a register, most significant in the lowest byte, and stored with one
    // fixed-size copy (digits written to a buffer one pair at a time and copied out stall the copy).
    let n = digit_count(v);
    let mut acc = 0u128;
    while v >= 100 {
        let d = (v % 100) as usize * 2;
        v /= 100;
        acc = (acc << 16) | u128::from(u16::from_le_bytes([PAIRS[d], PAIRS[d + 1]]));
    }
    if v >= 10 {
        let d = v as usize * 2;
        acc = (acc << 16) | u128::from(u16::from_le_bytes([PAIRS[d], PAIRS[d + 1]]));
    } else {
        acc = (acc << 8) | u128::from(b'0' + v as u8);
    }
    let len = out.len();
    out.extend_from_slice(&acc.to_le_bytes());
    out.truncate(len + n);
}

/// Appends `v` in decimal.
#[inline]
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The bytes of an 8-byte little-endian word that need attention, each flagged by its high bit: control characters,
/// `"` and `\`, and with `NON_ASCII` every byte ≥ 0x80. The lowest flag is always exact (a borrow can only raise
/// false flags above a true one), which is all [`next_special`] uses.
///
/// `t = w ^ 0x02…` maps `"` to 0x20 and leaves control characters below 0x20, so "`t` < 0x21" finds both; `v = w ^
/// 0x5c…` is zero where `w` holds a backslash. Subtracting sets a byte's high bit where it is below the subtrahend,
/// provided it had no high bit before, which `| t` (all non-ASCII bytes flagged) or `& !w` (none) settles.
#[inline(always)]
fn special_mask<const NON_ASCII: bool>(w: u64) -> u64 {
    let t = w ^ (LO * 0x02);
    let v = w ^ (LO * u64::from(b'\\'));
    let below = t.wrapping_sub(LO * 0x21) | v.wrapping_sub(LO);
    if NON_ASCII { (below | t) & HI } else { below & !w & HI }
}

#[inline(always)]
fn is_special<const NON_ASCII: bool>(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\' || (NON_ASCII && c >= 0x80)
}

/// The index of the first byte at or after `i` that [`special_mask`] flags, or `b.len()`.
#[inline(always)]
fn next_special<const NON_ASCII: bool>(b: &[u8], i: usize) -> usize {
    let word = |c: &[u8]| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
    let rest = &b[i..];
    let mut chunks = rest.chunks_exact(16);
    let mut at = i;
    for c in chunks.by_ref() {
        let lo = special_mask::<NON_ASCII>(word(&c[..8]));
        let hi = special_mask::<NON_ASCII>(word(&c[8..]));
        if lo | hi != 0 {
            let tz = if lo != 0 { lo.trailing_zeros() } else { 64 + hi.trailing_zeros() };
            return at + (tz / 8) as usize;
        }
        at += 16;
    }
    let tail = chunks.remainder();
    if tail.len() >= 8 {
        let m = special_mask::<NON_ASCII>(word(tail));
        if m != 0 {
            return at + (m.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    if at < b.len() && b.len() >= 8 {
        // The last 8 bytes, overlapping what was scanned: flags below `at` are shifted out. A flag is never missed,
        // but one above a shifted-out flag may be false, so a flagged tail is settled byte by byte below.
        let start = b.len() - 8;
        if special_mask::<NON_ASCII>(word(&b[start..])) >> (8 * (at - start)) == 0 {
            return b.len();
        }
    }
    while at < b.len() && !is_special::<NON_ASCII>(b[at]) {
        at += 1;
    }
    at
}

/// Appends `b` as a JSON string literal, escaped exactly as serde_json does: `\"`, `\\`, `\b` `\t` `\n` `\f` `\r`, other
/// control characters as `\u00xx`; everything else verbatim. Unless `valid_utf8`, checks that `b` is UTF-8 and
/// returns false (with a partial literal appended) when it is not.
fn json_escape(out: &mut Vec<u8>, b: &[u8], mut valid_utf8: bool) -> bool {
    if !room(out, b.len() + 64) {
        // Latched: the record fails; what is written does not matter.
        return true;
    }
    out.push(b'"');
    let mut run = 0;
    let mut i = 0;
    loop {
        i = if valid_utf8 { next_special::<false>(b, i) } else { next_special::<true>(b, i) };
        let Some(&c) = b.get(i) else { break };
        if c >= 0x80 {
            // Everything before is ASCII, so the rest decides whether the whole string is UTF-8.
            if std::str::from_utf8(&b[i..]).is_err() {
                return false;
            }
            valid_utf8 = true;
            continue;
        }
        out.extend_from_slice(&b[run..i]);
        push_json_escape(out, c);
        i += 1;
        run = i;
    }
    out.extend_from_slice(&b[run..]);
    out.push(b'"');
    true
}

/// Appends the JSON escape of the ASCII character `c` (a quote, a backslash or a control character), as serde_json
/// writes it.
pub fn push_json_escape(out: &mut Vec<u8>, c: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let esc: &[u8] = match c {
        b'"' => b"\\\"",
        b'\\' => b"\\\\",
        b'\n' => b"\\n",
        b'\r' => b"\\r",
        b'\t' => b"\\t",
        0x08 => b"\\b",
        0x0c => b"\\f",
        _ => &[b'\\', b'u', b'0', b'0', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]],
    };
    out.extend_from_slice(esc);
}

/// Writes a double as a JSON number (shortest round-trip form), or `"inf"`, `"-inf"`, `"nan"`.
pub fn json_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"\"nan\"");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"\"inf\"" } else { b"\"-inf\"" });
    } else {
        let _ = serde_json::to_writer(&mut *out, &v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (i, o) in cases {
            assert_eq!(base64(i), o);
        }
    }

    /// What `json_bytes` wrote before it had its own escaper: serde_json for UTF-8, base64 otherwise.
    fn reference_json_bytes(b: &[u8]) -> Vec<u8> {
        match std::str::from_utf8(b) {
            Ok(s) => serde_json::to_vec(s).unwrap(),
            Err(_) => format!("{{\"b64\":\"{}\"}}", base64(b)).into_bytes(),
        }
    }

    fn check_json_bytes(b: &[u8]) {
        let mut out = b"prefix".to_vec();
        json_bytes(&mut out, b);
        assert_eq!(out[6..], reference_json_bytes(b)[..], "input {b:?}");
    }

    #[test]
    fn json_bytes_escapes_like_serde_json() {
        // Every byte value at every position of strings up to 40 bytes, in plain ASCII and in UTF-8 text, so each
        // lands in each lane of the word-at-a-time scan and in the byte-at-a-time tail.
        for len in 0..40 {
            for pos in 0..len {
                for c in 0..=255u8 {
                    let mut b = vec![b'a'; len];
                    b[pos] = c;
                    check_json_bytes(&b);
                    let mut u = "é".repeat(len).into_bytes();
                    u[pos] = c;
                    check_json_bytes(&u);
                }
            }
        }
        // Random strings over an alphabet dense in special bytes, and fully random bytes.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet: &[u8] =
            b"ab\"\\\x00\x01\x1f\x20\x21\x22\x23\x5b\x5c\x5d\x7f\x80\xbf\xc3\xa9\xe2\x9c\x93\xff\n\r\t\x08\x0c";
        for _ in 0..20_000 {
            let len = (rnd() % 70) as usize;
            let dense: Vec<u8> = (0..len).map(|_| alphabet[(rnd() % alphabet.len() as u64) as usize]).collect();
            check_json_bytes(&dense);
            let random: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
            check_json_bytes(&random);
            // Valid UTF-8 with escapes after the first non-ASCII character.
            let text: String = dense.iter().map(|&c| char::from(c)).collect();
            check_json_bytes(text.as_bytes());
            let mut via_str = Vec::new();
            json_str(&mut via_str, &text);
            assert_eq!(via_str, serde_json::to_vec(&text).unwrap());
        }
    }

    #[test]
    fn integers_format_like_display() {
        let mut cases: Vec<i64> = vec![0, 1, 9, 10, 99, 100, 101, 999, 1000, i64::MAX, i64::MIN, i64::MIN + 1, -1, -10];
        for p in 0..19 {
            let t = 10i64.pow(p);
            cases.extend([t - 1, t, t + 1, -t, -t + 1, -t - 1]);
        }
        for v in cases {
            let mut out = b"x".to_vec();
            push_i64(&mut out, v);
            assert_eq!(out, format!("x{v}").into_bytes());
            let mut buf = [0u8; 20];
            assert_eq!(i64_text(v, &mut buf), v.to_string().as_bytes());
            let mut out = Vec::new();
            json_int(&mut out, v);
            assert_eq!(out, v.to_string().into_bytes());
        }
        for v in [u64::MAX, u64::MAX - 1, 10_000_000_000_000_000, 9_999_999_999_999_999, 1 << 63] {
            let mut out = Vec::new();
            push_u64(&mut out, v);
            assert_eq!(out, v.to_string().into_bytes());
        }
    }

    #[test]
    fn json_helpers() {
        let mut v = Vec::new();
        json_bytes(&mut v, b"a\"\n\x00");
        v.push(b' ');
        json_bytes(&mut v, b"\xff\x00");
        v.push(b' ');
        json_f64(&mut v, f64::NEG_INFINITY);
        v.push(b' ');
        json_f64(&mut v, 2.5);
        assert_eq!(String::from_utf8(v).unwrap(), r#""a\"\n\u0000" {"b64":"/wA="} "-inf" 2.5"#);
    }
}
