//! The record opcodes (the byte before a record that is not a key) and the encoders of the small records that
//! sinks synthesise: `SELECTDB`, `RESIZEDB`, `SLOT_INFO`. The parser reads these bytes, the writer and the sinks
//! write them from here.

use super::length::encode_length;

/// `SLOT_INFO` (Redis RDB 12): slot, keys, keys with an expiry.
pub const SLOT_INFO: u8 = 0xF4;
/// A function library (RDB 10+).
pub const FUNCTION2: u8 = 0xF5;
/// Module AUX data (RDB 9+).
pub const MODULE_AUX: u8 = 0xF7;
/// LRU idle time of the next key (RDB 9+).
pub const IDLE: u8 = 0xF8;
/// LFU counter of the next key (RDB 9+).
pub const FREQ: u8 = 0xF9;
/// An AUX field (RDB 7+).
pub const AUX: u8 = 0xFA;
/// `RESIZEDB` hints (RDB 7+).
pub const RESIZE_DB: u8 = 0xFB;
/// Expiry of the next key in milliseconds (RDB 3+).
pub const EXPIRETIME_MS: u8 = 0xFC;
/// Expiry of the next key in seconds.
pub const EXPIRETIME: u8 = 0xFD;
/// `SELECTDB`.
pub const SELECT_DB: u8 = 0xFE;
/// End of file (a CRC-64 follows from RDB 5).
pub const EOF: u8 = 0xFF;

/// Replaces `out` with a `SELECTDB db` record.
pub fn select_db_record(db: u64, out: &mut Vec<u8>) {
    out.clear();
    out.push(SELECT_DB);
    encode_length(db, out);
}

/// Replaces `out` with a `RESIZEDB keys expires` record.
pub fn resize_db_record(keys: u64, expires: u64, out: &mut Vec<u8>) {
    out.clear();
    out.push(RESIZE_DB);
    encode_length(keys, out);
    encode_length(expires, out);
}

/// Replaces `out` with a `SLOT_INFO slot keys expires` record.
pub fn slot_info_record(slot: u64, keys: u64, expires: u64, out: &mut Vec<u8>) {
    out.clear();
    out.push(SLOT_INFO);
    encode_length(slot, out);
    encode_length(keys, out);
    encode_length(expires, out);
}
