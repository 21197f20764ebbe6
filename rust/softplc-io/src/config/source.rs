//! Places in the configuration text: byte offsets of the TOML parser's spans turned
//! into file, line and column, and errors that name them.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use softplc_core::ConfigError;

/// A place in the configuration file, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loc {
    /// File name as given.
    pub file: Arc<str>,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

impl Loc {
    /// An error at this place about `key` of `what`.
    pub fn error(&self, what: &str, key: &str, message: impl fmt::Display) -> ConfigError {
        ConfigError::new(format!("{self}: {what}: key `{key}`: {message}"))
    }
}

/// Maps byte offsets of the source to line and column.
pub(super) struct Source<'a> {
    pub file: Arc<str>,
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub fn new(file: &str, text: &'a str) -> Source<'a> {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source {
            file: Arc::from(file),
            text,
            line_starts,
        }
    }

    pub fn loc(&self, span: &Range<usize>) -> Loc {
        let off = span.start.min(self.text.len());
        let line = self.line_starts.partition_point(|s| *s <= off);
        let start = self.line_starts[line - 1];
        let col = self.text[start..off].chars().count() + 1;
        Loc {
            file: self.file.clone(),
            line,
            col,
        }
    }

    /// The text of `span`, if it is within the source.
    pub fn text(&self, span: &Range<usize>) -> Option<&'a str> {
        self.text.get(span.clone())
    }

    /// The key assigned on the line of `span`, if the line reads `key = ...`.
    pub fn key_at(&self, span: &Range<usize>) -> Option<String> {
        let loc = self.loc(span);
        let line = self.text.lines().nth(loc.line - 1)?;
        let (key, _) = line.split_once('=')?;
        let key = key.trim();
        let ok = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"'));
        ok.then(|| key.trim_matches('"').to_string())
    }
}
