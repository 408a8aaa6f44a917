//! Redis's glob matching (`KEYS`/`SCAN MATCH` semantics) on binary keys: `*`, `?`, `[abc]`, `[^a-z]`, `\x`.

/// A compiled glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: Vec<u8>,
}

impl Glob {
    /// A pattern; every byte string is a valid pattern, as in Redis.
    pub fn new(pattern: impl Into<Vec<u8>>) -> Self {
        Glob { pattern: pattern.into() }
    }

    /// Whether `key` matches.
    pub fn matches(&self, key: &[u8]) -> bool {
        // Bounded recursion: each `*` is handled by iteration over the positions it may absorb, with a budget
        // on the total work so that pathological patterns cannot take exponential time.
        let mut budget: u64 = 1_000_000 + 64 * (key.len() as u64 + self.pattern.len() as u64);
        match_here(&self.pattern, key, &mut budget)
    }
}

fn match_here(mut p: &[u8], mut s: &[u8], budget: &mut u64) -> bool {
    while let Some(&c) = p.first() {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        match c {
            b'*' => {
                while p.first() == Some(&b'*') {
                    p = &p[1..];
                }
                if p.is_empty() {
                    return true;
                }
                for start in 0..=s.len() {
                    if match_here(p, &s[start..], budget) {
                        return true;
                    }
                    if *budget == 0 {
                        return false;
                    }
                }
                return false;
            }
            b'?' => {
                if s.is_empty() {
                    return false;
                }
                s = &s[1..];
                p = &p[1..];
            }
            b'[' => {
                let Some(&sc) = s.first() else { return false };
                let mut q = &p[1..];
                let negate = q.first() == Some(&b'^');
                if negate {
                    q = &q[1..];
                }
                let mut matched = false;
                loop {
                    match q {
                        [] => break,
                        [b']', rest @ ..] => {
                            q = rest;
                            break;
                        }
                        [b'\\', x, rest @ ..] => {
                            matched |= *x == sc;
                            q = rest;
                        }
                        [a, b'-', b, rest @ ..] if *b != b']' => {
                            let (lo, hi) = if a <= b { (*a, *b) } else { (*b, *a) };
                            matched |= (lo..=hi).contains(&sc);
                            q = rest;
                        }
                        [x, rest @ ..] => {
                            matched |= *x == sc;
                            q = rest;
                        }
                    }
                }
                if matched == negate {
                    return false;
                }
                p = q;
                s = &s[1..];
            }
            b'\\' if p.len() >= 2 => {
                if s.first() != Some(&p[1]) {
                    return false;
                }
                p = &p[2..];
                s = &s[1..];
            }
            _ => {
                if s.first() != Some(&c) {
                    return false;
                }
                p = &p[1..];
                s = &s[1..];
            }
        }
    }
    s.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_semantics() {
        let m = |p: &str, s: &str| Glob::new(p).matches(s.as_bytes());
        assert!(m("*", ""));
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
        // Pathological pattern terminates.
        let long = "a".repeat(60);
        assert!(!Glob::new("*a*a*a*a*a*a*a*a*a*a*a*a*b").matches(long.as_bytes()));
    }
}
