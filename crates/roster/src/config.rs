//! The agent's settings from three places: flags, then `ROSTER_*` environment variables (clap reads both),
//! then the TOML config file; the first that gives a value wins.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use roster_agent::AgentConfig;
use serde::Deserialize;

use crate::BadInput;

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
}
