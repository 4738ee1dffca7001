//! Reading a JSON object's properties the way AVA did: names matched case-insensitively, numbers
//! and booleans accepted as strings (parameters make them strings), every problem recorded with
//! its JSON path and node, and unknown properties reported instead of silently ignored.

use std::cell::RefCell;
use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::duration::parse_iso8601_duration;
use super::error::ErrorSink;
use crate::media::time::MediaDuration;

/// Starts every marker substitution leaves in a string. It is a private-use character that no
/// topology or value may hold ([`RESERVED`] is refused on input), so a value that itself
/// contains `${` stays a plain value.
pub const RESERVED: char = '\u{E000}';

/// The marker left in strings for variables resolved per clip (`${System.Runtime.DateTime}`
/// becomes `MARK` `DateTime}`).
pub const DEFERRED_VARIABLE_MARK: &str = "\u{E000}System.Runtime.";

/// The marker left for a declared parameter that has no value yet (a topology template):
/// `MARK` `name}`.
pub const UNBOUND_MARK: &str = "\u{E000}unbound:";

/// What substitution leaves of a string whose references could not be resolved (reported
/// where it happened; later checks skip it).
pub const FAILED_MARK: &str = "\u{E000}failed}";

/// `text` as people write it: markers shown as the `${…}` they stand for.
pub fn as_written(text: &str) -> String {
    text.replace(UNBOUND_MARK, "${")
        .replace(DEFERRED_VARIABLE_MARK, "${System.Runtime.")
}

/// A cursor over one JSON object of a topology.
pub struct Props<'a> {
    map: &'a Map<String, Value>,
    path: String,
    node: Option<&'a str>,
    errors: &'a ErrorSink,
    used: RefCell<BTreeSet<String>>,
}

impl<'a> Props<'a> {
    /// Wraps `map`, found at `path`, belonging to `node`.
    pub fn new(
        map: &'a Map<String, Value>,
        path: String,
        node: Option<&'a str>,
        errors: &'a ErrorSink,
    ) -> Self {
        Self {
            map,
            path,
            node,
            errors,
            used: RefCell::new(BTreeSet::new()),
        }
    }

    /// JSON path of this object.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// JSON path of property `name` of this object.
    pub fn child_path(&self, name: &str) -> String {
        format!("{}.{}", self.path, name)
    }

    /// The node this object belongs to.
    pub fn node(&self) -> Option<&'a str> {
        self.node
    }

    /// The shared error collector.
    pub fn errors(&self) -> &'a ErrorSink {
        self.errors
    }

    /// Records an `Invalid` error at property `name`.
    pub fn error(&self, name: &str, message: impl Into<String>) {
        self.errors
            .invalid(&self.child_path(name), self.node, message);
    }

    /// Records an `Invalid` error at this object.
    pub fn error_here(&self, message: impl Into<String>) {
        self.errors.invalid(&self.path, self.node, message);
    }

    /// The raw value of property `name` (matched case-insensitively), marking it as used.
    pub fn raw(&self, name: &str) -> Option<&'a Value> {
        let (key, value) = self
            .map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))?;
        self.used.borrow_mut().insert(key.clone());
        match value {
            Value::Null => None,
            v => Some(v),
        }
    }

    /// Marks properties as known without reading them (documented but unused by this runtime).
    pub fn ignore(&self, names: &[&str]) {
        for name in names {
            let _ = self.raw(name);
        }
    }

    /// A string property. Numbers and booleans are given back as their text.
    pub fn string(&self, name: &str) -> Option<String> {
        let text = match self.raw(name)? {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                self.error(name, format!("expected a string, found {}", kind_of(other)));
                return None;
            }
        };
        if text.contains(DEFERRED_VARIABLE_MARK) {
            self.error(
                name,
                "System.Runtime.* variables are only allowed in a FileSink's fileNamePattern",
            );
            return None;
        }
        if text.contains(RESERVED) {
            // A parameter without a value, or a reference that failed: reported once already.
            return None;
        }
        Some(text)
    }

    /// A string property that may hold per-clip variables such as `${System.Runtime.DateTime}`.
    pub fn string_with_runtime_variables(&self, name: &str) -> Option<String> {
        match self.raw(name)? {
            Value::String(s) if s.contains(FAILED_MARK) => None,
            Value::String(s) => Some(s.clone()),
            other => {
                self.error(name, format!("expected a string, found {}", kind_of(other)));
                None
            }
        }
    }

    /// A required string property; records an error when missing or empty.
    pub fn required_string(&self, name: &str) -> Option<String> {
        if self.raw(name).is_none() {
            self.error(name, format!("required property '{name}' is missing"));
            return None;
        }
        let value = self.string(name)?;
        if value.trim().is_empty() {
            self.error(name, format!("required property '{name}' is empty"));
            return None;
        }
        Some(value)
    }

    /// An enum property matched case-insensitively; returns the canonical spelling from `allowed`.
    pub fn enumeration(&self, name: &str, allowed: &[&'static str]) -> Option<&'static str> {
        let value = self.string(name)?;
        match allowed
            .iter()
            .find(|a| a.eq_ignore_ascii_case(value.trim()))
        {
            Some(a) => Some(a),
            None => {
                self.error(
                    name,
                    format!("'{value}' is not one of: {}", allowed.join(", ")),
                );
                None
            }
        }
    }

    /// A boolean property: JSON `true`/`false` or the strings "true"/"false" in any case.
    pub fn boolean(&self, name: &str) -> Option<bool> {
        match self.raw(name)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Some(false),
            other => {
                self.error(
                    name,
                    format!("expected true or false, found {}", describe(other)),
                );
                None
            }
        }
    }

    /// A number property (JSON number or numeric string) that must lie in `min..=max`.
    pub fn number(&self, name: &str, min: f64, max: f64) -> Option<f64> {
        let value = match self.raw(name)? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        let Some(value) = value.filter(|v| v.is_finite()) else {
            let found = self.raw(name).map(describe).unwrap_or_default();
            self.error(name, format!("expected a number, found {found}"));
            return None;
        };
        if value < min || value > max {
            self.error(
                name,
                format!("{value} is out of range (allowed {min} to {max})"),
            );
            return None;
        }
        Some(value)
    }

    /// A whole-number property in `min..=max`.
    pub fn integer(&self, name: &str, min: i64, max: i64) -> Option<i64> {
        let value = self.number(name, min as f64, max as f64)?;
        if value.fract() != 0.0 {
            self.error(name, format!("expected a whole number, found {value}"));
            return None;
        }
        Some(value as i64)
    }

    /// An ISO 8601 duration property.
    pub fn duration(&self, name: &str) -> Option<MediaDuration> {
        let text = self.string(name)?;
        match parse_iso8601_duration(&text) {
            Ok(d) => Some(d),
            Err(why) => {
                self.error(name, why);
                None
            }
        }
    }

    /// A nested object property, as a new cursor.
    pub fn object(&self, name: &str) -> Option<Props<'a>> {
        match self.raw(name)? {
            Value::Object(map) => Some(Props::new(
                map,
                self.child_path(name),
                self.node,
                self.errors,
            )),
            other => {
                self.error(
                    name,
                    format!("expected an object, found {}", kind_of(other)),
                );
                None
            }
        }
    }

    /// A required nested object property.
    pub fn required_object(&self, name: &str) -> Option<Props<'a>> {
        if self.raw(name).is_none() {
            self.error(name, format!("required property '{name}' is missing"));
            return None;
        }
        self.object(name)
    }

    /// An array property (missing = empty), each element with its JSON path.
    pub fn array(&self, name: &str) -> Vec<(String, &'a Value)> {
        match self.raw(name) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{}.{}[{}]", self.path, name, i), v))
                .collect(),
            Some(other) => {
                self.error(name, format!("expected an array, found {}", kind_of(other)));
                Vec::new()
            }
        }
    }

    /// Reports every property that no reader asked for, so typos are not silently ignored.
    pub fn report_unknown(&self) {
        let used = self.used.borrow();
        let unknown: Vec<&String> = self.map.keys().filter(|k| !used.contains(*k)).collect();
        for key in unknown {
            self.error(key, format!("unknown property '{key}'"));
        }
    }
}

/// The JSON kind of a value, for messages.
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("'{s}'"),
        other => kind_of(other).to_string(),
    }
}
