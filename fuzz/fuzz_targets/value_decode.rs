//! Fuzz target: one value body. Byte 0 is the type byte, byte 1 selects the RDB version/flavor, the rest is the
//! value's body. The body is decoded directly as a [`rdbkit::read::Value`] (lazy decoders on unvalidated bytes,
//! as after a fast walk), and inside a minimal in-memory RDB
//! (`REDIS00vv | SELECTDB 0 | type | key "k" | body | EOF | 8 zero bytes`) read with and without deep validation.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use rdbkit::read::{Encoding, Flavor, Header, ReadOptions, Value};

fuzz_target!(|input: &[u8]| {
    let [ty, ver, body @ ..] = input else { return };
    let (flavor, version) = match ver % 4 {
        0 => (Flavor::Redis, 12),
        1 => (Flavor::Redis, 9),
        2 => (Flavor::Valkey, 80),
        _ => (Flavor::Redis, 11),
    };
    let header = Header::new(flavor, version);
    if let Some(encoding) = Encoding::from_type_byte(*ty, header) {
        let v = Value { encoding, raw: body };
        let _ = v.to_owned_value();
    }
    let mut file = Vec::with_capacity(body.len() + 24);
    file.extend_from_slice(&header.magic_bytes());
    file.extend_from_slice(&[0xfe, 0x00, *ty, 0x01, b'k']);
    file.extend_from_slice(body);
    file.push(0xff);
    file.extend_from_slice(&[0; 8]);
    common::drain_slice(&file, ReadOptions::default());
    common::drain_slice(&file, ReadOptions::fast().with_checksum(false));
});
