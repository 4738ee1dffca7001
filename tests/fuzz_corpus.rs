//! Replays the kept fuzz corpus (fuzz/corpus/<target>/, inputs found by scripts/fuzz.sh,
//! crashes among them once fixed) through the fuzz entry points on stable Rust: none may panic.

use std::path::Path;

#[test]
fn the_fuzz_corpus_replays_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut replayed = 0;
    for (name, target) in vigil::fuzz_entry::TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(name)) else {
            continue;
        };
        for entry in entries.flatten() {
            let data = std::fs::read(entry.path()).expect("corpus input");
            let run = std::panic::catch_unwind(|| target(&data));
            assert!(run.is_ok(), "{name}: {} panics", entry.path().display());
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no corpus under {}", root.display());
}
