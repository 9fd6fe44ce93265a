//! The decryptor: any bytes are opened or refused with a reason, never a panic; what the keyring seals it opens
//! exactly once, and a sealed message with any byte changed does not open.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roster_agent::keyring::{Keyring, Purpose, SecretKey};

fuzz_target!(|data: &[u8]| {
    let key = SecretKey::parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").expect("a valid key");
    let mut keyring = Keyring::new(key);
    let _ = keyring.open(Purpose::Datagram, data);
    let _ = keyring.open(Purpose::Stream, data);
    let sealed = keyring.seal(Purpose::Datagram, data);
    assert_eq!(keyring.open(Purpose::Datagram, &sealed).as_deref(), Ok(data));
    assert!(keyring.open(Purpose::Datagram, &sealed).is_err(), "a replay opened");
    if let Some((&first, _)) = data.split_first() {
        let mut tampered = keyring.seal(Purpose::Datagram, data);
        let at = usize::from(first) % tampered.len();
        tampered[at] ^= 0x01;
        assert!(keyring.open(Purpose::Datagram, &tampered).is_err(), "a tampered message opened");
    }
});
