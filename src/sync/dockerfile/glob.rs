//! The wildcard engine shared by `.dockerignore` and `COPY`/`ADD` sources.
//!
//! A pattern is compiled once into [`Tok`]s and matched against a whole
//! `/`-separated path by [`glob_match`], a set-of-positions simulation that
//! runs in O(tokens × length) whatever the pattern (no backtracking, so a
//! hostile pattern cannot blow up). Two dialects:
//!
//! * Go's `filepath.Match` (`COPY`/`ADD` sources): `*` and `?` never match
//!   `/`, `[…]`/`[^…]` classes, `\` escapes; `**` is just two `*`.
//! * `.dockerignore` (Docker's `patternmatcher`): the same, plus `**`, which
//!   at the end of a pattern matches anything and elsewhere (`**/`) matches
//!   nothing or any run of folders.

#[derive(Debug, Clone)]
pub(super) enum Tok {
    Lit(char),
    /// `*`: any run of characters other than `/`.
    Star,
    /// `?`: one character other than `/`.
    Quest,
    /// `[…]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**` at the end of a pattern: anything.
    AnyAll,
    /// `**` (and `**/`) elsewhere: nothing, or anything ending in `/`.
    OptDirs,
}

/// Compiles a pattern. With `double_star`, `**` has .dockerignore's meaning;
/// without, it is just two `*` (Go's `filepath.Match`, used by `COPY`).
pub(super) fn compile_pattern(pattern: &str, double_star: bool) -> Result<Vec<Tok>, &'static str> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if double_star && chars.get(i + 1) == Some(&'*') {
                    i += 2;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    tokens.push(if i >= chars.len() { Tok::AnyAll } else { Tok::OptDirs });
                } else {
                    if !matches!(tokens.last(), Some(Tok::Star)) {
                        tokens.push(Tok::Star);
                    }
                    i += 1;
                }
            }
            '?' => {
                tokens.push(Tok::Quest);
                i += 1;
            }
            '\\' => {
                let c = *chars.get(i + 1).ok_or("it ends with a lone `\\`")?;
                tokens.push(Tok::Lit(c));
                i += 2;
            }
            '[' => {
                i += 1;
                let negated = chars.get(i) == Some(&'^');
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    match chars.get(i) {
                        None => return Err("a `[` is never closed"),
                        Some(']') if !ranges.is_empty() => {
                            i += 1;
                            break;
                        }
                        Some(_) => {}
                    }
                    let lo = class_char(&chars, &mut i)?;
                    let hi = if chars.get(i) == Some(&'-') {
                        i += 1;
                        class_char(&chars, &mut i)?
                    } else {
                        lo
                    };
                    ranges.push((lo, hi));
                }
                tokens.push(Tok::Class { negated, ranges });
            }
            c => {
                tokens.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    Ok(tokens)
}

fn class_char(chars: &[char], i: &mut usize) -> Result<char, &'static str> {
    match chars.get(*i) {
        None => Err("a `[` is never closed"),
        Some('-') | Some(']') => Err("a `[…]` class has a misplaced `-` or `]`"),
        Some('\\') => {
            let c = *chars.get(*i + 1).ok_or("a `[` is never closed")?;
            *i += 2;
            Ok(c)
        }
        Some(&c) => {
            *i += 1;
            Ok(c)
        }
    }
}

/// Whether the whole of `s` matches `tokens`. Runs in O(tokens × len).
pub(super) fn glob_match(tokens: &[Tok], s: &[char]) -> bool {
    let n = s.len();
    let mut cur = vec![false; n + 1];
    let mut next = vec![false; n + 1];
    cur[0] = true;
    for tok in tokens {
        next.iter_mut().for_each(|b| *b = false);
        match tok {
            Tok::Lit(c) => {
                for p in 0..n {
                    next[p + 1] = cur[p] && s[p] == *c;
                }
            }
            Tok::Quest => {
                for p in 0..n {
                    next[p + 1] = cur[p] && s[p] != '/';
                }
            }
            Tok::Class { negated, ranges } => {
                for p in 0..n {
                    if cur[p] {
                        let inside = ranges.iter().any(|(lo, hi)| *lo <= s[p] && s[p] <= *hi);
                        next[p + 1] = inside != *negated;
                    }
                }
            }
            Tok::Star => {
                let mut reach = false;
                for q in 0..=n {
                    reach = cur[q] || (reach && s[q - 1] != '/');
                    next[q] = reach;
                }
            }
            Tok::AnyAll => {
                let mut reach = false;
                for q in 0..=n {
                    reach = reach || cur[q];
                    next[q] = reach;
                }
            }
            Tok::OptDirs => {
                let mut started = false;
                for q in 0..=n {
                    if q > 0 && started && s[q - 1] == '/' {
                        next[q] = true;
                    }
                    if cur[q] {
                        started = true;
                        next[q] = true;
                    }
                }
            }
        }
        std::mem::swap(&mut cur, &mut next);
        if !cur.iter().any(|b| *b) {
            return false;
        }
    }
    cur[n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_engine() {
        let m =
            |p: &str, s: &str, ds: bool| glob_match(&compile_pattern(p, ds).unwrap(), &s.chars().collect::<Vec<_>>());
        assert!(m("*.go", "main.go", false));
        assert!(!m("*.go", "pkg/main.go", false));
        assert!(m("*/*.go", "pkg/main.go", false));
        assert!(m("**", "pkg/x", true));
        assert!(!m("**", "pkg/x", false));
        assert!(m("**/*.go", "main.go", true));
        assert!(m("**/*.go", "a/b/main.go", true));
        assert!(m("a?c", "abc", false));
        assert!(!m("a?c", "a/c", false));
        assert!(m("[^a]x", "bx", false));
        assert!(!m("[^a]x", "ax", false));
        assert!(m("\\*", "*", false));
        assert!(!m("\\*", "x", false));
        assert!(m("x[\\]]", "x]", false));
        assert!(compile_pattern("[]", false).is_err());
        assert!(compile_pattern("[a-]", false).is_err());
        assert!(compile_pattern("a\\", false).is_err());
    }
}
