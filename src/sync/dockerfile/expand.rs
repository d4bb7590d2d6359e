//! Variable expansion in one word: BuildKit's shell lexer, the parts that
//! decide where a file lands.
//!
//! [`expand_word`] removes quotes and escapes and substitutes `$VAR`,
//! `${VAR}` and the modifiers `${VAR:-x}`, `${VAR-x}`, `${VAR:+x}`,
//! `${VAR+x}`, `${VAR:?msg}` and `${VAR?msg}`, whose words are themselves
//! expanded (nesting is capped at [`MAX_SUBSTITUTION_DEPTH`]). Single quotes
//! keep everything literal; inside double quotes only `$`, `"` and the
//! escape character are special. [`Vars`] is the scope: `ENV` values win
//! over `ARG` values, and a variable that is unset expands to nothing, as in
//! Docker. Errors are plain strings; the caller adds the line and the word.

use std::collections::BTreeMap;

/// Maximum nesting of `${…}` inside `${…}` before giving up.
pub(super) const MAX_SUBSTITUTION_DEPTH: usize = 16;

/// Variables in scope: `ENV` first, then `ARG` (`None` = declared, unset).
pub(super) struct Vars<'a> {
    /// `ENV` values.
    pub(super) env: &'a BTreeMap<String, String>,
    /// `ARG` values.
    pub(super) args: &'a BTreeMap<String, Option<String>>,
}

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str).or_else(|| self.args.get(name).and_then(|v| v.as_deref()))
    }
}

/// Removes quotes and escapes and expands variables in one word.
pub(super) fn expand_word(word: &str, vars: &Vars<'_>, escape: char) -> Result<String, String> {
    let chars: Vec<char> = word.chars().collect();
    expand_chars(&chars, vars, escape, 0)
}

fn expand_chars(chars: &[char], vars: &Vars<'_>, escape: char, depth: usize) -> Result<String, String> {
    if depth > MAX_SUBSTITUTION_DEPTH {
        return Err("`${…}` nested too deeply".to_owned());
    }
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated single quote".to_owned()),
                    Some('\'') => break,
                    Some(&d) => out.push(d),
                }
                i += 1;
            }
            i += 1;
        } else if c == '"' {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated double quote".to_owned()),
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&d) if d == escape => match chars.get(i + 1) {
                        Some(&n) if n == '"' || n == '$' || n == escape => {
                            out.push(n);
                            i += 2;
                        }
                        _ => {
                            out.push(d);
                            i += 1;
                        }
                    },
                    Some('$') => i = expand_dollar(chars, i, vars, escape, depth, &mut out)?,
                    Some(&d) => {
                        out.push(d);
                        i += 1;
                    }
                }
            }
        } else if c == escape {
            match chars.get(i + 1) {
                Some(&n) => {
                    out.push(n);
                    i += 2;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else if c == '$' {
            i = expand_dollar(chars, i, vars, escape, depth, &mut out)?;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

/// Expands the `$…` starting at `chars[i]`; returns the index after it.
fn expand_dollar(
    chars: &[char],
    i: usize,
    vars: &Vars<'_>,
    escape: char,
    depth: usize,
    out: &mut String,
) -> Result<usize, String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    match chars.get(i + 1) {
        Some('{') => {
            // Find the matching `}`.
            let mut j = i + 2;
            let mut nesting = 1;
            loop {
                match chars.get(j) {
                    None => return Err("missing `}`".to_owned()),
                    Some(&c) if c == escape => j += 1,
                    Some('$') if chars.get(j + 1) == Some(&'{') => {
                        nesting += 1;
                        j += 1;
                    }
                    Some('}') => {
                        nesting -= 1;
                        if nesting == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            let inner = &chars[i + 2..j];
            let name_len = inner.iter().take_while(|c| is_name(**c)).count();
            if name_len == 0 {
                return Err("bad substitution: `${` must be followed by a name".to_owned());
            }
            let name: String = inner[..name_len].iter().collect();
            let value = vars.get(&name);
            let modifier = &inner[name_len..];
            let word = |from: usize| expand_chars(&modifier[from..], vars, escape, depth + 1);
            let set_nonempty = value.is_some_and(|v| !v.is_empty());
            match modifier {
                [] => out.push_str(value.unwrap_or("")),
                [':', '-', ..] if !set_nonempty => out.push_str(&word(2)?),
                [':', '-', ..] => out.push_str(value.unwrap_or("")),
                ['-', ..] if value.is_none() => out.push_str(&word(1)?),
                ['-', ..] => out.push_str(value.unwrap_or("")),
                [':', '+', ..] if set_nonempty => out.push_str(&word(2)?),
                [':', '+', ..] => {}
                ['+', ..] if value.is_some() => out.push_str(&word(1)?),
                ['+', ..] => {}
                [':', '?', ..] | ['?', ..] => {
                    let colon = modifier[0] == ':';
                    let bad = if colon { !set_nonempty } else { value.is_none() };
                    if bad {
                        let message = word(if colon { 2 } else { 1 })?;
                        return Err(if message.is_empty() {
                            format!("{name} is not allowed to be unset")
                        } else {
                            format!("{name}: {message}")
                        });
                    }
                    out.push_str(value.unwrap_or(""));
                }
                _ => return Err(format!("unsupported substitution `${{{}}}`", inner.iter().collect::<String>())),
            }
            Ok(j + 1)
        }
        Some(&c) if is_name(c) => {
            let len = chars[i + 1..].iter().take_while(|c| is_name(**c)).count();
            let name: String = chars[i + 1..i + 1 + len].iter().collect();
            out.push_str(vars.get(&name).unwrap_or(""));
            Ok(i + 1 + len)
        }
        _ => {
            out.push('$');
            Ok(i + 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::sync::dockerfile::test_util::*;
    use crate::sync::dockerfile::DockerfileError;

    #[test]
    fn substitution_modifiers_and_quotes() {
        let dockerfile = concat!(
            "FROM x\n",
            "ENV SET=s EMPTY=\n",
            "COPY a ${UNSET:-/d1}/\n",
            "COPY a ${EMPTY:-/d2}/\n",
            "COPY a /d3${EMPTY-x}/\n",
            "COPY a /d4/${SET:+plus}/\n",
            "COPY a /d5/${UNSET:+never}\n",
            "COPY a '/d6/$SET'/\n",
            "COPY a \"/d7/$SET\"/\n",
            "COPY a /d8/\\$SET/\n",
        );
        let map = infer(dockerfile, &["a"]);
        assert_eq!(
            map,
            expect(&[(
                "a",
                &["/d1/a", "/d2/a", "/d3/a", "/d4/plus/a", "/d5/a", "/d6/$SET/a", "/d7/s/a", "/d8/$SET/a"]
            )])
        );
    }

    #[test]
    fn bad_substitution_names_the_line() {
        let err = infer_err("FROM x\nCOPY a ${OOPS\n", &["a"]);
        assert!(matches!(err, DockerfileError::BadSubstitution { line: 2, .. }), "{err:?}");
        let err = infer_err("FROM x\nCOPY a ${X:?must_be_set}\n", &["a"]);
        assert!(err.to_string().contains("X: must_be_set"), "{err}");
        let err = infer_err("FROM x\nCOPY a \"unterminated\n", &["a"]);
        assert!(matches!(err, DockerfileError::BadSubstitution { line: 2, .. }), "{err:?}");
    }
}
