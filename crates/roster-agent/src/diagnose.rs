//! What a refused packet says about the cluster's set-up, told to the operator in a line of its own: a key
//! this agent does not have, encryption on one side only, another wire version. Each kind is logged at most
//! once per [`EVERY`] (with how many more were seen meanwhile), because a misconfigured neighbour or a flood
//! of junk repeats it thousands of times a second; every one is counted in the metrics all the same.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use roster_core::DecodeError;

use crate::keyring::OpenError;
use crate::transport::WireError;

/// Shortest pause between two log lines of one kind.
pub const EVERY: Duration = Duration::from_secs(10);

/// Why a datagram or frame was refused, as the metrics and the log name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// Sealed with a key this agent's keyring does not hold.
    UnknownKey,
    /// A plain protocol packet at an agent that encrypts.
    NotEncrypted,
    /// A sealed packet at an agent without a keyring.
    Encrypted,
    /// A protocol packet of a wire version this build does not speak.
    Version,
}

impl Mismatch {
    const ALL: [Mismatch; 4] = [
        Mismatch::UnknownKey,
        Mismatch::NotEncrypted,
        Mismatch::Encrypted,
        Mismatch::Version,
    ];

    /// The reason label in `roster_dropped_packets_total`.
    pub fn reason(self) -> &'static str {
        match self {
            Mismatch::UnknownKey => "unknown_key",
            Mismatch::NotEncrypted => "not_encrypted",
            Mismatch::Encrypted => "encrypted",
            Mismatch::Version => "version",
        }
    }

    fn advice(self) -> &'static str {
        match self {
            Mismatch::UnknownKey => {
                "key mismatch: a member sealed a packet with a key this agent does not have; every member needs \
                 every key in use (roster keys list)"
            }
            Mismatch::NotEncrypted => {
                "key mismatch: a member sends unencrypted packets, but this agent encrypts; give every member \
                 the same keyring"
            }
            Mismatch::Encrypted => {
                "key mismatch: a member sends encrypted packets, but this agent has no keyring; give every \
                 member the same keyring"
            }
            Mismatch::Version => {
                "version mismatch: a member speaks a wire version this build does not; upgrade one release at \
                 a time (docs/operations.md)"
            }
        }
    }

    /// The mismatch a wire refusal shows, if it is one rather than junk.
    pub fn of_wire(error: &WireError, bytes: &[u8]) -> Option<Mismatch> {
        match error {
            WireError::Open(OpenError::UnknownKey(_)) => Some(Mismatch::UnknownKey),
            // Not sealed at all, yet a protocol packet: the sender has no keyring.
            WireError::Open(OpenError::Version(_) | OpenError::Malformed)
                if roster_core::codec::decode_packet(bytes).is_ok() =>
            {
                Some(Mismatch::NotEncrypted)
            }
            _ => None,
        }
    }

    /// The mismatch a decode error at an agent without a keyring shows, if it is one.
    pub fn of_decode(error: &DecodeError, bytes: &[u8]) -> Option<Mismatch> {
        match error {
            DecodeError::UnsupportedVersion(_) if crate::keyring::looks_sealed(bytes) => {
                Some(Mismatch::Encrypted)
            }
            DecodeError::UnsupportedVersion(_) => Some(Mismatch::Version),
            _ => None,
        }
    }
}

/// The throttle for the log lines.
#[derive(Debug, Default)]
pub struct Diagnostics {
    /// Per kind: when it was last logged, and how many were seen since.
    last: [(Option<Instant>, u64); 4],
}

impl Diagnostics {
    /// Logs `mismatch` from `from` unless it was logged within [`EVERY`].
    pub fn report(&mut self, mismatch: Mismatch, from: SocketAddr, detail: &dyn std::fmt::Display) {
        let at = Mismatch::ALL
            .iter()
            .position(|m| *m == mismatch)
            .expect("every kind is in ALL");
        let (last, unlogged) = &mut self.last[at];
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < EVERY) {
            *unlogged += 1;
            return;
        }
        tracing::warn!(
            %from,
            reason = mismatch.reason(),
            %detail,
            more_since_last = *unlogged,
            "{}",
            mismatch.advice()
        );
        *last = Some(now);
        *unlogged = 0;
    }
}
