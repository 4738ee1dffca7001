//! Builds the guest components in `guest-modules/` for wasm32-wasip2 (as wasmtime's own test
//! programs are built) and puts them in `$OUT_DIR/guests/`, where `include_bytes!` embeds the
//! built-in ones and tests find the others (`VIGIL_GUEST_DIR`); and generates the gRPC extension
//! contract's Rust types and client from `proto/` (protox parses them: no `protoc` needed).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    generate_grpc_contract();
    build_guests();
}

/// AVA's gRPC extension contract (`proto/*.proto`, ours, wire-compatible) as Rust: messages
/// (prost), the client and, for the tests' and benchmarks' servers, the server trait (tonic).
fn generate_grpc_contract() {
    let proto = PathBuf::from("proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    let files = ["extension.proto", "media.proto", "inferencing.proto"].map(|f| proto.join(f));
    let descriptors = protox::compile(&files, [&proto])
        .unwrap_or_else(|e| panic!("the gRPC contract in proto/ does not compile: {e}"));
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(false)
        .emit_rerun_if_changed(false)
        .compile_fds(descriptors)
        .unwrap_or_else(|e| panic!("generating the gRPC contract's Rust code failed: {e}"));
}

fn build_guests() {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.join("..");
    let guests = root.join("guest-modules");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir = out.join("guest-target");
    let dest = out.join("guests");
    println!(
        "cargo:rerun-if-changed={}",
        guests.join("Cargo.toml").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        guests.join("Cargo.lock").display()
    );
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    for dir in [
        "vigil-guest",
        "vigil-guest-macro",
        "motion-detector",
        "object-filter",
        "test-guests",
    ] {
        println!("cargo:rerun-if-changed={}", guests.join(dir).display());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--quiet",
        "--target",
        "wasm32-wasip2",
        "--manifest-path",
    ])
    .arg(guests.join("Cargo.toml"))
    .arg("--target-dir")
    .arg(&target_dir);
    // The outer build's wrappers and flags are not meant for the guests.
    for var in [
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CLIPPY_ARGS",
        "CARGO_TARGET_DIR",
    ] {
        cmd.env_remove(var);
    }
    // WebAssembly SIMD (wasmtime enables it): the detector's pixel loops vectorise as natively.
    cmd.env(
        "CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS",
        "-C target-feature=+simd128",
    );
    let status = cmd.status().expect("cargo runs");
    if !status.success() {
        panic!(
            "building guest-modules for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`, which scripts/setup.sh does)"
        );
    }
    std::fs::create_dir_all(&dest).expect("create guests dir");
    let built = target_dir.join("wasm32-wasip2").join("release");
    for entry in std::fs::read_dir(&built).expect("guest output").flatten() {
        let path = entry.path();
        if let (true, Some(name)) = (
            path.extension().is_some_and(|e| e == "wasm"),
            path.file_name(),
        ) {
            std::fs::copy(&path, dest.join(name)).expect("copy guest");
        }
    }
    println!("cargo:rustc-env=VIGIL_GUEST_DIR={}", dest.display());
}
