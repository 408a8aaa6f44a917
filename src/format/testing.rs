//! Test-only property-test strategies shared by the encoders' tests (ziplist, listpack, the value encoder).

use proptest::prelude::*;
use std::ops::Range;

#[path = "testing/int_texts.rs"]
mod int_texts;
pub(crate) use int_texts::INT_TEXTS;

/// An element of an encoded blob: a boundary integer text, short bytes, any integer's text, or bytes with a
/// length drawn from one of `long` (the size steps of the encoding under test).
pub(crate) fn element(long: &'static [Range<usize>]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::sample::select(INT_TEXTS).prop_map(|s| s.as_bytes().to_vec()),
        4 => prop::collection::vec(any::<u8>(), 0..80),
        2 => any::<i64>().prop_map(|v| v.to_string().into_bytes()),
        2 => prop::sample::select(long).prop_flat_map(|r| prop::collection::vec(any::<u8>(), r)),
    ]
}
