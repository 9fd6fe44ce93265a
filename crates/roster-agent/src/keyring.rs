//! `Keyring`: authenticated encryption of every datagram and stream frame, with keys that rotate live.
//!
//! One primary key seals; every installed key opens. A sealed message carries, in clear, a version byte and the
//! 4-byte id of the key that sealed it, then a random 96-bit nonce and the ChaCha20-Poly1305 ciphertext and tag.
//! The header and a byte naming the transport are authenticated too, so a datagram cannot be replayed as a stream
//! frame or under another key's id. Recently seen nonces are remembered, and a message whose nonce comes again
//! is dropped: an exact replay within that window never reaches the protocol (older replays are harmless because
//! claims only ever replace weaker ones; see `roster_core::member`).
//!
//! Rotation, as Serf does it: install the new key everywhere, make it primary everywhere, then remove the old
//! one. At every step each member can open what any other seals, so nothing is lost.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use sha2::{Digest, Sha256};

use crate::replace_file::{Readers, replace_file};

/// Bytes in a key.
pub const KEY_LEN: usize = 32;
const VERSION: u8 = 0xA1;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
const TAG_LEN: usize = 16;
/// Bytes sealing adds to a message.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// Nonces remembered to drop exact replays.
const REPLAY_WINDOW: usize = 16_384;

/// What a sealed message travels as; part of the authenticated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A UDP datagram.
    Datagram,
    /// A TCP stream frame.
    Stream,
}

/// The public name of a key: the first bytes of its hash, safe to show and to send in clear.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 4]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A 32-byte secret key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    /// A fresh random key.
    pub fn generate() -> SecretKey {
        let mut bytes = [0; KEY_LEN];
        getrandom::fill(&mut bytes).expect("the operating system provides randomness");
        SecretKey(bytes)
    }

    /// Parses a base64 key (standard alphabet, padded), as `roster keys generate` prints them.
    pub fn parse(text: &str) -> Result<SecretKey, KeyError> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|_| KeyError::NotBase64)?;
        let bytes: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::WrongLength { len: bytes.len() })?;
        Ok(SecretKey(bytes))
    }

    /// The key in base64.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    /// The key's public id.
    pub fn id(&self) -> KeyId {
        let digest = Sha256::new()
            .chain_update(b"roster key id\0")
            .chain_update(self.0)
            .finalize();
        KeyId([digest[0], digest[1], digest[2], digest[3]])
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.id())
    }
}

/// Why a key was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not base64.
    #[error("key is not valid base64")]
    NotBase64,
    /// Base64 of the wrong number of bytes.
    #[error("key is {len} bytes long; a key is {KEY_LEN} bytes (44 characters of base64)")]
    WrongLength {
        /// Bytes it decodes to.
        len: usize,
    },
}

/// Why a keyring operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// No such file.
    #[error("keyring file {path} does not exist")]
    Missing {
        /// The file.
        path: String,
    },
    /// The file could not be read.
    #[error("cannot read keyring file {path}: {source}")]
    Unreadable {
        /// The file.
        path: String,
        /// The system's reason.
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("cannot write keyring file {path}: {source}")]
    Unwritable {
        /// The file.
        path: String,
        /// The system's reason.
        source: std::io::Error,
    },
    /// The file holds no key.
    #[error("keyring file {path} holds no key")]
    Empty {
        /// The file.
        path: String,
    },
    /// A line that is not a key.
    #[error("keyring file {path}, line {line}: {source}")]
    BadKey {
        /// The file.
        path: String,
        /// The line's number, from 1.
        line: usize,
        /// What is wrong with it.
        source: KeyError,
    },
    /// The key asked for is not in the keyring.
    #[error("key {id} is not installed")]
    NotInstalled {
        /// The key's id.
        id: KeyId,
    },
    /// The primary key cannot be removed.
    #[error("key {id} is the primary key; make another key primary before removing it")]
    RemovingPrimary {
        /// The key's id.
        id: KeyId,
    },
}

/// Why a sealed message was not opened. Each is a reason in the dropped-packets metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Too short to be a sealed message.
    #[error("message is too short to be sealed")]
    Malformed,
    /// Sealed by a version of the format this build does not know.
    #[error("message was sealed by an unsupported version {0:#x}")]
    Version(u8),
    /// Sealed with a key that is not installed here.
    #[error("message was sealed with key {0}, which is not installed")]
    UnknownKey(KeyId),
    /// Altered, or sealed by someone without the key.
    #[error("message failed authentication")]
    Unauthentic,
    /// A message seen before.
    #[error("message is a replay")]
    Replayed,
}

impl OpenError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            OpenError::Malformed | OpenError::Version(_) => "malformed",
            OpenError::UnknownKey(_) => "unknown_key",
            OpenError::Unauthentic => "unauthentic",
            OpenError::Replayed => "replayed",
        }
    }
}

struct Installed {
    key: SecretKey,
    id: KeyId,
    cipher: ChaCha20Poly1305,
}

/// Installed keys, the primary first, and the replay window.
pub struct Keyring {
    keys: Vec<Installed>,
    seen: HashSet<[u8; NONCE_LEN]>,
    seen_order: VecDeque<[u8; NONCE_LEN]>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("keys", &self.keys.iter().map(|k| k.id).collect::<Vec<_>>())
            .finish()
    }
}

/// One line of `roster keys list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key's public id.
    pub id: KeyId,
    /// The key, base64.
    pub key: String,
    /// Whether it is the one messages are sealed with.
    pub primary: bool,
}

impl Keyring {
    /// A keyring with `primary` as its primary key.
    pub fn new(primary: SecretKey) -> Keyring {
        let mut keyring = Keyring {
            keys: Vec::new(),
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
        };
        keyring.install(primary);
        keyring
    }

    /// Reads a keyring file: one base64 key per line, the first the primary; blank lines and `#` comments are
    /// ignored.
    pub fn load(path: &Path) -> Result<Keyring, KeyringError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => KeyringError::Missing {
                path: shown.clone(),
            },
            _ => KeyringError::Unreadable {
                path: shown.clone(),
                source,
            },
        })?;
        let mut keyring: Option<Keyring> = None;
        for (at, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = SecretKey::parse(line).map_err(|source| KeyringError::BadKey {
                path: shown.clone(),
                line: at + 1,
                source,
            })?;
            match &mut keyring {
                None => keyring = Some(Keyring::new(key)),
                Some(keyring) => keyring.install(key),
            }
        }
        keyring.ok_or(KeyringError::Empty { path: shown })
    }

    /// Writes the keyring file atomically (a temporary file renamed over the old one), readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), KeyringError> {
        let unwritable = |source| KeyringError::Unwritable {
            path: path.display().to_string(),
            source,
        };
        let mut text =
            String::from("# Roster keyring: one base64 key per line, the first is the primary.\n");
        for installed in &self.keys {
            text.push_str(&installed.key.to_base64());
            text.push('\n');
        }
        replace_file(path, Readers::Owner, |out| out.write_all(text.as_bytes())).map_err(unwritable)
    }

    /// The primary key's id.
    pub fn primary(&self) -> KeyId {
        self.keys[0].id
    }

    /// Every installed key.
    pub fn list(&self) -> Vec<KeyInfo> {
        self.keys
            .iter()
            .enumerate()
            .map(|(at, k)| KeyInfo {
                id: k.id,
                key: k.key.to_base64(),
                primary: at == 0,
            })
            .collect()
    }

    /// Installs `key` for opening (no-op if installed).
    pub fn install(&mut self, key: SecretKey) {
        let id = key.id();
        if self.keys.iter().all(|k| k.id != id) {
            let cipher = ChaCha20Poly1305::new((&key.0).into());
            self.keys.push(Installed { key, id, cipher });
        }
    }

    /// Makes an installed key the primary.
    pub fn use_key(&mut self, key: &SecretKey) -> Result<(), KeyringError> {
        let id = key.id();
        let at = self
            .keys
            .iter()
            .position(|k| k.id == id)
            .ok_or(KeyringError::NotInstalled { id })?;
        let installed = self.keys.remove(at);
        self.keys.insert(0, installed);
        Ok(())
    }

    /// Removes a key that is not the primary.
    pub fn remove(&mut self, key: &SecretKey) -> Result<(), KeyringError> {
        let id = key.id();
        if self.keys[0].id == id {
            return Err(KeyringError::RemovingPrimary { id });
        }
        let at = self
            .keys
            .iter()
            .position(|k| k.id == id)
            .ok_or(KeyringError::NotInstalled { id })?;
        self.keys.remove(at);
        Ok(())
    }

    /// Seals `plaintext` with the primary key.
    pub fn seal(&self, purpose: Purpose, plaintext: &[u8]) -> Vec<u8> {
        let primary = &self.keys[0];
        let mut nonce = [0; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the operating system provides randomness");
        let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
        out.push(VERSION);
        out.extend_from_slice(&primary.id.0);
        out.extend_from_slice(&nonce);
        let aad = aad(&out[..5], purpose);
        let sealed = primary
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("sealing a message in memory cannot fail");
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a sealed message with whichever installed key sealed it.
    pub fn open(&mut self, purpose: Purpose, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < OVERHEAD {
            return Err(OpenError::Malformed);
        }
        if sealed[0] != VERSION {
            return Err(OpenError::Version(sealed[0]));
        }
        let id = KeyId([sealed[1], sealed[2], sealed[3], sealed[4]]);
        let installed = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or(OpenError::UnknownKey(id))?;
        let nonce: [u8; NONCE_LEN] = sealed[5..HEADER_LEN]
            .try_into()
            .expect("length checked above");
        let aad = aad(&sealed[..5], purpose);
        let plaintext = installed
            .cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &sealed[HEADER_LEN..],
                    aad: &aad,
                },
            )
            .map_err(|_| OpenError::Unauthentic)?;
        // Only authentic messages enter the window, so a stranger cannot flush it.
        if !self.seen.insert(nonce) {
            return Err(OpenError::Replayed);
        }
        self.seen_order.push_back(nonce);
        if self.seen_order.len() > REPLAY_WINDOW {
            let old = self.seen_order.pop_front().expect("window is not empty");
            self.seen.remove(&old);
        }
        Ok(plaintext)
    }
}

/// Whether `bytes` have the shape of a sealed message (its version byte and room for a header and tag), for
/// telling an agent without a keyring that its neighbour encrypts.
pub fn looks_sealed(bytes: &[u8]) -> bool {
    bytes.len() >= OVERHEAD && bytes[0] == VERSION
}

fn aad(header: &[u8], purpose: Purpose) -> [u8; 6] {
    let mut aad = [0; 6];
    aad[..5].copy_from_slice(header);
    aad[5] = match purpose {
        Purpose::Datagram => b'd',
        Purpose::Stream => b's',
    };
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_one_key_seals_the_same_key_opens_once() {
        let key = SecretKey::generate();
        let mut ring = Keyring::new(key);
        let sealed = ring.seal(Purpose::Datagram, b"ping");
        assert_eq!(sealed.len(), 4 + OVERHEAD);
        assert_eq!(ring.open(Purpose::Datagram, &sealed).unwrap(), b"ping");
        assert_eq!(
            ring.open(Purpose::Datagram, &sealed),
            Err(OpenError::Replayed)
        );
    }

    #[test]
    fn another_key_a_flipped_bit_or_another_transport_does_not_open() {
        let mut ours = Keyring::new(SecretKey::generate());
        let theirs = Keyring::new(SecretKey::generate());
        let sealed = theirs.seal(Purpose::Datagram, b"alive");
        assert!(matches!(
            ours.open(Purpose::Datagram, &sealed),
            Err(OpenError::UnknownKey(_))
        ));
        let mut sealed = ours.seal(Purpose::Datagram, b"alive");
        assert_eq!(
            ours.open(Purpose::Stream, &sealed),
            Err(OpenError::Unauthentic)
        );
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(
            ours.open(Purpose::Datagram, &sealed),
            Err(OpenError::Unauthentic)
        );
        assert_eq!(
            ours.open(Purpose::Datagram, &[VERSION; 10]),
            Err(OpenError::Malformed)
        );
    }

    #[test]
    fn rotation_in_serf_order_never_loses_a_message() {
        let (old, new) = (SecretKey::generate(), SecretKey::generate());
        let mut a = Keyring::new(old.clone());
        let mut b = Keyring::new(old.clone());
        let check = |from: &Keyring, to: &mut Keyring| {
            let sealed = from.seal(Purpose::Datagram, b"x");
            to.open(Purpose::Datagram, &sealed).is_ok()
        };
        a.install(new.clone());
        assert!(check(&a, &mut b) && check(&b, &mut a));
        b.install(new.clone());
        a.use_key(&new).unwrap();
        assert!(check(&a, &mut b) && check(&b, &mut a));
        b.use_key(&new).unwrap();
        a.remove(&old).unwrap();
        assert!(check(&a, &mut b) && check(&b, &mut a));
        b.remove(&old).unwrap();
        assert!(check(&a, &mut b) && check(&b, &mut a));
        assert!(matches!(
            a.remove(&new),
            Err(KeyringError::RemovingPrimary { .. })
        ));
    }

    #[test]
    fn bad_keyring_files_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring");
        let err = Keyring::load(&path).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        std::fs::write(&path, "not base64!\n").unwrap();
        let err = Keyring::load(&path).unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("base64"), "{err}");
        std::fs::write(&path, "# comment\n\nAAAA\n").unwrap();
        let err = Keyring::load(&path).unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("3 bytes"), "{err}");
        std::fs::write(&path, "").unwrap();
        assert!(
            Keyring::load(&path)
                .unwrap_err()
                .to_string()
                .contains("no key")
        );
        let ring = Keyring::new(SecretKey::generate());
        ring.save(&path).unwrap();
        assert_eq!(Keyring::load(&path).unwrap().list(), ring.list());
    }
}
