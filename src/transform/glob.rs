//! Redis's glob matching (`KEYS` / `SCAN … MATCH` semantics) on binary keys, in time bounded by
//! O(len(key) · len(pattern)) and constant memory per match.
//!
//! The rules are those of Redis's `stringmatchlen` (util.c), including its treatment of malformed patterns:
//!
//! * `*` matches any run of bytes, `?` any one byte, `\x` the byte `x` (a `\` at the very end is a literal `\`),
//!   every other byte itself.
//! * `[…]` matches one byte of a set, `[^…]` one byte outside it. Inside, `\x` is the byte `x`, `a-b` a range
//!   (either order; `]` may be the end of a range, as in `[a-]`), anything else itself, and `]` closes the set
//!   (`[]` is the empty set). Range ends are compared as C `char`s, which are signed on the servers' platforms, so
//!   `[\x01-\xff]` is the range −1 … 1. A set that is never closed runs to the end of the pattern; a `[` that is
//!   the last byte of the pattern matches nothing and `[^` at the end any byte.
//! * An empty key matches only the empty pattern (`stringmatchlen` never lets `*` match an empty key), except
//!   that the pattern `*` alone matches every key, as `KEYS *` and `SCAN` do without calling the matcher.
//!
//! The pattern is compiled once into tokens (one byte set per single-byte token); matching walks key and tokens
//! with one remembered `*` position, the classic greedy algorithm that is exact for `*`/single-byte patterns.
//!
//! One difference remains by design: servers with the fix for CVE-2024-31228 (Redis 6.2.16+, 7.0.x as Debian
//! patches it, 7.2.6+, 7.4.1+, 8.x; Valkey) give up, and answer "no match", once a match gets past the 1000th `*`
//! run of a pattern with more after it; older servers (Redis 6.2.14 here) match such patterns normally, and so does
//! this matcher (it needs no such protection), so no key that matches is ever dropped.

/// One compiled pattern element.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A run of `*`.
    Star,
    /// One byte equal to this.
    Byte(u8),
    /// Any one byte.
    Any,
    /// One byte of this set (bit `b` of word `b / 64`).
    Set(Box<[u64; 4]>),
}

impl Token {
    #[inline]
    fn matches(&self, c: u8) -> bool {
        match self {
            Token::Star => false,
            Token::Byte(b) => *b == c,
            Token::Any => true,
            Token::Set(bits) => bits[usize::from(c >> 6)] >> (c & 63) & 1 == 1,
        }
    }
}

/// A compiled glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: Vec<u8>,
    tokens: Vec<Token>,
    /// The pattern is exactly `*`: every key matches (Redis's shortcut, the empty key included).
    all: bool,
}

impl Glob {
    /// A pattern; every byte string is a valid pattern, as in Redis.
    pub fn new(pattern: impl Into<Vec<u8>>) -> Self {
        let pattern = pattern.into();
        let tokens = compile(&pattern);
        let all = pattern == b"*";
        Glob { pattern, tokens, all }
    }

    /// The pattern as given.
    pub fn pattern(&self) -> &[u8] {
        &self.pattern
    }

    /// Whether `key` matches, exactly as Redis's `KEYS pattern` would list it.
    pub fn matches(&self, key: &[u8]) -> bool {
        if self.all {
            return true;
        }
        if key.is_empty() {
            return self.pattern.is_empty();
        }
        let t = &self.tokens;
        let (mut p, mut s) = (0usize, 0usize);
        // The last `*` seen and the key position it is currently assumed to end at.
        let mut star: Option<(usize, usize)> = None;
        while s < key.len() {
            match t.get(p) {
                Some(Token::Star) => {
                    star = Some((p, s));
                    p += 1;
                }
                Some(tok) if tok.matches(key[s]) => {
                    p += 1;
                    s += 1;
                }
                _ => match star {
                    // Let the last `*` absorb one more byte and retry what follows it. Earlier stars never need
                    // to move: everything between two stars has a fixed length.
                    Some((sp, ss)) => {
                        star = Some((sp, ss + 1));
                        p = sp + 1;
                        s = ss + 1;
                    }
                    None => return false,
                },
            }
        }
        t[p..].iter().all(|tok| *tok == Token::Star)
    }
}

/// Turns a pattern into tokens, following `stringmatchlen`'s reading of it byte by byte.
fn compile(p: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'*' => {
                while i < p.len() && p[i] == b'*' {
                    i += 1;
                }
                out.push(Token::Star);
                continue;
            }
            b'?' => out.push(Token::Any),
            b'[' => {
                let (set, next) = class(p, i + 1);
                out.push(Token::Set(Box::new(set)));
                i = next;
                continue;
            }
            b'\\' if i + 1 < p.len() => {
                i += 1;
                out.push(Token::Byte(p[i]));
            }
            c => out.push(Token::Byte(c)),
        }
        i += 1;
    }
    out
}

/// Reads a `[…]` set whose body starts at `i`; returns the set and the index after it.
fn class(p: &[u8], mut i: usize) -> ([u64; 4], usize) {
    let mut bits = [0u64; 4];
    let mut add = |c: u8| bits[usize::from(c >> 6)] |= 1 << (c & 63);
    let negate = p.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    loop {
        let left = p.len().saturating_sub(i);
        if left >= 2 && p[i] == b'\\' {
            i += 1;
            add(p[i]);
        } else if left > 0 && p[i] == b']' {
            i += 1;
            break;
        } else if left == 0 {
            // Never closed: the set ends with the pattern (Redis steps back onto the last byte, then past it).
            break;
        } else if left >= 3 && p[i + 1] == b'-' {
            // C `char` is signed: compare the ends as i8.
            let (a, b) = (p[i] as i8, p[i + 2] as i8);
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            for c in lo..=hi {
                add(c as u8);
            }
            i += 2;
        } else {
            add(p[i]);
        }
        i += 1;
    }
    if negate {
        for w in &mut bits {
            *w = !*w;
        }
    }
    (bits, i.min(p.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A line-by-line port of Redis 7.0's `stringmatchlen_impl` (util.c, with `skipLongerMatches`, without the
    /// CVE-2024-31228 nesting limit), the oracle of the matcher above. `pat[len]` reads as the C string's NUL.
    fn redis_match(pat: &[u8], key: &[u8]) -> bool {
        fn at(p: &[u8], i: usize) -> u8 {
            p.get(i).copied().unwrap_or(0)
        }
        fn imp(pat: &[u8], mut p: usize, key: &[u8], mut s: usize, skip: &mut bool) -> bool {
            let mut plen = pat.len() - p;
            let mut slen = key.len() - s;
            while plen > 0 && slen > 0 {
                match pat[p] {
                    b'*' => {
                        while plen > 0 && at(pat, p + 1) == b'*' {
                            p += 1;
                            plen -= 1;
                        }
                        if plen == 1 {
                            return true;
                        }
                        while slen > 0 {
                            if imp(pat, p + 1, key, s, skip) {
                                return true;
                            }
                            if *skip {
                                return false;
                            }
                            s += 1;
                            slen -= 1;
                        }
                        *skip = true;
                        return false;
                    }
                    b'?' => {
                        s += 1;
                        slen -= 1;
                    }
                    b'[' => {
                        p += 1;
                        plen -= 1;
                        let not = at(pat, p) == b'^';
                        if not {
                            p += 1;
                            plen -= 1;
                        }
                        let mut m = false;
                        loop {
                            if at(pat, p) == b'\\' && plen >= 2 {
                                p += 1;
                                plen -= 1;
                                if at(pat, p) == key[s] {
                                    m = true;
                                }
                            } else if at(pat, p) == b']' {
                                break;
                            } else if plen == 0 {
                                p -= 1;
                                plen += 1;
                                break;
                            } else if plen >= 3 && at(pat, p + 1) == b'-' {
                                let mut start = at(pat, p) as i8 as i32;
                                let mut end = at(pat, p + 2) as i8 as i32;
                                let c = key[s] as i8 as i32;
                                if start > end {
                                    std::mem::swap(&mut start, &mut end);
                                }
                                p += 2;
                                plen -= 2;
                                if c >= start && c <= end {
                                    m = true;
                                }
                            } else if at(pat, p) == key[s] {
                                m = true;
                            }
                            p += 1;
                            plen -= 1;
                        }
                        if not {
                            m = !m;
                        }
                        if !m {
                            return false;
                        }
                        s += 1;
                        slen -= 1;
                    }
                    c => {
                        let mut c = c;
                        if c == b'\\' && plen >= 2 {
                            p += 1;
                            plen -= 1;
                            c = pat[p];
                        }
                        if c != key[s] {
                            return false;
                        }
                        s += 1;
                        slen -= 1;
                    }
                }
                p += 1;
                plen -= 1;
                if slen == 0 {
                    while at(pat, p) == b'*' {
                        p += 1;
                        plen -= 1;
                    }
                    break;
                }
            }
            plen == 0 && slen == 0
        }
        // KEYS and SCAN skip the matcher for the pattern "*".
        if pat == b"*" {
            return true;
        }
        imp(pat, 0, key, 0, &mut false)
    }

    fn m(p: &str, s: &str) -> bool {
        Glob::new(p).matches(s.as_bytes())
    }

    #[test]
    fn redis_semantics() {
        assert!(m("*", ""));
        assert!(!m("**", ""), "stringmatchlen never matches an empty key with a star");
        assert!(!m("?", ""));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("k[0-9]", "k1"));
        assert!(!m("k[0-9]", "k10"));
        assert!(m("user:*:name", "user:42:name"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("[a-c]x", "bx"));
        assert!(m("[c-a]x", "bx"));
        assert!(m("*{tag}*", "x{tag}y"));
        assert!(m("a*", "a"));
        assert!(m("a**", "a"));
        assert!(m("a\\", "a\\"), "a trailing backslash is literal");
        // Malformed sets: `]` ends a range, unclosed sets run to the end, a trailing `[` matches nothing.
        assert!(m("[a-]", "]") && m("[a-]", "^") && !m("[a-]", "-"));
        assert!(m("[abc", "b") && !m("[abc", "bx"));
        assert!(!m("x[", "x") && !m("x[", "xa"));
        assert!(m("x[^", "xa") && !m("x[^", "x"));
        assert!(!m("[]", "]") && !m("[]]", "]") && !m("[]]", "]]"), "[] is the empty set");
        assert!(m("[^]", "x"));
        assert!(m("[\\]]", "]") && m("[\\", "\\"));
        // Signed char ranges: \x01-\xff is -1..=1.
        let g = Glob::new(&b"[\x01-\xff]"[..]);
        assert!(g.matches(b"\xff") && g.matches(b"\x00") && g.matches(b"\x01") && !g.matches(b"a"));
        // Pathological patterns stay fast and exact.
        let long = "a".repeat(60);
        assert!(!Glob::new("*a*a*a*a*a*a*a*a*a*a*a*a*b").matches(long.as_bytes()));
        assert!(Glob::new("*a*a*a*a*a*a*a*a*a*a*a*a*a").matches(long.as_bytes()));
    }

    #[test]
    fn long_keys_and_patterns_never_give_up() {
        // The old budgeted matcher answered "no" here.
        let key = "ab".repeat(200_000);
        let pat = format!("{}b", "*a".repeat(2_000));
        assert!(Glob::new(pat.as_str()).matches(key.as_bytes()));
        let pat = format!("{}c", "*a".repeat(2_000));
        assert!(!Glob::new(pat.as_str()).matches(key.as_bytes()));
        let pat = "*?".repeat(50_000);
        assert!(Glob::new(pat.as_str()).matches("a".repeat(50_000).as_bytes()));
        assert!(!Glob::new(pat.as_str()).matches("a".repeat(49_999).as_bytes()));
    }

    #[test]
    fn oracle_agrees_on_a_table() {
        let pats = ["*", "**", "a*", "*a", "a*b", "[a-", "[^", "[", "\\", "a\\", "[a-]", "?*?", "*[ab]*", "[]*"];
        let keys = ["", "a", "b", "ab", "ba", "aab", "]", "\\", "a\\", "-", "^"];
        for p in pats {
            for k in keys {
                assert_eq!(m(p, k), redis_match(p.as_bytes(), k.as_bytes()), "{p:?} {k:?}");
            }
        }
    }

    fn pattern_bytes() -> impl Strategy<Value = Vec<u8>> {
        let b = prop_oneof![
            4 => prop::sample::select(b"ab".to_vec()),
            3 => prop::sample::select(b"*?[]^-\\".to_vec()),
            1 => any::<u8>(),
        ];
        proptest::collection::vec(b, 0..12)
    }

    fn key_bytes() -> impl Strategy<Value = Vec<u8>> {
        let b = prop_oneof![
            6 => prop::sample::select(b"ab".to_vec()),
            2 => prop::sample::select(b"*?[]^-\\".to_vec()),
            1 => any::<u8>(),
        ];
        proptest::collection::vec(b, 0..12)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn same_answer_as_stringmatchlen(p in pattern_bytes(), k in key_bytes()) {
            prop_assert_eq!(Glob::new(p.clone()).matches(&k), redis_match(&p, &k));
        }
    }
}
