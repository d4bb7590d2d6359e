//! [`DockerfileError`]: every way a Dockerfile, its `.dockerignore` or the
//! list of context files can fail to give a sync map.
//!
//! One enum for the whole `dockerfile` module, so that [`super::sync_map`]
//! has one error type; each variant names the line (Dockerfile or
//! `.dockerignore`, 1-based) and the text at fault, so the message alone
//! tells the user what to fix.

/// Why a Dockerfile (or its `.dockerignore`, or the context list) could not
/// be turned into a sync map. Dockerfile errors name the line on which the
/// instruction starts (1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DockerfileError {
    /// A JSON-form argument list has no closing `]`.
    #[error("Dockerfile line {line}: {instruction} has an unterminated JSON array: `{text}`")]
    UnterminatedJsonArray {
        /// Line of the instruction.
        line: usize,
        /// The instruction keyword, upper case.
        instruction: String,
        /// The argument text.
        text: String,
    },
    /// A JSON-form argument list is not a JSON array of strings.
    #[error("Dockerfile line {line}: {instruction} has an invalid JSON array ({reason}): `{text}`")]
    InvalidJsonArray {
        /// Line of the instruction.
        line: usize,
        /// The instruction keyword, upper case.
        instruction: String,
        /// The argument text.
        text: String,
        /// What the JSON parser said.
        reason: String,
    },
    /// An instruction has fewer arguments than it needs.
    #[error("Dockerfile line {line}: {instruction} needs at least {expected} argument(s), found {found}")]
    MissingArguments {
        /// Line of the instruction.
        line: usize,
        /// The instruction keyword, upper case.
        instruction: String,
        /// How many arguments are needed.
        expected: usize,
        /// How many were given.
        found: usize,
    },
    /// A word could not be expanded (unterminated quote or `${`, `${X:?}`
    /// with `X` unset, an unsupported `${…}` form).
    #[error("Dockerfile line {line}: cannot expand `{word}`: {reason}")]
    BadSubstitution {
        /// Line of the instruction.
        line: usize,
        /// The word as written.
        word: String,
        /// What is wrong.
        reason: String,
    },
    /// A `COPY`/`ADD` source without wildcards is not in the context.
    #[error(
        "Dockerfile line {line}: {instruction} source `{path}` is not in the build context \
         (missing, or excluded by .dockerignore)"
    )]
    SourceNotFound {
        /// Line of the instruction.
        line: usize,
        /// The instruction keyword, upper case.
        instruction: String,
        /// The source after variable expansion.
        path: String,
    },
    /// A `COPY`/`ADD` wildcard source is malformed.
    #[error("Dockerfile line {line}: {instruction} source pattern `{pattern}` is invalid: {reason}")]
    BadSourcePattern {
        /// Line of the instruction.
        line: usize,
        /// The instruction keyword, upper case.
        instruction: String,
        /// The pattern after variable expansion.
        pattern: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An instruction is malformed in some other way.
    #[error("Dockerfile line {line}: {instruction}: {reason}")]
    InvalidInstruction {
        /// Line of the instruction.
        line: usize,
        /// The instruction keyword (upper case) or directive.
        instruction: String,
        /// What is wrong.
        reason: String,
    },
    /// A heredoc (`<<EOF`) is never closed.
    #[error("Dockerfile line {line}: heredoc `<<{delimiter}` is never closed")]
    UnterminatedHeredoc {
        /// Line of the instruction that opens the heredoc.
        line: usize,
        /// The closing word that was expected.
        delimiter: String,
    },
    /// The Dockerfile has no `FROM`, so it builds no image.
    #[error("Dockerfile has no FROM instruction")]
    NoFromInstruction,
    /// A `.dockerignore` line is not a valid pattern.
    #[error(".dockerignore line {line}: pattern `{pattern}` is invalid: {reason}")]
    BadIgnorePattern {
        /// Line in the `.dockerignore` (1-based).
        line: usize,
        /// The pattern as written.
        pattern: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An entry of the context file list is not a clean relative path.
    #[error("context file `{path}` is not a clean relative path: {reason}")]
    InvalidContextPath {
        /// The entry as given.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
}
