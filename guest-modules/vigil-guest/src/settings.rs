//! A node's configuration with typed access. Names are matched case-insensitively (AVA's
//! property names are camelCase, users write them as they like); a value given as text (every
//! `${parameter}` is text) is read as a number or a flag when one is asked for.

use crate::types::{Config, Value};

/// The node's `configuration` properties.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    entries: Config,
}

impl Settings {
    /// Wraps the configuration the host passed.
    pub fn new(entries: Config) -> Self {
        Self { entries }
    }

    /// Settings from text pairs, as a topology's `${parameters}` give them (for unit tests).
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Self {
        Self::new(
            pairs
                .iter()
                .map(|(k, v)| (k.as_ref().to_string(), Value::Text(v.as_ref().to_string())))
                .collect(),
        )
    }

    /// Every entry, in the topology's order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Every entry as text: text as it is, numbers and flags as written, arrays and objects as
    /// JSON.
    pub fn texts(&self) -> impl Iterator<Item = (&str, String)> {
        self.entries().map(|(k, v)| (k, text_of(v)))
    }

    /// Every entry as an owned text pair (see [`Settings::texts`]).
    pub fn text_pairs(&self) -> Vec<(String, String)> {
        self.texts().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// The value named `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The value named `name` as text (see [`Settings::texts`]), trimmed.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| text_of(v).trim().to_string())
    }

    /// The text named `name`, or `default`.
    pub fn text_or(&self, name: &str, default: &str) -> String {
        self.text(name).unwrap_or_else(|| default.to_string())
    }

    /// The number named `name`: a number, or text that reads as one.
    pub fn number(&self, name: &str) -> Result<Option<f64>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(Some(*n)),
            Some(Value::Text(t)) => t
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(Some)
                .ok_or_else(|| format!("{name} must be a number, not {t:?}")),
            Some(other) => Err(format!("{name} must be a number, not {}", text_of(other))),
        }
    }

    /// The number named `name`, or `default`.
    pub fn number_or(&self, name: &str, default: f64) -> Result<f64, String> {
        Ok(self.number(name)?.unwrap_or(default))
    }

    /// The flag named `name`: a boolean, or the text `true` / `false` (any case).
    pub fn flag(&self, name: &str) -> Result<Option<bool>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Flag(b)) => Ok(Some(*b)),
            Some(Value::Text(t)) if t.trim().eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::Text(t)) if t.trim().eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(other) => Err(format!(
                "{name} must be true or false, not {}",
                text_of(other)
            )),
        }
    }

    /// The flag named `name`, or `default`.
    pub fn flag_or(&self, name: &str, default: bool) -> Result<bool, String> {
        Ok(self.flag(name)?.unwrap_or(default))
    }

    /// The comma-separated list named `name` (an array's items, or text split at commas), each
    /// item trimmed, empty ones left out.
    pub fn list(&self, name: &str) -> Vec<String> {
        match self.get(name) {
            None => Vec::new(),
            Some(Value::Json(j)) if j.trim_start().starts_with('[') => j
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .split(',')
                .map(|s| s.trim().trim_matches('"').to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            Some(v) => text_of(v)
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        }
    }
}

/// A value as text.
fn text_of(v: &Value) -> String {
    match v {
        Value::Text(s) | Value::Json(s) => s.clone(),
        Value::Flag(b) => b.to_string(),
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
        Value::Number(n) => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_and_text_read_alike() {
        let s = Settings::new(vec![
            ("minimumConfidence".into(), Value::Number(0.5)),
            ("count".into(), Value::Number(3.0)),
            ("Enabled".into(), Value::Text(" TRUE ".into())),
            ("labels".into(), Value::Text("truck, car,".into())),
            ("zones".into(), Value::Json(r#"["a", "b"]"#.into())),
            ("width".into(), Value::Text("320".into())),
        ]);
        assert_eq!(s.number("MINIMUMCONFIDENCE"), Ok(Some(0.5)));
        assert_eq!(s.number("width"), Ok(Some(320.0)));
        assert_eq!(s.text("count").as_deref(), Some("3"));
        assert_eq!(s.flag("enabled"), Ok(Some(true)));
        assert_eq!(s.flag_or("missing", false), Ok(false));
        assert_eq!(s.list("labels"), ["truck", "car"]);
        assert_eq!(s.list("zones"), ["a", "b"]);
        assert_eq!(
            s.number("labels"),
            Err("labels must be a number, not \"truck, car,\"".into())
        );
        assert!(s.flag("count").is_err());
    }
}
