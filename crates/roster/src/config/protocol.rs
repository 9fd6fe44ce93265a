//! The protocol's knobs as flags: one `--KNOB` and one `ROSTER_KNOB` for every field of `roster_core::Config`,
//! made at run time from the core's own schema, so the struct is the only list of them and its doc comments are
//! the only help they have. A knob added to the core is settable here without a change.
//!
//! Values are checked as they are read, by the core's own deserializer (a duration needs a unit, `500` alone
//! is refused), so a bad one is a clap error naming the flag; whether the knobs together can meet their
//! deadlines is the core's check, made once when the agent starts.

use std::sync::OnceLock;

use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};
use roster_core::Config;
use toml::{Table, Value};

/// The protocol knobs given by flag or variable, as TOML values keyed like the config file.
#[derive(Clone, Debug, Default)]
pub struct ProtocolArgs {
    pub values: Table,
}

/// One knob of `Config`.
#[derive(Debug)]
pub struct Knob {
    /// The config file's key, and the field's name.
    pub key: String,
    help: String,
    value_name: String,
}

impl Knob {
    fn id(&self) -> String {
        format!("protocol.{}", self.key)
    }

    fn arg(&self) -> Arg {
        let key = self.key.clone();
        Arg::new(self.id())
            .long(self.key.replace('_', "-"))
            .env(format!("ROSTER_{}", self.key.to_ascii_uppercase()))
            .value_name(self.value_name.clone())
            .help(self.help.clone())
            .value_parser(move |text: &str| knob_value(&key, text))
    }
}

/// Every knob of `Config`, in the struct's order, with its doc comment and its default.
pub fn knobs() -> &'static [Knob] {
    static KNOBS: OnceLock<Vec<Knob>> = OnceLock::new();
    KNOBS.get_or_init(|| {
        let schema = schemars::schema_for!(Config);
        let properties = schema
            .get("properties")
            .and_then(|p| p.as_object())
            .expect("the schema of a struct lists its fields");
        defaults()
            .iter()
            .map(|(key, default)| {
                let doc = properties
                    .get(key)
                    .and_then(|p| p.get("description"))
                    .and_then(|d| d.as_str())
                    .unwrap_or_default();
                Knob {
                    key: key.clone(),
                    help: format!(
                        "{} [default: {}]",
                        doc.split_whitespace().collect::<Vec<_>>().join(" "),
                        shown(default)
                    ),
                    value_name: match default {
                        Value::Integer(_) => "N".to_owned(),
                        Value::Boolean(_) => "BOOL".to_owned(),
                        Value::String(s) if humantime::parse_duration(s).is_ok() => {
                            "TIME".to_owned()
                        }
                        _ => choices(&schema, key).unwrap_or_else(|| "VALUE".to_owned()),
                    },
                }
            })
            .collect()
    })
}

/// The names an enum-valued knob takes (`ring|shuffled`), from the schema of its type.
fn choices(schema: &schemars::Schema, key: &str) -> Option<String> {
    let reference = schema.get("properties")?.get(key)?.get("$ref")?.as_str()?;
    let name = reference.rsplit('/').next()?;
    let def = schema.get("$defs")?.get(name)?;
    // Variants without docs are listed as an `enum`; with docs, as `oneOf` constants.
    let names: Vec<&str> = match def.get("enum") {
        Some(values) => values
            .as_array()?
            .iter()
            .filter_map(|v| v.as_str())
            .collect(),
        None => def
            .get("oneOf")?
            .as_array()?
            .iter()
            .filter_map(|v| v.get("const")?.as_str())
            .collect(),
    };
    (!names.is_empty()).then(|| names.join("|"))
}

/// `Config::default()` as the config file writes it.
pub fn defaults() -> &'static Table {
    static DEFAULTS: OnceLock<Table> = OnceLock::new();
    DEFAULTS.get_or_init(|| {
        Table::try_from(Config::default()).expect("the core's Config serializes as a table")
    })
}

/// Whether `key` names a protocol knob.
pub fn is_knob(key: &str) -> bool {
    defaults().contains_key(key)
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `text` given for `key` on the command line or in the environment, as the TOML value the file would hold,
/// checked by the core's deserializer.
fn knob_value(key: &str, text: &str) -> Result<Value, String> {
    let value = match defaults().get(key) {
        Some(Value::Integer(_)) => text
            .trim()
            .parse::<i64>()
            .map(Value::Integer)
            .map_err(|_| format!("{text:?} is not a whole number"))?,
        Some(Value::Boolean(_)) => match text.trim() {
            "true" | "yes" | "on" | "1" => Value::Boolean(true),
            "false" | "no" | "off" | "0" => Value::Boolean(false),
            _ => return Err(format!("{text:?} is not true or false")),
        },
        _ => Value::String(text.trim().to_owned()),
    };
    check(key, &value)?;
    Ok(value)
}

/// Checks one knob's value alone: the core's deserializer says what is wrong with it (for a duration,
/// humantime's own reason, which says what a unit is for, rather than only that it is not a duration).
pub fn check(key: &str, value: &Value) -> Result<(), String> {
    let is_duration = knobs()
        .iter()
        .any(|k| k.key == key && k.value_name == "TIME");
    if let (true, Value::String(text)) = (is_duration, value) {
        humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))?;
    }
    let mut one = Table::new();
    one.insert(key.to_owned(), value.clone());
    Value::Table(one)
        .try_into::<Config>()
        .map(drop)
        .map_err(|e| e.message().trim_end().replace('\n', " "))
}

impl FromArgMatches for ProtocolArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut values = Table::new();
        for knob in knobs() {
            if let Some(value) = matches.get_one::<Value>(&knob.id()) {
                values.insert(knob.key.clone(), value.clone());
            }
        }
        Ok(ProtocolArgs { values })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = ProtocolArgs::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for ProtocolArgs {
    fn augment_args(cmd: Command) -> Command {
        knobs().iter().fold(cmd, |cmd, knob| cmd.arg(knob.arg()))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        ProtocolArgs::augment_args(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_knob_of_the_core_has_a_flag_with_its_doc_and_default() {
        let knobs = knobs();
        assert_eq!(knobs.len(), defaults().len());
        let probe = knobs
            .iter()
            .find(|k| k.key == "probe_interval")
            .expect("probe_interval is a knob");
        assert!(
            probe.help.contains("protocol period") && probe.help.ends_with("[default: 1s]"),
            "{}",
            probe.help
        );
        assert_eq!(probe.value_name, "TIME");
        let schedule = knobs
            .iter()
            .find(|k| k.key == "probe_schedule")
            .expect("a knob");
        assert_eq!(schedule.value_name, "ring|shuffled");
        assert!(
            knobs.iter().all(|k| !k.help.starts_with(" [default")),
            "a knob without a doc"
        );
    }

    #[test]
    fn a_duration_needs_a_unit_and_a_number_a_number() {
        assert_eq!(
            knob_value("probe_interval", "1m30s"),
            Ok(Value::String("1m30s".into()))
        );
        let bare = knob_value("probe_interval", "500").unwrap_err();
        assert!(bare.contains("time unit needed"), "{bare}");
        assert!(knob_value("ring_span", "eight").is_err());
        assert!(knob_value("probe_schedule", "random").is_err());
        assert_eq!(
            knob_value("stream_fallback", "no"),
            Ok(Value::Boolean(false))
        );
    }
}
