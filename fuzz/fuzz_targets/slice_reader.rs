//! Fuzz target: arbitrary bytes through [`rdbkit::read::SliceReader`], with default options (deep validation,
//! checksum) and with `ReadOptions::fast()`; every record is fully decoded (`to_owned_value`). Must never panic.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use rdbkit::read::ReadOptions;

fuzz_target!(|data: &[u8]| {
    let deep = common::drain_slice(data, ReadOptions::default());
    let fast = common::drain_slice(data, ReadOptions::fast());
    let nocrc = common::drain_slice(data, ReadOptions::default().with_checksum(false));
    if let (Some(deep), Some(fast), Some(nocrc)) = (deep, fast, nocrc) {
        // Deep validation only adds checks: every record it accepts, the fast walk accepts with the same span.
        assert!(deep.records.len() <= fast.records.len(), "deep walk read more records than the fast walk");
        assert_eq!(deep.records[..], fast.records[..deep.records.len()], "deep and fast walks disagree on spans");
        assert!(deep.records.len() <= nocrc.records.len());
        assert_eq!(deep.records[..], nocrc.records[..deep.records.len()]);
    }
});
