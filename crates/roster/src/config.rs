//! The agent's configuration: one schema, filled from flags, then `ROSTER_*` environment variables (clap reads
//! both), then the TOML config file, then the defaults; the first that gives a value wins.
//!
//! The schema has two parts, each listed once. [`AgentSettings`] holds the agent's own settings: its fields are
//! the flags, the variables and the file's keys, and their doc comments the help. The protocol's knobs are the
//! fields of `roster_core::Config` itself (see [`protocol`]). Each value is checked where it is read, so an
//! error names the flag, the variable or the file's line; whether the protocol's knobs can meet their
//! deadlines together is the core's check, made once when the agent starts.

mod file;
mod protocol;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::{ArgAction, Args, ValueEnum};
use roster_agent::AgentConfig;
use roster_core::{Config, Meta};
use serde::{Deserialize, Deserializer, Serialize};
use toml::{Table, Value};
use tracing_subscriber::filter::Targets;

use crate::BadInput;
use file::FileConfig;
use protocol::ProtocolArgs;

/// `roster agent`'s flags: the settings, the protocol's knobs, and what to do with them.
#[derive(Clone, Debug, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub settings: AgentSettings,
    #[command(flatten)]
    pub protocol: ProtocolArgs,
    /// TOML file with any of these settings
    #[arg(long, env = "ROSTER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the configuration in force as TOML and exit; the output loads back as a config file
    #[arg(long)]
    pub print_config: bool,
}

/// The agent's own settings. Each is a flag `--KEY` (with `-` for `_`), a variable `ROSTER_KEY` and a key of
/// the config file; left out, it takes the default its help names.
#[derive(Clone, Debug, Default, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSettings {
    /// Member name, unique in the cluster [default: the hostname]
    #[arg(long, env = "ROSTER_NAME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Address for the protocol's UDP socket and TCP listener
    #[arg(long, env = "ROSTER_BIND", value_name = "IP:PORT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<SocketAddr>,
    /// Address other members reach this one at, if not the bind address (NAT)
    #[arg(long, env = "ROSTER_ADVERTISE", value_name = "IP:PORT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertise: Option<SocketAddr>,
    /// A member to join through (IP or HOST, with :PORT unless it is 7946); repeat for more, any one is enough
    #[arg(
        long = "join",
        env = "ROSTER_JOIN",
        value_name = "ADDR",
        value_delimiter = ','
    )]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub join: Vec<String>,
    /// Keep trying to join, with backoff and jitter, instead of giving up after the join timeout [default: false]
    #[arg(
        long,
        env = "ROSTER_RETRY_JOIN",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        action = ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_join: Option<bool>,
    /// Directory for the event log and the snapshot [default: roster-data/NAME]
    #[arg(long, env = "ROSTER_DATA_DIR", value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Address of the HTTP API, as IP:PORT or http://IP:PORT [default: 127.0.0.1:7070]
    #[arg(long, env = "ROSTER_HTTP", value_name = "IP:PORT", value_parser = parse_http_addr)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "checked::<_, SocketAddr>"
    )]
    pub http: Option<SocketAddr>,
    /// A listener of its own for /metrics alone, e.g. for a scraper on the network [default: none]
    #[arg(long, env = "ROSTER_METRICS_HTTP", value_name = "IP:PORT", value_parser = parse_http_addr)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "checked::<_, SocketAddr>"
    )]
    pub metrics_http: Option<SocketAddr>,
    /// Log level or filter for stderr: trace, debug, info, warn, error or off, or TARGET=LEVEL pairs such as
    /// `info,roster_agent=debug` [default: RUST_LOG, then info]
    #[arg(long, env = "ROSTER_LOG_LEVEL", value_name = "FILTER", value_parser = parse_log_filter)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "checked::<_, String>"
    )]
    pub log_level: Option<String>,
    /// Log line format on stderr [default: text]
    #[arg(long, env = "ROSTER_LOG_FORMAT", value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    /// A tag for this member, KEY=VALUE, carried to every list; repeat for more. Changed live with `roster
    /// tags`; reloaded from the config file on SIGHUP
    #[arg(
        long = "tag",
        alias = "meta",
        env = "ROSTER_TAG",
        value_name = "KEY=VALUE",
        value_delimiter = ',',
        value_parser = parse_tag_pair
    )]
    #[serde(
        rename = "tags",
        alias = "tag",
        alias = "meta",
        skip_serializing_if = "Vec::is_empty",
        with = "tag_table"
    )]
    pub tag: Vec<(String, String)>,
    /// Rotate the event log when it would pass this size [default: 67108864]
    #[arg(long, env = "ROSTER_EVENT_LOG_MAX_BYTES", value_name = "BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_log_max_bytes: Option<u64>,
    /// Rotated event logs to keep [default: 3]
    #[arg(long, env = "ROSTER_EVENT_LOG_KEEP", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_log_keep: Option<usize>,
    /// Keyring file (one base64 key per line, the first is the primary): encrypt and authenticate all traffic
    #[arg(long, env = "ROSTER_KEYRING", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyring: Option<PathBuf>,
    /// Stream (TCP) connections open at once, each way [default: 64]
    #[arg(long, env = "ROSTER_MAX_CONNECTIONS", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// Run PROGRAM (with sh -c) on member-join, member-leave, member-failed, member-update, user[:NAME] or
    /// query[:NAME] (comma-separated; none for all); details in ROSTER_* variables, payload on stdin, a
    /// query's answer on stdout. Repeat for more
    #[arg(
        long = "event-handler",
        env = "ROSTER_EVENT_HANDLER",
        value_name = "[FILTER=]PROGRAM",
        value_parser = parse_event_handler
    )]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_handler: Vec<String>,
    /// Kill an event handler still running after this long (a query's, at the query's deadline) [default: 30s]
    #[arg(long, env = "ROSTER_EVENT_HANDLER_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde",
        default
    )]
    pub event_handler_timeout: Option<Duration>,
    /// Run event handlers once per burst: membership changes of one kind, and user events of one name, within
    /// this long of the first run each handler once, with every member changed or the latest event [default: 0s,
    /// every event as it comes]
    #[arg(long, env = "ROSTER_EVENT_HANDLER_COALESCE", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde",
        default
    )]
    pub event_handler_coalesce: Option<Duration>,
}

/// An event handler, checked as the agent will read it.
fn parse_event_handler(text: &str) -> Result<String, String> {
    text.parse::<roster_agent::EventHandler>()?;
    Ok(text.to_owned())
}

/// How log lines look on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    // One line of text per event, for a person or the journal.
    #[default]
    Text,
    // One JSON object per line, for a log pipeline.
    Json,
}

/// A duration as people write it (`750ms`, `1m30s`); a bare number is refused, asking for a unit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("{text:?}: {e}"))
}

/// `IP:PORT`, or the same as a URL (`http://127.0.0.1:7070`, `http://[::1]:7070/`), as a browser shows it.
pub fn parse_http_addr(text: &str) -> Result<SocketAddr, String> {
    let trimmed = text.trim();
    let bare = match trimmed.split_once("://") {
        Some(("http", rest)) => rest.trim_end_matches('/'),
        Some((scheme, _)) => {
            return Err(format!(
                "{text:?}: the agent serves plain http on loopback, not {scheme}"
            ));
        }
        None => trimmed,
    };
    bare.parse::<SocketAddr>().map_err(|_| {
        format!("{text:?} is not IP:PORT or http://IP:PORT (for example 127.0.0.1:7070)")
    })
}

/// The levels a log filter may name.
const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// A log filter: levels and `target=level` pairs, each level one of [`LEVELS`]. Checked here because the
/// filter parser takes an unknown word for a target name, so `verbose` would silence every line.
pub fn parse_log_filter(text: &str) -> Result<String, String> {
    for directive in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let level = directive
            .rsplit_once('=')
            .map_or(directive, |(_, level)| level);
        if !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level)) {
            return Err(format!(
                "{level:?} in {text:?} is not a log level: use one of {} (or TARGET=LEVEL)",
                LEVELS.join(", ")
            ));
        }
    }
    Targets::from_str(text).map_err(|e| format!("{text:?}: {e}"))?;
    Ok(text.to_owned())
}

fn parse_tag_pair(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))?;
    if key.trim().is_empty() {
        return Err(format!("{text:?} has an empty key"));
    }
    Ok((key.trim().to_owned(), value.to_owned()))
}

/// The file's string for a setting, read by the same parser as its flag.
trait Checked: Sized {
    fn parse(text: &str) -> Result<Self, String>;
}

impl Checked for SocketAddr {
    fn parse(text: &str) -> Result<Self, String> {
        parse_http_addr(text)
    }
}

impl Checked for Duration {
    fn parse(text: &str) -> Result<Self, String> {
        parse_duration(text)
    }
}

/// The one free-text setting the file's deserializer checks is the log filter.
impl Checked for String {
    fn parse(text: &str) -> Result<Self, String> {
        parse_log_filter(text)
    }
}

fn checked<'de, D: Deserializer<'de>, T: Checked>(deserializer: D) -> Result<Option<T>, D::Error> {
    let text = String::deserialize(deserializer)?;
    T::parse(&text).map(Some).map_err(serde::de::Error::custom)
}

/// `[tags]` in the file: a table of strings, where the flag gives `KEY=VALUE` pairs.
mod tag_table {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(pairs: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(pairs.iter().map(|(k, v)| (k, v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
        Ok(BTreeMap::<String, String>::deserialize(d)?
            .into_iter()
            .collect())
    }
}

/// The merged settings.
#[derive(Debug)]
pub struct Settings {
    pub agent: AgentConfig,
    pub log_level: Option<String>,
    pub log_format: LogFormat,
    /// The agent's settings as merged, from which the configuration in force is made.
    given: AgentSettings,
}

impl Settings {
    /// Every setting with the value in force, as the config file writes it. Made when asked (`--print-config`,
    /// a reload), not at every start: an agent's resident memory is mostly the code it has run once, and this is
    /// TOML's serializer for every setting (docs/performance.md).
    pub fn in_force(&self) -> Table {
        let mut in_force =
            Table::try_from(settings_in_force(&self.agent, &self.given, self.log_format))
                .expect("the settings serialize");
        in_force
            .extend(Table::try_from(&self.agent.protocol).expect("the core's Config serializes"));
        // A table must come after every plain key in TOML.
        if let Some(tags) = in_force.remove("tags") {
            in_force.insert("tags".into(), tags);
        }
        in_force
    }

    /// The configuration in force as a config file.
    pub fn to_toml(&self) -> String {
        toml::to_string(&self.in_force()).expect("a TOML table prints")
    }
}

impl AgentArgs {
    pub fn resolve(self) -> Result<Settings, BadInput> {
        self.resolve_with(&std::env::var("RUST_LOG").ok())
    }

    /// The settings again, for a reload: the flags and variables as at start, the config file as it is now.
    pub fn reload(&self) -> Result<Settings, BadInput> {
        self.clone().resolve()
    }

    fn resolve_with(self, rust_log: &Option<String>) -> Result<Settings, BadInput> {
        let file = match &self.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        // A plain start (no config file, or one with protocol knobs alone) has nothing to merge, and skips the
        // TOML round trip of the settings, whose code would stay resident in every agent (docs/performance.md).
        let mut settings = if file.settings.is_empty() {
            self.settings.clone().read_back()
        } else {
            let mut table = file.settings;
            table.extend(Table::try_from(&self.settings).expect("the settings serialize"));
            Value::Table(table)
                .try_into()
                .map_err(|e| BadInput(format!("invalid settings: {}", e.message().trim_end())))?
        };
        // The log level alone has a fourth place, RUST_LOG, between the variables and the file.
        settings.log_level = match (&self.settings.log_level, rust_log) {
            (Some(level), _) => Some(level.clone()),
            (None, Some(level)) => {
                Some(parse_log_filter(level).map_err(|e| BadInput(format!("RUST_LOG: {e}")))?)
            }
            (None, None) => settings.log_level,
        };

        let mut knobs = file.protocol;
        knobs.extend(self.protocol.values);
        // No knob given: the core's defaults, which an empty table deserializes to (a test checks it), without
        // running the deserializer.
        let protocol = if knobs.is_empty() {
            Config::default()
        } else {
            Value::Table(knobs).try_into().map_err(|e| {
                BadInput(format!(
                    "invalid protocol configuration: {}",
                    e.message().trim_end()
                ))
            })?
        };

        let agent = settings.complete(protocol)?;
        let log_format = settings.log_format.unwrap_or_default();
        Ok(Settings {
            agent,
            log_level: settings.log_level.clone(),
            log_format,
            given: settings,
        })
    }
}

impl AgentSettings {
    /// The settings as the config file's deserializer reads them back after the flags' values were written to
    /// a table: the same values, the tags in key order, one value a key (the last given).
    fn read_back(mut self) -> AgentSettings {
        self.tag = self
            .tag
            .into_iter()
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect();
        self
    }

    /// The agent's configuration: what was set, else the default.
    fn complete(&self, protocol: Config) -> Result<AgentConfig, BadInput> {
        let name = match &self.name {
            Some(name) => name.clone(),
            None => gethostname::gethostname()
                .into_string()
                .map_err(|_| BadInput("the hostname is not UTF-8: give --name".into()))?,
        };
        let bind = self.bind.ok_or_else(|| {
            BadInput("no bind address: give --bind IP:PORT (or `bind` in the config file, or ROSTER_BIND)".into())
        })?;
        let mut agent = AgentConfig::new(name.clone(), bind);
        agent.advertise = self.advertise;
        agent.join = self.join.clone();
        agent.join.retain(|s| !s.trim().is_empty());
        agent.retry_join = self.retry_join.unwrap_or(agent.retry_join);
        agent.metrics_http = self.metrics_http;
        let tags: BTreeMap<String, String> = self.tag.iter().cloned().collect();
        agent.tags = Meta::new(tags).map_err(|e| BadInput(format!("invalid tags: {e}")))?;
        agent.data_dir = Some(
            self.data_dir
                .clone()
                .unwrap_or_else(|| Path::new("roster-data").join(&name)),
        );
        // The command serves the API by default; a program that embeds the agent asks for it.
        agent.http = Some(self.http.unwrap_or(SocketAddr::from((
            [127, 0, 0, 1],
            roster_agent::DEFAULT_HTTP_PORT,
        ))));
        agent.event_log_max_bytes = self
            .event_log_max_bytes
            .unwrap_or(agent.event_log_max_bytes);
        agent.event_log_keep = self.event_log_keep.unwrap_or(agent.event_log_keep);
        agent.keyring = self.keyring.clone();
        agent.max_connections = self.max_connections.unwrap_or(agent.max_connections);
        agent.event_handlers = self
            .event_handler
            .iter()
            .map(|h| h.parse().map_err(BadInput))
            .collect::<Result<_, _>>()?;
        agent.event_handler_timeout = self
            .event_handler_timeout
            .unwrap_or(agent.event_handler_timeout);
        agent.event_handler_coalesce = self
            .event_handler_coalesce
            .unwrap_or(agent.event_handler_coalesce);
        agent.protocol = protocol;
        Ok(agent)
    }
}

/// The settings as `agent` runs with them, for `--print-config`.
fn settings_in_force(
    agent: &AgentConfig,
    given: &AgentSettings,
    log_format: LogFormat,
) -> AgentSettings {
    AgentSettings {
        name: Some(agent.name.clone()),
        bind: Some(agent.bind),
        advertise: agent.advertise,
        join: agent.join.clone(),
        retry_join: Some(agent.retry_join),
        data_dir: agent.data_dir.clone(),
        http: agent.http,
        metrics_http: agent.metrics_http,
        log_level: Some(given.log_level.clone().unwrap_or_else(|| "info".into())),
        log_format: Some(log_format),
        tag: given.tag.clone(),
        event_log_max_bytes: Some(agent.event_log_max_bytes),
        event_log_keep: Some(agent.event_log_keep),
        keyring: agent.keyring.clone(),
        max_connections: Some(agent.max_connections),
        event_handler: given.event_handler.clone(),
        event_handler_timeout: Some(agent.event_handler_timeout),
        event_handler_coalesce: Some(agent.event_handler_coalesce),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("roster-config-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn args(file: Option<PathBuf>) -> AgentArgs {
        AgentArgs {
            settings: AgentSettings {
                name: Some("m1".into()),
                bind: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
                ..AgentSettings::default()
            },
            protocol: ProtocolArgs::default(),
            config: file,
            print_config: false,
        }
    }

    #[test]
    fn no_protocol_knob_is_the_core_default_the_deserializer_gives() {
        let read: Config = Value::Table(Table::new())
            .try_into()
            .expect("an empty table is a configuration");
        assert_eq!(read, Config::default());
    }

    #[test]
    fn a_start_without_settings_in_a_file_is_configured_as_one_that_merges_them() {
        let dir = scratch("plain");
        let flags = || AgentArgs {
            settings: AgentSettings {
                name: Some("m1".into()),
                bind: Some(SocketAddr::from(([127, 0, 0, 1], 7946))),
                join: vec!["127.0.0.1:7947".into(), "seed:7000".into()],
                retry_join: Some(true),
                http: Some(SocketAddr::from(([127, 0, 0, 1], 7071))),
                log_level: Some("info,roster_agent=debug".into()),
                log_format: Some(LogFormat::Json),
                tag: vec![
                    ("zone".into(), "a".into()),
                    ("role".into(), "web".into()),
                    ("zone".into(), "b".into()),
                ],
                event_log_keep: Some(5),
                event_handler: vec!["member-join=true".into()],
                event_handler_timeout: Some(Duration::from_millis(1500)),
                ..AgentSettings::default()
            },
            protocol: ProtocolArgs::default(),
            config: None,
            print_config: false,
        };
        // A file that gives a setting the flags override: the merge through TOML, with the same outcome due.
        let path = dir.join("overridden.toml");
        std::fs::write(&path, "name = \"from-file\"\n").expect("write");
        let merged = AgentArgs {
            config: Some(path),
            ..flags()
        }
        .resolve_with(&None)
        .expect("valid settings");
        let plain = flags().resolve_with(&None).expect("valid settings");
        assert_eq!(plain.to_toml(), merged.to_toml());
        assert_eq!(format!("{:?}", plain.agent), format!("{:?}", merged.agent));
        assert_eq!(plain.log_level, merged.log_level);
        assert_eq!(plain.log_format, merged.log_format);
        assert!(
            plain
                .to_toml()
                .ends_with("[tags]\nrole = \"web\"\nzone = \"b\"\n"),
            "{}",
            plain.to_toml()
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_bad_config_file_is_reported_on_one_line_with_its_line_number() {
        let dir = scratch("bad");
        let path = dir.join("bad.toml");
        std::fs::write(&path, "name = \"m1\"\nbindd = \"127.0.0.1:1\"\n").expect("write");
        let err = FileConfig::load(&path).expect_err("unknown key");
        assert!(
            err.0.contains("line 2") && err.0.contains("bindd") && !err.0.contains('\n'),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn protocol_knobs_take_the_flag_then_the_file_then_the_core_default() {
        let dir = scratch("timing");
        let path = dir.join("timing.toml");
        std::fs::write(
            &path,
            "probe_interval = \"0.9s\"\ndetect_deadline = \"12s\"\nring_span = 5\n",
        )
        .expect("write");
        let mut args = args(Some(path));
        args.protocol
            .values
            .insert("probe_interval".into(), Value::String("750ms".into()));
        let protocol = args.resolve().expect("valid settings").agent.protocol;
        let core = Config::default();
        assert_eq!(protocol.probe_interval, Duration::from_millis(750));
        assert_eq!(protocol.detect_deadline, Duration::from_secs(12));
        assert_eq!(protocol.ring_span, 5);
        assert_eq!(protocol.disseminate_deadline, core.disseminate_deadline);
        assert_eq!(protocol.max_rtt, core.max_rtt);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_bad_value_in_the_config_file_is_reported_with_its_key_and_line() {
        let dir = scratch("values");
        let path = dir.join("values.toml");
        for (text, problem) in [
            ("name = \"m1\"\nmax_rtt = \"soon\"\n", "max_rtt"),
            (
                "name = \"m1\"\nprobe_interval = \"500\"\n",
                "time unit needed",
            ),
            ("name = \"m1\"\nring_span = \"eight\"\n", "ring_span"),
            ("name = \"m1\"\nleave_timeout = \"5\"\n", "time unit needed"),
            ("name = \"m1\"\nhttp = \"https://x:1\"\n", "plain http"),
        ] {
            std::fs::write(&path, text).expect("write");
            let err = FileConfig::load(&path).expect_err(problem);
            assert!(
                err.0.contains("line 2") && err.0.contains(problem) && !err.0.contains('\n'),
                "{err}"
            );
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn the_printed_configuration_loads_back_as_the_same_configuration() {
        let dir = scratch("print");
        let path = dir.join("in.toml");
        std::fs::write(
            &path,
            "join = [\"127.0.0.1:7947\"]\nretry_join = true\nprobe_schedule = \"shuffled\"\n\
             failed_reap_timeout = \"1h 30m\"\n[tags]\nrole = \"web\"\n",
        )
        .expect("write");
        let first = args(Some(path)).resolve().expect("valid settings");
        let printed = first.to_toml();
        let again_path = dir.join("again.toml");
        std::fs::write(&again_path, &printed).expect("write");
        let again = AgentArgs {
            settings: AgentSettings::default(),
            ..args(Some(again_path))
        }
        .resolve()
        .expect("the printed configuration loads");
        assert_eq!(again.to_toml(), printed);
        assert_eq!(again.agent.protocol, first.agent.protocol);
        assert_eq!(again.agent.tags, first.agent.tags);
        assert_eq!(
            first.agent.protocol.failed_reap_timeout,
            Duration::from_secs(5400)
        );
        assert!(printed.contains("probe_interval = \"1s\""), "{printed}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
