//! Module values (type 7) and module AUX records (opcode 247): the 64-bit module type id with its 9-character name
//! and encoding version, and the opaque payload of typed opcodes that rdbkit walks without the module.

use crate::error::ErrorKind;
use crate::format::length::{PError, PResult, length, take};
use crate::format::string::rdb_str;

/// Module payload opcodes (each a LEN), from Redis's module serialization.
const OP_EOF: u64 = 0;
const OP_SINT: u64 = 1;
const OP_UINT: u64 = 2;
const OP_FLOAT: u64 = 3;
const OP_DOUBLE: u64 = 4;
const OP_STRING: u64 = 5;

const CHARSET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Splits a module type id into its 9-character name and 10-bit encoding version.
pub fn module_name(id: u64) -> (String, u16) {
    let mut name = String::with_capacity(9);
    for k in 0..9 {
        let sym = (id >> (58 - 6 * k)) & 0x3F;
        name.push(CHARSET[sym as usize] as char);
    }
    (name, (id & 0x3FF) as u16)
}

/// Builds a module type id from a 9-character name and an encoding version; `None` if the name is not 9
/// characters of `A–Z a–z 0–9 - _` or `encver > 1023`.
pub fn module_id(name: &str, encver: u16) -> Option<u64> {
    if name.len() != 9 || encver > 1023 {
        return None;
    }
    let mut id = 0u64;
    for (k, c) in name.bytes().enumerate() {
        let sym = CHARSET.iter().position(|&x| x == c)? as u64;
        id |= sym << (58 - 6 * k);
    }
    Some(id | u64::from(encver))
}

/// A MODULE_AUX record.
#[derive(Debug, Clone, Copy)]
pub struct ModuleAux<'a> {
    /// Module type id.
    pub module_id: u64,
    /// When the module asked to be called: 1 before the keyspace, 2 after.
    pub when: u64,
    /// The module's payload: opcodes up to and including the EOF opcode.
    pub payload: &'a [u8],
}

impl ModuleAux<'_> {
    /// Module name and encoding version.
    pub fn name(&self) -> (String, u16) {
        module_name(self.module_id)
    }
}

/// Parses a MODULE_AUX record body (after the opcode).
pub(crate) fn module_aux(i: &[u8]) -> PResult<'_, ModuleAux<'_>> {
    let (r, module_id) = length(i)?;
    let at = r;
    let (r, op) = length(r)?;
    if op != OP_UINT {
        return PError::nested(
            at,
            crate::Error::corrupt("module aux", format!("'when' must be preceded by opcode 2, found {op}"), 0),
        );
    }
    let (r, when) = length(r)?;
    let (rest, ()) = payload(r)?;
    Ok((rest, ModuleAux { module_id, when, payload: &r[..r.len() - rest.len()] }))
}

/// Walks a module value (type 7) body: the module id, then its payload; returns the id.
pub(crate) fn module_value(i: &[u8]) -> PResult<'_, u64> {
    let (r, id) = length(i)?;
    let (r, ()) = payload(r)?;
    Ok((r, id))
}

/// Walks module opcodes up to and including EOF.
fn payload(mut i: &[u8]) -> PResult<'_, ()> {
    loop {
        let at = i;
        let (r, op) = length(i)?;
        i = match op {
            OP_EOF => return Ok((r, ())),
            OP_SINT | OP_UINT => length(r)?.0,
            OP_FLOAT => take(r, 4)?.0,
            OP_DOUBLE => take(r, 8)?.0,
            OP_STRING => rdb_str(r)?.0,
            _ => return PError::fail(at, ErrorKind::OutOfRange { what: "module payload opcode", value: op }),
        };
    }
}

/// Splits a module value's raw bytes (as in [`crate::read::Value::raw`]) into the id and the payload.
pub fn split_module_value(raw: &[u8]) -> Option<(u64, &[u8])> {
    let (r, id) = length(raw).ok()?;
    Some((id, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let id = module_id("ReJSON-RL", 3).unwrap();
        assert_eq!(module_name(id), ("ReJSON-RL".to_string(), 3));
        assert_eq!(module_id("short", 0), None);
        assert_eq!(module_id("bad!name1", 0), None);
    }
}
