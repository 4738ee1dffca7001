//! Topology errors: each names the JSON path, the node (when there is one) and what is wrong.

use std::cell::RefCell;
use std::fmt;

/// What class of problem a [`TopologyError`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The document is not valid JSON; line and column are 1-based.
    Json {
        /// Line of the syntax error.
        line: usize,
        /// Column of the syntax error.
        column: usize,
    },
    /// The document is JSON but not a valid topology (or parameter set).
    Invalid,
    /// A node type (or sub-type) that AVA defines and this runtime does not run yet.
    NotSupported,
}

/// One problem found in a topology or live-pipeline document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopologyError {
    /// The class of problem.
    pub kind: ErrorKind,
    /// JSON path of the offending value, e.g. `$.properties.processors[1].minimumActivationTime`.
    pub path: String,
    /// Name of the node the value belongs to, when it belongs to one.
    pub node: Option<String>,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let ErrorKind::Json { line, column } = self.kind {
            return write!(
                f,
                "line {line}, column {column}: invalid JSON: {}",
                self.message
            );
        }
        write!(f, "{}", self.path)?;
        if let Some(node) = &self.node {
            write!(f, " (node '{node}')")?;
        }
        if self.kind == ErrorKind::NotSupported {
            write!(f, ": not supported: {}", self.message)
        } else {
            write!(f, ": {}", self.message)
        }
    }
}

impl std::error::Error for TopologyError {}

/// All the errors found in one document, in the order they were found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopologyErrors(pub Vec<TopologyError>);

impl TopologyErrors {
    /// True when every error is a `not supported` one.
    pub fn only_not_supported(&self) -> bool {
        self.0.iter().all(|e| e.kind == ErrorKind::NotSupported)
    }
}

impl fmt::Display for TopologyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TopologyErrors {}

/// Collects errors while a document is walked, so that every problem is reported at once.
#[derive(Debug, Default)]
pub struct ErrorSink {
    errors: RefCell<Vec<TopologyError>>,
}

impl ErrorSink {
    /// Records an `Invalid` error.
    pub fn invalid(&self, path: &str, node: Option<&str>, message: impl Into<String>) {
        self.push(ErrorKind::Invalid, path, node, message.into());
    }

    /// Records a `NotSupported` error.
    pub fn not_supported(&self, path: &str, node: Option<&str>, message: impl Into<String>) {
        self.push(ErrorKind::NotSupported, path, node, message.into());
    }

    fn push(&self, kind: ErrorKind, path: &str, node: Option<&str>, message: String) {
        self.errors.borrow_mut().push(TopologyError {
            kind,
            path: path.to_string(),
            node: node.map(str::to_string),
            message,
        });
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.errors.borrow().is_empty()
    }

    /// Takes the collected errors.
    /// Takes the errors recorded so far, leaving none.
    pub fn take(&self) -> TopologyErrors {
        TopologyErrors(self.errors.take())
    }

    /// The errors recorded.
    pub fn into_errors(self) -> TopologyErrors {
        TopologyErrors(self.errors.into_inner())
    }
}

/// `message` without secrets: every occurrence of a `secrets` value (of 3 characters or more)
/// and the password of any `scheme://user:password@` becomes `***`.
pub fn scrub(message: &str, secrets: &[&str]) -> String {
    let mut out = message.to_string();
    for secret in secrets.iter().filter(|s| s.chars().count() >= 3) {
        out = out.replace(secret, "***");
    }
    let mut scrubbed = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        scrubbed.push_str(head);
        let authority_end = tail.find(['/', ' ', '\'', '"']).unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match authority
            .rfind('@')
            .and_then(|a| authority[..a].find(':').map(|c| (c, a)))
        {
            Some((colon, at_sign)) => {
                scrubbed.push_str(&authority[..=colon]);
                scrubbed.push_str("***");
                scrubbed.push_str(&authority[at_sign..]);
            }
            None => scrubbed.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    scrubbed.push_str(rest);
    scrubbed
}

/// Turns a `serde_json` syntax error into a `Json` topology error with line and column.
pub fn json_error(err: &serde_json::Error) -> TopologyError {
    let text = err.to_string();
    // serde_json appends " at line L column C"; keep only the description.
    let message = match text.find(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    TopologyError {
        kind: ErrorKind::Json {
            line: err.line(),
            column: err.column(),
        },
        path: "$".to_string(),
        node: None,
        message,
    }
}

#[cfg(test)]
mod scrub_tests {
    #[test]
    fn secrets_and_url_passwords_are_masked() {
        assert_eq!(
            super::scrub("'http://admin:hunter2@10.0.0.1/x' is bad", &[]),
            "'http://admin:***@10.0.0.1/x' is bad"
        );
        assert_eq!(
            super::scrub("'s3cr3t' is not a duration", &["s3cr3t"]),
            "'***' is not a duration"
        );
        assert_eq!(
            super::scrub("rtsp://host/x and a:b", &["ab"]),
            "rtsp://host/x and a:b"
        );
    }
}
