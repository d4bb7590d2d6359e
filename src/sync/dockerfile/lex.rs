//! Dockerfile text → instructions, and an instruction's arguments → words.
//!
//! [`logical_lines`] is the line-level lexer: it reads the parser directives
//! at the top (`# escape=`, `# syntax=`, `# check=`), joins `\`
//! continuations (skipping comment and blank lines inside them, as BuildKit
//! does), drops comments, splits off the keyword (any case) and skips
//! heredoc bodies (`RUN <<EOF` … `EOF`) so their lines are never read as
//! instructions. Each [`LogicalLine`] remembers the line it starts on, which
//! every error names.
//!
//! The rest splits one instruction's arguments: leading `--flags`
//! ([`strip_flags`]), blank-separated words ([`split_blanks`]), the
//! JSON-array form ([`json_args`]) and `ENV`/`ARG` `name=value` pairs
//! ([`name_values`]). Quotes and variables are left in the words: the
//! [`super::expand`] module removes and expands them once the values of
//! the variables are known.

use super::error::DockerfileError;

/// One instruction, continuation lines joined.
#[derive(Debug)]
pub(super) struct LogicalLine {
    /// The line it starts on (1-based).
    pub(super) line: usize,
    /// The instruction keyword, upper case.
    pub(super) keyword: String,
    /// Everything after the keyword, trimmed.
    pub(super) args: String,
}

/// Splits Dockerfile text into instructions: parser directives, comments,
/// continuations and heredoc bodies handled. Returns the escape character.
pub(super) fn logical_lines(text: &str) -> Result<(Vec<LogicalLine>, char), DockerfileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let mut escape = '\\';
    let mut idx = 0;
    while idx < lines.len() {
        let Some((name, value)) = parse_directive(lines[idx]) else {
            break;
        };
        match name.to_ascii_lowercase().as_str() {
            "escape" => {
                escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(DockerfileError::InvalidInstruction {
                            line: idx + 1,
                            instruction: "# escape".to_owned(),
                            reason: format!("escape must be ` or \\, not `{value}`"),
                        })
                    }
                };
            }
            "syntax" | "check" => {}
            _ => break,
        }
        idx += 1;
    }

    let mut out = Vec::new();
    while idx < lines.len() {
        let start = idx + 1;
        let first = lines[idx];
        idx += 1;
        if is_blank_or_comment(first) {
            continue;
        }
        let (content, mut continued) = strip_continuation(first, escape);
        let mut buf = content.to_owned();
        while continued && idx < lines.len() {
            let next = lines[idx];
            idx += 1;
            if is_blank_or_comment(next) {
                continue;
            }
            let (content, more) = strip_continuation(next, escape);
            buf.push_str(content);
            continued = more;
        }
        let trimmed = buf.trim();
        if trimmed.is_empty() {
            continue;
        }
        let (keyword, args) = match trimmed.find(char::is_whitespace) {
            Some(i) => (&trimmed[..i], trimmed[i..].trim()),
            None => (trimmed, ""),
        };
        let keyword = keyword.to_ascii_uppercase();
        if matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") {
            for (delimiter, strip_tabs) in heredoc_delimiters(args) {
                loop {
                    let Some(body) = lines.get(idx) else {
                        return Err(DockerfileError::UnterminatedHeredoc { line: start, delimiter });
                    };
                    idx += 1;
                    let body = if strip_tabs { body.trim_start_matches('\t') } else { body };
                    if body.trim_end() == delimiter {
                        break;
                    }
                }
            }
        }
        out.push(LogicalLine { line: start, keyword, args: args.to_owned() });
    }
    Ok((out, escape))
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// `# name=value` at the top of the file.
fn parse_directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let name_len = rest
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_alphabetic() || (*i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let (name, rest) = rest.split_at(name_len);
    let value = rest.trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((name, value))
}

/// Removes a trailing escape character (continuation), ignoring trailing
/// blanks after it.
fn strip_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(content) => (content, true),
        None => (line, false),
    }
}

/// Heredoc openers (`<<EOF`, `<<-EOF`, `<<"EOF"`) among the arguments,
/// with whether leading tabs are stripped from the body.
fn heredoc_delimiters(args: &str) -> Vec<(String, bool)> {
    let rest = strip_flags(args).1;
    if rest.starts_with('[') {
        return Vec::new();
    }
    split_blanks(rest).into_iter().filter_map(heredoc_name).collect()
}

pub(super) fn heredoc_name(word: &str) -> Option<(String, bool)> {
    let rest = word.strip_prefix("<<")?;
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let name = rest.trim_matches(|c| c == '"' || c == '\'');
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    valid.then(|| (name.to_owned(), strip_tabs))
}

/// Splits leading `--flag[=value]` words off an argument string.
pub(super) fn strip_flags(args: &str) -> (Vec<(String, String)>, &str) {
    let mut flags = Vec::new();
    let mut rest = args.trim_start();
    while rest.starts_with("--") {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[2..end];
        if word.is_empty() {
            // A bare `--` ends the flags.
            rest = rest[end..].trim_start();
            break;
        }
        let (name, value) = word.split_once('=').unwrap_or((word, ""));
        flags.push((name.to_ascii_lowercase(), value.to_owned()));
        rest = rest[end..].trim_start();
    }
    (flags, rest)
}

/// Splits on blanks (BuildKit's whitespace-delimited form: quotes do not
/// group words).
pub(super) fn split_blanks(text: &str) -> Vec<&str> {
    text.split([' ', '\t', '\u{b}', '\u{c}', '\r']).filter(|w| !w.is_empty()).collect()
}

/// Splits on blanks outside quotes, keeping quotes and escapes in the words
/// (BuildKit's `parseWords`, used by `ENV` and `ARG`).
fn split_quoted_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                word.push(c);
            }
            Some(q) if c == q => {
                quote = None;
                word.push(c);
            }
            _ if c == escape && quote != Some('\'') => {
                word.push(c);
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            _ => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// The error for an instruction with too few arguments.
pub(super) fn missing(l: &LogicalLine, expected: usize, found: usize) -> DockerfileError {
    DockerfileError::MissingArguments { line: l.line, instruction: l.keyword.clone(), expected, found }
}

/// `ENV`/`ARG` arguments as (name, raw value). `ENV` also accepts the legacy
/// `ENV name value with spaces` form.
pub(super) fn name_values(
    l: &LogicalLine,
    escape: char,
    is_env: bool,
) -> Result<Vec<(String, Option<String>)>, DockerfileError> {
    let invalid =
        |reason: String| DockerfileError::InvalidInstruction { line: l.line, instruction: l.keyword.clone(), reason };
    let words = split_quoted_words(&l.args, escape);
    let Some(first) = words.first() else {
        return Err(missing(l, 1, 0));
    };
    if is_env && !first.contains('=') {
        // Legacy form: the rest of the line is the value.
        let rest = l.args.trim_start()[first.len()..].trim();
        if rest.is_empty() {
            return Err(invalid(format!("`{first}` has no value")));
        }
        return Ok(vec![(first.clone(), Some(rest.to_owned()))]);
    }
    let mut out = Vec::new();
    for word in words {
        let (name, value) = match word.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None if is_env => return Err(invalid(format!("can't find `=` in `{word}`; use name=value"))),
            None => (word, None),
        };
        if name.is_empty() {
            return Err(invalid("a variable name is empty".to_owned()));
        }
        out.push((name, value));
    }
    Ok(out)
}

/// The arguments of a JSON-array form (`COPY ["a", "b/"]`).
pub(super) fn json_args(l: &LogicalLine, text: &str) -> Result<Vec<String>, DockerfileError> {
    let text = text.trim_end();
    if !text.contains(']') {
        return Err(DockerfileError::UnterminatedJsonArray {
            line: l.line,
            instruction: l.keyword.clone(),
            text: text.to_owned(),
        });
    }
    if !text.ends_with(']') {
        // Docker reads `[abc]*.txt dst/` as shell form with a wildcard.
        return Ok(split_blanks(text).into_iter().map(str::to_owned).collect());
    }
    let invalid = |reason: String| DockerfileError::InvalidJsonArray {
        line: l.line,
        instruction: l.keyword.clone(),
        text: text.to_owned(),
        reason,
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let items = value.as_array().ok_or_else(|| invalid("not an array".to_owned()))?;
    items
        .iter()
        .map(|item| {
            item.as_str().map(str::to_owned).ok_or_else(|| invalid("every element must be a string".to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::sync::dockerfile::test_util::*;
    use crate::sync::dockerfile::DockerfileError;

    #[test]
    fn parsing_continuations_comments_and_case() {
        let dockerfile = "# syntax=docker/dockerfile:1\n\
            from alpine\n\
            # a comment\n\
            copy a \\\n\
            # comment inside a continuation\n\
            \n\
                b \\   \n\
                /dst/\n\
            Copy [\"c\", \\\n\
            \"/json/\"]\r\n";
        let map = infer(dockerfile, &["a", "b", "c"]);
        assert_eq!(map, expect(&[("a", &["/dst/a"]), ("b", &["/dst/b"]), ("c", &["/json/c"])]));
    }

    #[test]
    fn escape_directive_changes_continuation_character() {
        let dockerfile = "# escape=`\nFROM x\nCOPY a `\n  /dst/\n";
        assert_eq!(infer(dockerfile, &["a"]), expect(&[("a", &["/dst/a"])]));
    }

    #[test]
    fn heredocs_are_skipped() {
        let dockerfile =
            "FROM x\nRUN <<EOF\nCOPY notme /bad/\nEOF\nCOPY <<-CONF a /etc/\n\tCOPY b /bad/\n\tCONF\nCOPY b /ok/\n";
        let map = infer(dockerfile, &["a", "b", "notme"]);
        assert_eq!(map, expect(&[("a", &["/etc/a"]), ("b", &["/ok/b"])]));
        let err = infer_err("FROM x\nRUN <<EOF\necho\n", &[]);
        assert!(matches!(err, DockerfileError::UnterminatedHeredoc { line: 2, .. }), "{err:?}");
    }

    #[test]
    fn json_errors_name_the_line() {
        let err = infer_err("FROM x\nCOPY [\"a\", \\\n  \"b/\"\n", &["a"]);
        assert_eq!(
            err,
            DockerfileError::UnterminatedJsonArray {
                line: 2,
                instruction: "COPY".into(),
                text: "[\"a\",   \"b/\"".into()
            }
        );
        let err = infer_err("FROM x\nADD ['a', 'b/']\n", &["a"]);
        assert!(matches!(err, DockerfileError::InvalidJsonArray { line: 2, .. }), "{err:?}");
        let err = infer_err("FROM x\nADD [\"a\", 1]\n", &["a"]);
        assert!(matches!(err, DockerfileError::InvalidJsonArray { line: 2, .. }), "{err:?}");
        // A leading character class is a wildcard, not JSON.
        assert_eq!(infer("FROM x\nCOPY [ab]*.txt /t/\n", &["a1.txt", "c.txt"]), expect(&[("a1.txt", &["/t/a1.txt"])]));
    }
}
