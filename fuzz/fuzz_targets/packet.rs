//! The datagram decoder: any bytes give a packet or a typed error, and a packet that decodes re-encodes to
//! bytes that decode to the same packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roster_core::codec;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = codec::decode_packet(data) {
        let again = codec::encode_packet_at(packet.version, &packet.sender, &packet.messages);
        assert_eq!(codec::decode_packet(&again).as_ref(), Ok(&packet));
    }
});
