//! The config file: read, and each top-level key checked alone by the schema's own deserializer, so an error
//! names the file, the line and the key.

use std::path::Path;

use toml::{Table, Value};

use super::{AgentSettings, protocol};
use crate::BadInput;

/// The config file, read and checked: the agent's settings and the protocol's knobs it gives.
#[derive(Debug, Default)]
pub struct FileConfig {
    pub settings: Table,
    pub protocol: Table,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, BadInput> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BadInput(format!("cannot read config file {}: {e}", path.display())))?;
        let invalid = |line: Option<usize>, message: &str| {
            let message = message.trim_end().replace('\n', " ");
            match line {
                Some(line) => BadInput(format!(
                    "invalid config file {}, line {line}: {message}",
                    path.display()
                )),
                None => BadInput(format!("invalid config file {}: {message}", path.display())),
            }
        };
        let table: Table = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|span| line_at(&text, span.start));
            invalid(line, e.message())
        })?;
        let mut file = FileConfig::default();
        for (key, value) in table {
            let checked = if protocol::is_knob(&key) {
                protocol::check(&key, &value)
            } else {
                check_setting(&key, &value)
            };
            if let Err(problem) = checked {
                return Err(invalid(
                    line_of_key(&text, &key),
                    &format!("{key}: {problem}"),
                ));
            }
            let part = if protocol::is_knob(&key) {
                &mut file.protocol
            } else {
                &mut file.settings
            };
            // `[tag]` and `[meta]` (the name before tags) are `[tags]` by other names.
            let key = match key.as_str() {
                "tag" | "meta" => "tags".to_owned(),
                _ => key,
            };
            part.insert(key, value);
        }
        Ok(file)
    }
}

/// Checks one of the agent's settings alone, by the schema's deserializer.
fn check_setting(key: &str, value: &Value) -> Result<(), String> {
    let mut one = Table::new();
    one.insert(key.to_owned(), value.clone());
    Value::Table(one)
        .try_into::<AgentSettings>()
        .map(drop)
        .map_err(|e| {
            let message = e.message().trim_end().replace('\n', " ");
            if message.starts_with("unknown field") {
                format!("unknown key; `roster agent --help` lists every setting ({message})")
            } else {
                message
            }
        })
}

/// The 1-based line of byte `offset` in `text`.
fn line_at(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// The line where the top-level `key` is set (`key = ...` before the first table, or `[key]`).
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let mut in_table = false;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            if line.trim_matches(|c| c == '[' || c == ']').trim() == key {
                return Some(n + 1);
            }
            in_table = true;
        } else if !in_table
            && line
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return Some(n + 1);
        }
    }
    None
}
