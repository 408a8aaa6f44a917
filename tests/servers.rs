//! Files written by `rdbkit convert / split / export / import` load into real servers with the same data:
//! runs `scripts/test-servers.py` (see its docstring for the checks) with the `rdbkit` binary of this build.
//! Skipped, with a notice, when the real servers are not installed, unless `RDBKIT_REQUIRE_SERVERS=1`.
//! The script picks its ports from 7600-7699 by trying to bind them and works in its own temporary
//! directory, so it can run beside other tests and other runs of itself.
#![cfg(feature = "cli")]

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn written_files_load_into_real_servers_with_the_same_data() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if !common::real_servers_available("written_files_load_into_real_servers_with_the_same_data") {
        return;
    }
    let out = common::run_bounded(
        Command::new("python3")
            .arg(root.join("scripts/test-servers.py"))
            .current_dir(root)
            .env("RDBKIT", env!("CARGO_BIN_EXE_rdbkit")),
        std::time::Duration::from_secs(1200),
        "scripts/test-servers.py",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "scripts/test-servers.py failed ({}):\n{stdout}\n{stderr}", out.status);
}
