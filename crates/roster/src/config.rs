//! The agent's settings from three places: flags, then `ROSTER_*` environment variables (clap reads both),
//! then the TOML config file; the first that gives a value wins.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, ValueEnum};
use roster_agent::AgentConfig;
use roster_core::{Config, Meta};
use serde::{Deserialize, Deserializer};
use tracing_subscriber::filter::Targets;

use crate::BadInput;
use roster_sim::cli::parse_duration;

/// `roster agent`'s flags. Each also reads `ROSTER_<FLAG>` and the config file's key of the same name
/// (with `_` for `-`).
#[derive(Clone, Debug, Args)]
pub struct AgentArgs {
    /// Member name, unique in the cluster [default: the hostname]
    #[arg(long, env = "ROSTER_NAME")]
    pub name: Option<String>,
    /// Address for the protocol's UDP socket and TCP listener
    #[arg(long, env = "ROSTER_BIND", value_name = "IP:PORT")]
    pub bind: Option<SocketAddr>,
    /// Address other members reach this one at, if not the bind address (NAT)
    #[arg(long, env = "ROSTER_ADVERTISE", value_name = "IP:PORT")]
    pub advertise: Option<SocketAddr>,
    /// A member to join through (IP or HOST, with :PORT unless it is 7946); repeat for more, any one is enough
    #[arg(
        long = "join",
        env = "ROSTER_JOIN",
        value_name = "ADDR",
        value_delimiter = ','
    )]
    pub join: Vec<String>,
    /// Keep trying to join, with backoff and jitter, instead of giving up after 30 s
    #[arg(long, env = "ROSTER_RETRY_JOIN")]
    pub retry_join: bool,
    /// Directory for the event log and the snapshot [default: roster-data/NAME]
    #[arg(long, env = "ROSTER_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the HTTP API, as IP:PORT or http://IP:PORT [default: 127.0.0.1:7070]
    #[arg(long, env = "ROSTER_HTTP", value_name = "IP:PORT", value_parser = parse_http_addr)]
    pub http: Option<SocketAddr>,
    /// A listener of its own for /metrics alone, e.g. for a scraper on the network [default: none]
    #[arg(long, env = "ROSTER_METRICS_HTTP", value_name = "IP:PORT", value_parser = parse_http_addr)]
    pub metrics_http: Option<SocketAddr>,
    /// TOML file with any of these settings
    #[arg(long, env = "ROSTER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log level or filter for stderr: trace, debug, info, warn, error or off, or TARGET=LEVEL pairs such as
    /// `info,roster_agent=debug` [default: RUST_LOG, then info]
    #[arg(long, env = "ROSTER_LOG_LEVEL", value_name = "FILTER", value_parser = parse_log_filter)]
    pub log_level: Option<String>,
    /// Log line format on stderr [default: text]
    #[arg(long, env = "ROSTER_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Metadata for this member, KEY=VALUE; repeat for more (reloaded from the config file on SIGHUP)
    #[arg(long = "meta", env = "ROSTER_META", value_name = "KEY=VALUE", value_delimiter = ',', value_parser = parse_meta_pair)]
    pub meta: Vec<(String, String)>,
    /// Rotate the event log when it would pass this size [default: 67108864]
    #[arg(long, env = "ROSTER_EVENT_LOG_MAX_BYTES", value_name = "BYTES")]
    pub event_log_max_bytes: Option<u64>,
    /// Keyring file (one base64 key per line, the first is the primary): encrypt and authenticate all traffic
    #[arg(long, env = "ROSTER_KEYRING", value_name = "FILE")]
    pub keyring: Option<PathBuf>,
    /// Rotated event logs to keep [default: 3]
    #[arg(long, env = "ROSTER_EVENT_LOG_KEEP", value_name = "N")]
    pub event_log_keep: Option<usize>,
    #[arg(
        long,
        env = "ROSTER_PROBE_INTERVAL",
        value_name = "TIME",
        value_parser = parse_positive_duration,
        help = with_core_default(
            "The protocol period: each member probes one other per interval; shorter detects sooner, for more packets",
            Config::default().probe_interval,
        )
    )]
    pub probe_interval: Option<Duration>,
    #[arg(
        long,
        env = "ROSTER_DETECT_DEADLINE",
        value_name = "TIME",
        value_parser = parse_positive_duration,
        help = with_core_default(
            "A crashed member is failed in at least one list within this time",
            Config::default().detect_deadline,
        )
    )]
    pub detect_deadline: Option<Duration>,
    #[arg(
        long,
        env = "ROSTER_DISSEMINATE_DEADLINE",
        value_name = "TIME",
        value_parser = parse_positive_duration,
        help = with_core_default(
            "A crashed member is failed in every live list within this time",
            Config::default().disseminate_deadline,
        )
    )]
    pub disseminate_deadline: Option<Duration>,
    #[arg(
        long,
        env = "ROSTER_MAX_RTT",
        value_name = "TIME",
        value_parser = parse_positive_duration,
        help = with_core_default(
            "The longest round trip the deadlines are kept for",
            Config::default().max_rtt,
        )
    )]
    pub max_rtt: Option<Duration>,
}

/// How log lines look on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    // One line of text per event, for a person or the journal.
    #[default]
    Text,
    // One JSON object per line, for a log pipeline.
    Json,
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

fn parse_meta_pair(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))?;
    if key.trim().is_empty() {
        return Err(format!("{text:?} has an empty key"));
    }
    Ok((key.trim().to_owned(), value.to_owned()))
}

/// The help of a protocol timing flag, its default read from the core so the two cannot disagree.
fn with_core_default(help: &str, default: Duration) -> String {
    format!("{help} [default: {default:?}]")
}

/// A protocol duration: zero would be a deadline nothing meets, or a probe loop that never rests.
fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!("{text:?} must be greater than zero"));
    }
    Ok(duration)
}

/// A protocol duration in the config file, written as on the command line: `probe_interval = "750ms"`.
fn deserialize_positive_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_positive_duration(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn deserialize_http_addr<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_http_addr(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn deserialize_log_filter<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_log_filter(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// The config file: the same settings as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub name: Option<String>,
    pub bind: Option<SocketAddr>,
    pub advertise: Option<SocketAddr>,
    #[serde(default)]
    pub join: Vec<String>,
    pub retry_join: Option<bool>,
    pub data_dir: Option<PathBuf>,
    #[serde(default, deserialize_with = "deserialize_http_addr")]
    pub http: Option<SocketAddr>,
    #[serde(default, deserialize_with = "deserialize_http_addr")]
    pub metrics_http: Option<SocketAddr>,
    #[serde(default, deserialize_with = "deserialize_log_filter")]
    pub log_level: Option<String>,
    pub log_format: Option<LogFormat>,
    /// `[meta]`: this member's metadata.
    pub meta: Option<BTreeMap<String, String>>,
    pub event_log_max_bytes: Option<u64>,
    pub event_log_keep: Option<usize>,
    pub keyring: Option<PathBuf>,
    #[serde(default, deserialize_with = "deserialize_positive_duration")]
    pub probe_interval: Option<Duration>,
    #[serde(default, deserialize_with = "deserialize_positive_duration")]
    pub detect_deadline: Option<Duration>,
    #[serde(default, deserialize_with = "deserialize_positive_duration")]
    pub disseminate_deadline: Option<Duration>,
    #[serde(default, deserialize_with = "deserialize_positive_duration")]
    pub max_rtt: Option<Duration>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, BadInput> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BadInput(format!("cannot read config file {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|span| {
                text.get(..span.start)
                    .unwrap_or(&text)
                    .matches('\n')
                    .count()
                    + 1
            });
            let message = e.message().replace('\n', " ");
            match line {
                Some(line) => BadInput(format!(
                    "invalid config file {}, line {line}: {message}",
                    path.display()
                )),
                None => BadInput(format!("invalid config file {}: {message}", path.display())),
            }
        })
    }
}

/// The merged settings.
#[derive(Debug)]
pub struct Settings {
    pub agent: AgentConfig,
    pub log_level: Option<String>,
    pub log_format: LogFormat,
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
        let name = match self.name.or(file.name) {
            Some(name) => name,
            None => gethostname::gethostname()
                .into_string()
                .map_err(|_| BadInput("the hostname is not UTF-8: give --name".into()))?,
        };
        let bind = self.bind.or(file.bind).ok_or_else(|| {
            BadInput("no bind address: give --bind IP:PORT (or `bind` in the config file, or ROSTER_BIND)".into())
        })?;
        let mut agent = AgentConfig::new(name.clone(), bind);
        agent.advertise = self.advertise.or(file.advertise);
        agent.join = if self.join.is_empty() {
            file.join
        } else {
            self.join
        };
        agent.join.retain(|s| !s.trim().is_empty());
        agent.retry_join = self.retry_join || file.retry_join.unwrap_or(false);
        agent.metrics_http = self.metrics_http.or(file.metrics_http);
        let meta: BTreeMap<String, String> = if self.meta.is_empty() {
            file.meta.unwrap_or_default()
        } else {
            self.meta.into_iter().collect()
        };
        agent.meta = Meta::new(meta).map_err(|e| BadInput(format!("invalid metadata: {e}")))?;
        agent.data_dir = Some(
            self.data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| Path::new("roster-data").join(&name)),
        );
        if let Some(http) = self.http.or(file.http) {
            agent.http = Some(http);
        }
        if let Some(max) = self.event_log_max_bytes.or(file.event_log_max_bytes) {
            agent.event_log_max_bytes = max;
        }
        agent.keyring = self.keyring.or(file.keyring);
        if let Some(keep) = self.event_log_keep.or(file.event_log_keep) {
            agent.event_log_keep = keep;
        }
        // Whether these can meet their deadlines together is the agent's check, made before anything binds.
        let protocol = &mut agent.protocol;
        if let Some(interval) = self.probe_interval.or(file.probe_interval) {
            protocol.probe_interval = interval;
        }
        if let Some(deadline) = self.detect_deadline.or(file.detect_deadline) {
            protocol.detect_deadline = deadline;
        }
        if let Some(deadline) = self.disseminate_deadline.or(file.disseminate_deadline) {
            protocol.disseminate_deadline = deadline;
        }
        if let Some(rtt) = self.max_rtt.or(file.max_rtt) {
            protocol.max_rtt = rtt;
        }
        let log_level = match self.log_level {
            Some(level) => Some(level),
            None => match rust_log {
                Some(level) => {
                    Some(parse_log_filter(level).map_err(|e| BadInput(format!("RUST_LOG: {e}")))?)
                }
                None => file.log_level,
            },
        };
        Ok(Settings {
            agent,
            log_level,
            log_format: self.log_format.or(file.log_format).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_config_file_is_reported_on_one_line_with_its_line_number() {
        let dir = std::env::temp_dir().join(format!("roster-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
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
    fn protocol_timing_takes_the_flag_then_the_file_then_the_core_default() {
        let dir = std::env::temp_dir().join(format!("roster-config-timing-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("timing.toml");
        std::fs::write(
            &path,
            "probe_interval = \"0.9s\"\ndetect_deadline = \"12s\"\n",
        )
        .expect("write");
        let args = AgentArgs {
            name: Some("m1".into()),
            bind: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            advertise: None,
            join: Vec::new(),
            retry_join: false,
            data_dir: None,
            http: None,
            metrics_http: None,
            config: Some(path),
            log_level: None,
            log_format: None,
            meta: Vec::new(),
            event_log_max_bytes: None,
            keyring: None,
            event_log_keep: None,
            probe_interval: Some(Duration::from_millis(750)),
            detect_deadline: None,
            disseminate_deadline: None,
            max_rtt: None,
        };
        let protocol = args.resolve().expect("valid settings").agent.protocol;
        let core = Config::default();
        assert_eq!(protocol.probe_interval, Duration::from_millis(750));
        assert_eq!(protocol.detect_deadline, Duration::from_secs(12));
        assert_eq!(protocol.disseminate_deadline, core.disseminate_deadline);
        assert_eq!(protocol.max_rtt, core.max_rtt);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_zero_or_unreadable_duration_in_the_config_file_is_reported_with_its_line() {
        let dir = std::env::temp_dir().join(format!("roster-config-zero-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("zero.toml");
        for (text, problem) in [
            ("name = \"m1\"\nmax_rtt = \"0ms\"\n", "greater than zero"),
            ("name = \"m1\"\nmax_rtt = \"soon\"\n", "not a duration"),
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
}
