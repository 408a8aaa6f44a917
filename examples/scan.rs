//! Walks every record of the files given on the command line and prints a line per file.
use rdbkit::read::{RecordKind, StreamReader};
use std::fs::File;

fn main() {
    for path in std::env::args().skip(1) {
        let f = match File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                println!("{path}: {e}");
                continue;
            }
        };
        let mut r = match StreamReader::new(std::io::BufReader::new(f)) {
            Ok(r) => r,
            Err(e) => {
                println!("{path}: {e}");
                continue;
            }
        };
        let mut keys = 0;
        let res = loop {
            match r.next_record() {
                Ok(Some(rec)) => {
                    if let RecordKind::Entry(e) = rec.kind {
                        keys += 1;
                        if let Err(err) = e.value.to_owned_value() {
                            break Err(err);
                        }
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        match res {
            Ok(()) => println!(
                "{path}: ok {} keys={keys} checksum={:?} trailing={:?}",
                r.header().magic(),
                r.checksum(),
                r.trailing()
            ),
            Err(e) => println!("{path}: {} ERR {e}", r.header().magic()),
        }
    }
}
