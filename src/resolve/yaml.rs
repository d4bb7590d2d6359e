//! Multi-document YAML with line numbers: split a file into documents (so
//! errors can name the line in the file, and untouched documents can be
//! written back byte for byte), parse each with serde_yaml_ng.

use std::collections::HashMap;

use serde_yaml_ng::Value;

/// One document of a YAML stream.
#[derive(Clone, Debug)]
pub struct Document {
    /// 1-based line in the file where the document's text starts.
    pub start_line: usize,
    /// The document's text, without its `---` separator line.
    pub text: String,
    /// The parsed value; `None` for a document with no content (only comments).
    pub value: Option<Value>,
}

/// Whether a line starts a new document (`---`, `--- # c`, `--- !tag`).
fn is_separator(line: &str) -> bool {
    line.strip_prefix("---").is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r']))
}

/// Splits a YAML stream into documents. A `---` at column 0 is always a
/// document marker in YAML (block content is indented), so this needs no parser.
pub fn split(text: &str) -> Vec<Document> {
    let mut docs = Vec::new();
    let mut cur = String::new();
    let mut start = 1;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        if is_separator(bare) {
            docs.push(Document { start_line: start, text: std::mem::take(&mut cur), value: None });
            start = i + 1;
            let rest = bare[3..].trim();
            if !rest.is_empty() && !rest.starts_with('#') {
                cur.push_str(rest);
                cur.push('\n');
            } else {
                start = i + 2;
            }
        } else if bare == "..." {
            docs.push(Document { start_line: start, text: std::mem::take(&mut cur), value: None });
            start = i + 2;
        } else {
            cur.push_str(line);
        }
    }
    docs.push(Document { start_line: start, text: cur, value: None });
    docs.retain(|d| !d.text.trim().is_empty());
    docs
}

impl Document {
    /// Parses the text; on error returns (line in file, column, message).
    pub fn parse(&mut self) -> Result<(), (usize, usize, String)> {
        let value: Value = serde_yaml_ng::from_str(&self.text).map_err(|e| {
            let (line, col) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            let message = e.to_string();
            // Strip serde_yaml_ng's own " at line X column Y" (relative to the document).
            let message = message.split(" at line ").next().unwrap_or(&message).to_string();
            (self.start_line + line.saturating_sub(1), col, message)
        })?;
        self.value = (!value.is_null()).then_some(value);
        Ok(())
    }

    /// The line in the file of the first occurrence of `needle` (the
    /// document's start when not found textually).
    pub fn line_of(&self, needle: &str) -> usize {
        self.text.lines().position(|l| l.contains(needle)).map_or(self.start_line, |i| self.start_line + i)
    }
}

/// Replaces whole-scalar occurrences of each key in `text`, keeping comments
/// and layout. Returns `None` unless the result parses to exactly `expected`.
pub fn replace_in_text(text: &str, map: &HashMap<String, String>, expected: &Value) -> Option<String> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
    let mut out = text.to_string();
    for k in keys {
        let mut result = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(pos) = rest.find(k.as_str()) {
            let before = rest[..pos].chars().next_back();
            let after = rest[pos + k.len()..].chars().next();
            let bounded_before = before.is_none_or(|c| c.is_whitespace() || "\"'[{,:-".contains(c));
            let bounded_after = after.is_none_or(|c| c.is_whitespace() || "\"',]}#".contains(c));
            result.push_str(&rest[..pos]);
            if bounded_before && bounded_after {
                result.push_str(&map[k]);
            } else {
                result.push_str(k);
            }
            rest = &rest[pos + k.len()..];
        }
        result.push_str(rest);
        out = result;
    }
    let parsed: Value = serde_yaml_ng::from_str(&out).ok()?;
    (parsed == *expected).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_documents_with_lines() {
        let text = "# head\na: 1\n---\nb: 2\n--- # c\nc: 3\n---\n---\n";
        let docs = split(text);
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].start_line, 1);
        assert_eq!(docs[1].start_line, 4);
        assert_eq!(docs[1].text, "b: 2\n");
        assert_eq!(docs[2].start_line, 6);
    }

    #[test]
    fn parse_error_reports_file_line() {
        let text = "a: 1\n---\nb: 2\nc: [\n";
        let mut docs = split(text);
        let (line, _, msg) = docs[1].parse().unwrap_err();
        assert!(line >= 4, "line {line}: {msg}");
    }

    #[test]
    fn text_replacement_keeps_comments() {
        let text = "# keep me\nimage: ko://example.com/app # trailing\nother: ko://example.com/app2\n";
        let map: HashMap<String, String> = [
            ("ko://example.com/app".to_string(), "r/app@sha256:1".to_string()),
            ("ko://example.com/app2".to_string(), "r/app2@sha256:2".to_string()),
        ]
        .into();
        let mut v: Value = serde_yaml_ng::from_str(text).unwrap();
        super::super::replace_refs(&mut v, &map);
        let out = replace_in_text(text, &map, &v).unwrap();
        assert_eq!(out, "# keep me\nimage: r/app@sha256:1 # trailing\nother: r/app2@sha256:2\n");
    }

    #[test]
    fn text_replacement_refuses_partial_matches() {
        let text = "a: \"x ko://example.com/app\"\nb: ko://example.com/app\n";
        let map: HashMap<String, String> = [("ko://example.com/app".to_string(), "R".to_string())].into();
        let mut v: Value = serde_yaml_ng::from_str(text).unwrap();
        super::super::replace_refs(&mut v, &map);
        // The text edit would also touch the embedded one, so it must not be used.
        assert!(replace_in_text(text, &map, &v).is_none());
    }
}
