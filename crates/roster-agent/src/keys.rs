//! Key rotation across a running cluster, as Serf does it: an operator asks one agent to install, use or remove
//! a key, or to list keys; that agent applies the step itself, then asks every live member over an encrypted
//! stream and reports how many acknowledged. The HTTP routes and a program's [`Keys`] run the same steps.
//!
//! A control frame is a stream frame whose plaintext starts with [`CONTROL`] (never the first byte of a protocol
//! packet) followed by a JSON [`KeyOp`]; the answer is a JSON [`KeyAnswer`]. Control frames are only accepted
//! sealed by an installed key, so only a member can change another member's keyring.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::driver::Shared;
use crate::keyring::SecretKey;
use crate::transport::{self, Wire};

/// First byte of a control frame's plaintext. Protocol packets start with their version (1).
pub const CONTROL: u8 = 0xC5;
/// How long the whole fan-out may take before the members that have not answered count as failed.
const FAN_OUT_TIMEOUT: Duration = Duration::from_secs(10);

/// One step of a rotation. Keys are base64, as `roster keys generate` prints them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum KeyOp {
    /// Add a key every member accepts, without sending with it yet.
    Install {
        /// The key.
        key: String,
    },
    /// Send with this installed key from now on.
    Use {
        /// The key.
        key: String,
    },
    /// Drop a key that is no longer the primary.
    Remove {
        /// The key.
        key: String,
    },
    /// Change nothing; report the keys.
    List,
}

/// A member's answer to a step: its keys afterwards, or why it refused.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KeyAnswer {
    /// Why the member refused, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The member's keys (base64), the primary first.
    #[serde(default)]
    pub keys: Vec<String>,
}

/// What a step did across the cluster.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KeyReport {
    /// Live members asked, this one included.
    pub members: usize,
    /// Members that applied the step.
    pub acked: usize,
    /// Members that refused or did not answer, and why.
    pub failed: BTreeMap<String, String>,
    /// For each key (base64): how many members have it installed.
    pub keys: BTreeMap<String, usize>,
    /// For each key: how many members use it as their primary.
    pub primary: BTreeMap<String, usize>,
}

/// Why a step was refused before anything changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyStepError {
    /// The agent has no keyring.
    #[error("encryption is not enabled on this agent (start it with --keyring)")]
    NotEncrypted,
    /// The step itself was refused here (removing the primary, a malformed key): nothing changed anywhere.
    #[error("{0}")]
    Refused(String),
}

/// Key rotation across the cluster, from a program that embeds the agent (see [`crate::Agent::keys`]): each
/// step is applied here first, then asked of every live member, and reported.
///
/// ```
/// # use roster_agent::{Agent, AgentConfig};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let keyring = dir.path().join("keyring");
/// let first = roster_agent::keyring::SecretKey::generate().to_base64();
/// std::fs::write(&keyring, format!("{first}\n"))?;
/// let mut config = AgentConfig::new("m1", "127.0.0.1:0".parse()?);
/// config.keyring = Some(keyring);
/// let agent = Agent::start(config).await?;
///
/// let next = roster_agent::keyring::SecretKey::generate().to_base64();
/// let report = agent.keys().install(&next).await?;
/// assert_eq!((report.members, report.acked), (1, 1));
/// agent.keys().use_key(&next).await?;
/// let report = agent.keys().remove(&first).await?;
/// assert_eq!(report.keys.keys().collect::<Vec<_>>(), [&next]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Keys<'a> {
    shared: &'a Arc<Shared>,
}

impl<'a> Keys<'a> {
    pub(crate) fn new(shared: &'a Arc<Shared>) -> Keys<'a> {
        Keys { shared }
    }

    /// Installs `key` (base64) on every member: accepted from now on, not yet sent with.
    pub async fn install(&self, key: &str) -> Result<KeyReport, KeyStepError> {
        rotate(
            self.shared,
            KeyOp::Install {
                key: key.to_owned(),
            },
        )
        .await
    }

    /// Makes the installed `key` every member's primary: what they send with from now on.
    pub async fn use_key(&self, key: &str) -> Result<KeyReport, KeyStepError> {
        rotate(
            self.shared,
            KeyOp::Use {
                key: key.to_owned(),
            },
        )
        .await
    }

    /// Removes `key` from every member; refused for the primary.
    pub async fn remove(&self, key: &str) -> Result<KeyReport, KeyStepError> {
        rotate(
            self.shared,
            KeyOp::Remove {
                key: key.to_owned(),
            },
        )
        .await
    }

    /// Lists the keys of every member.
    pub async fn list(&self) -> Result<KeyReport, KeyStepError> {
        rotate(self.shared, KeyOp::List).await
    }
}

pub(crate) fn is_control(plaintext: &[u8]) -> bool {
    plaintext.first() == Some(&CONTROL)
}

/// Applies a step to this agent's keyring and saves the keyring file.
pub(crate) fn apply(wire: &Wire, op: &KeyOp) -> Result<Vec<String>, KeyStepError> {
    let handle = wire.keys().ok_or(KeyStepError::NotEncrypted)?;
    let mut keyring = handle.lock();
    let parse = |key: &str| SecretKey::parse(key).map_err(|e| KeyStepError::Refused(e.to_string()));
    let changed = match op {
        KeyOp::List => false,
        KeyOp::Install { key } => {
            keyring.install(parse(key)?);
            true
        }
        KeyOp::Use { key } => {
            keyring
                .use_key(&parse(key)?)
                .map_err(|e| KeyStepError::Refused(e.to_string()))?;
            true
        }
        KeyOp::Remove { key } => {
            keyring
                .remove(&parse(key)?)
                .map_err(|e| KeyStepError::Refused(e.to_string()))?;
            true
        }
    };
    if changed && let Some(path) = &handle.path {
        keyring
            .save(path)
            .map_err(|e| KeyStepError::Refused(e.to_string()))?;
    }
    Ok(keyring.list().into_iter().map(|k| k.key).collect())
}

/// Answers a control frame from another member.
pub(crate) fn answer(wire: &Wire, plaintext: &[u8]) -> Vec<u8> {
    let answer = match serde_json::from_slice::<KeyOp>(&plaintext[1..]) {
        Ok(op) => match apply(wire, &op) {
            Ok(keys) => KeyAnswer { error: None, keys },
            Err(e) => KeyAnswer {
                error: Some(e.to_string()),
                keys: Vec::new(),
            },
        },
        Err(e) => KeyAnswer {
            error: Some(format!("invalid key operation: {e}")),
            keys: Vec::new(),
        },
    };
    serde_json::to_vec(&answer).expect("an answer always serializes")
}

/// Applies `op` here, then on every other live member, and reports.
pub(crate) async fn rotate(shared: &Arc<Shared>, op: KeyOp) -> Result<KeyReport, KeyStepError> {
    let own_keys = apply(&shared.wire, &op)?;
    let peers: Vec<(String, SocketAddr)> = {
        let state = shared.lock();
        let local = state.node.local().name().to_owned();
        state
            .node
            .members()
            .filter(|m| m.state.is_active() && m.name() != local)
            .map(|m| (m.name().to_owned(), m.identity.addr()))
            .collect()
    };
    let mut report = KeyReport {
        members: peers.len() + 1,
        acked: 1,
        ..KeyReport::default()
    };
    tally(&mut report, &own_keys);
    let mut frame = vec![CONTROL];
    frame.extend(serde_json::to_vec(&op).expect("a key operation always serializes"));
    let asks = peers.into_iter().map(|(name, addr)| {
        let (wire, frame) = (shared.wire.clone(), frame.clone());
        async move {
            let answer = match transport::request(&wire, addr, frame).await {
                Ok(Some(bytes)) => serde_json::from_slice::<KeyAnswer>(&bytes)
                    .map_err(|e| format!("unreadable answer: {e}"))
                    .and_then(|a| a.error.clone().map_or(Ok(a), Err)),
                Ok(None) => Err("closed without answering".to_owned()),
                Err(e) => Err(e.to_string()),
            };
            (name, answer)
        }
    });
    let answers = tokio::time::timeout(FAN_OUT_TIMEOUT, futures_util::future::join_all(asks)).await;
    match answers {
        Ok(answers) => {
            for (name, answer) in answers {
                match answer {
                    Ok(a) => {
                        report.acked += 1;
                        tally(&mut report, &a.keys);
                    }
                    Err(e) => {
                        report.failed.insert(name, e);
                    }
                }
            }
        }
        Err(_) => {
            report.failed.insert(
                "*".to_owned(),
                format!("no complete answer within {FAN_OUT_TIMEOUT:?}"),
            );
        }
    }
    Ok(report)
}

fn tally(report: &mut KeyReport, keys: &[String]) {
    for (at, key) in keys.iter().enumerate() {
        *report.keys.entry(key.clone()).or_default() += 1;
        if at == 0 {
            *report.primary.entry(key.clone()).or_default() += 1;
        }
    }
}
