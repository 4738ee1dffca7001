//! The fault matrix's fast subset (`scripts/fault-matrix.sh --quick`): a camera killed and back
//! and a broker down and back under the sensor → files case, a store down and back, a `kill -9`
//! mid-upload and a trapping guest under motion → video archive, an inference service answering
//! 503 under inference → decision → files. Each cell runs real peers and a fresh `vigil run`,
//! and passes only when vigil survived, reported the fault, lost no more than 1 s of media
//! beyond it, left every file playable (ffprobe) and its archive consistent with the catalog and
//! the store. The full matrix (`scripts/fault-matrix.sh`) and its table are in the README.

mod support;

use std::process::Command;

use support::{repo, temp_dir};

#[test]
fn the_quick_fault_matrix_passes_every_cell() {
    let dir = temp_dir("fault-matrix");
    let json = dir.join("cells.json");
    let out = Command::new("bash")
        .arg(repo().join("scripts/fault-matrix.sh"))
        .args(["--quick", "--work"])
        .arg(dir.join("work"))
        .arg("--json")
        .arg(&json)
        .env("VIGIL", env!("CARGO_BIN_EXE_vigil"))
        .env("VIGIL_GUEST_DIR", env!("VIGIL_GUEST_DIR"))
        .current_dir(repo())
        .output()
        .expect("bash runs");
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    println!("{log}");
    assert!(out.status.success(), "a cell failed:\n{log}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the cells' JSON")).expect("JSON");
    let cells = report["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 6, "{report}");
    for cell in cells {
        assert_eq!(cell["status"], "pass", "{cell}");
        assert_eq!(cell["survived"], true, "{cell}");
        assert!(
            cell["lost_beyond_s"].as_f64().is_some_and(|s| s <= 1.0),
            "{cell}"
        );
        assert_eq!(cell["files"], cell["playable"], "{cell}");
    }
}
