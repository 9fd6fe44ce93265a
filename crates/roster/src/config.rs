//! The agent's settings from three places: flags, then `ROSTER_*` environment variables (clap reads both),
//! then the TOML config file; the first that gives a value wins.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use roster_agent::AgentConfig;
use roster_core::Config;
use serde::{Deserialize, Deserializer};

use crate::BadInput;
use roster_sim::cli::parse_duration;

/// `roster agent`'s flags. Each also reads `ROSTER_<FLAG>` and the config file's key of the same name
/// (with `_` for `-`).
#[derive(Debug, Args)]
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
    /// A member to join through (IP:PORT or HOST:PORT); repeat for more, any one is enough
    #[arg(
        long = "join",
        env = "ROSTER_JOIN",
        value_name = "ADDR",
        value_delimiter = ','
    )]
    pub join: Vec<String>,
    /// Directory for the event log and the snapshot [default: roster-data/NAME]
    #[arg(long, env = "ROSTER_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the HTTP API [default: 127.0.0.1:7070]
    #[arg(long, env = "ROSTER_HTTP", value_name = "IP:PORT")]
    pub http: Option<SocketAddr>,
    /// TOML file with any of these settings
    #[arg(long, env = "ROSTER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log level or filter for stderr, e.g. `info` or `roster_agent=debug` [default: RUST_LOG, then info]
    #[arg(long, env = "ROSTER_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
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

/// The config file: the same settings as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub name: Option<String>,
    pub bind: Option<SocketAddr>,
    pub advertise: Option<SocketAddr>,
    #[serde(default)]
    pub join: Vec<String>,
    pub data_dir: Option<PathBuf>,
    pub http: Option<SocketAddr>,
    pub log_level: Option<String>,
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
}

impl AgentArgs {
    pub fn resolve(self) -> Result<Settings, BadInput> {
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
        Ok(Settings {
            agent,
            log_level: self
                .log_level
                .or_else(|| std::env::var("RUST_LOG").ok())
                .or(file.log_level),
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
            data_dir: None,
            http: None,
            config: Some(path),
            log_level: None,
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
