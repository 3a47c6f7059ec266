//! The wire decoder: any bytes decode to a message or an error, never a panic; what decodes
//! encodes back to the same bytes (decoding is strict, so every message has one encoding).
#![no_main]

use extmem::transport::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::decode(data) {
        let bytes = message.encode();
        assert_eq!(Message::decode(&bytes).ok(), Some(message.clone()), "re-decoding {message:?}");
        assert_eq!(bytes, data, "{message:?} has a second encoding");
    }
});
