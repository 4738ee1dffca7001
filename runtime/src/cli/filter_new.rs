//! `vigil filter new`: a ready filter project that builds with one command. Rust projects use
//! the vigil-guest SDK; Python and JavaScript projects the SDK module and template in
//! `guest-sdk/python` and `guest-sdk/js`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use super::filter::{FilterNewArgs, Language, WorldChoice};

/// The SDK this binary was built with, when its source is still there.
fn bundled_sdk() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-modules/vigil-guest");
    p.join("Cargo.toml")
        .exists()
        .then(|| p.canonicalize().unwrap_or(p))
}

/// Runs `vigil filter new`.
pub fn filter_new(args: &FilterNewArgs) -> ExitCode {
    match make(args) {
        Ok(dir) => {
            println!("{}", next_steps(args, &dir));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vigil filter new: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn check_name(name: &str) -> Result<()> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        bail!(
            "'{name}' is not a project name: lower-case letters, digits, '-' and '_', starting with a letter"
        );
    }
    Ok(())
}

fn make(args: &FilterNewArgs) -> Result<PathBuf> {
    check_name(&args.name)?;
    let dir = args.dir.join(&args.name);
    if dir.exists() {
        bail!("{} exists already", dir.display());
    }
    let (files, links) = match args.lang {
        Language::Rust => (rust_files(args)?, Vec::new()),
        Language::Python => (python_files(args)?, Vec::new()),
        Language::Js => js_files(args)?,
    };
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot make {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        if path.extension().is_some_and(|e| e == "sh") {
            make_executable(&path)?;
        }
    }
    for (link, target) in links {
        let link = dir.join(link);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot make {}", parent.display()))?;
        }
        std::os::unix::fs::symlink(&target, &link)
            .with_context(|| format!("cannot link {} to {}", link.display(), target.display()))?;
    }
    Ok(dir)
}

/// Sets the executable bits of a script made for the project (`./build.sh`).
fn make_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", path.display()))
}

fn next_steps(args: &FilterNewArgs, dir: &Path) -> String {
    let build = match args.lang {
        Language::Rust => "cargo build --release --target wasm32-wasip2".to_string(),
        Language::Python | Language::Js => "./build.sh".to_string(),
    };
    format!(
        "made {}; build it with `cd {} && {build}` (see its README.md)",
        dir.display(),
        dir.display()
    )
}

fn rust_files(args: &FilterNewArgs) -> Result<Vec<(PathBuf, String)>> {
    let sdk = match &args.sdk {
        Some(p) => p.canonicalize().with_context(|| format!("--sdk {}", p.display()))?,
        None => bundled_sdk().context(
            "the vigil-guest SDK this binary was built with is not there any more: give --sdk PATH (guest-modules/vigil-guest in Vigil's source)",
        )?,
    };
    let name = &args.name;
    let crate_name = name.replace('-', "_");
    let sdk = sdk.display().to_string().replace('\\', "/");
    let cargo = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib"]

[dependencies]
vigil-guest = {{ path = "{sdk}" }}

[profile.release]
opt-level = 3
lto = true
codegen-units = 1
strip = true
panic = "abort"

# A project of its own, even inside another workspace.
[workspace]
"#
    );
    let lib = match args.world {
        WorldChoice::Event => RUST_EVENT.replace("NAME", name),
        WorldChoice::Frame => RUST_FRAME.replace("NAME", name),
    };
    let readme = RUST_README
        .replace("NAME", name)
        .replace("CRATE", &crate_name)
        .replace(
            "WORLD",
            match args.world {
                WorldChoice::Event => "event",
                WorldChoice::Frame => "frame",
            },
        );
    Ok(vec![
        ("Cargo.toml".into(), cargo),
        ("src/lib.rs".into(), lib),
        ("README.md".into(), readme),
        (".gitignore".into(), "/target\n".into()),
    ])
}

fn python_files(args: &FilterNewArgs) -> Result<Vec<(PathBuf, String)>> {
    let sdk = match &args.sdk {
        Some(p) => p.clone(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk/python"),
    };
    if args.world == WorldChoice::Frame {
        bail!(
            "Python projects start from an event filter: give --world event (a Python frame filter: guest-sdk/python/tests/guests/bright)"
        );
    }
    let template = sdk.join("template");
    if !template.is_dir() {
        bail!(
            "no Python template at {}: give --sdk PATH (guest-sdk/python in Vigil's source)",
            template.display()
        );
    }
    let repo = sdk.join("../..").canonicalize().ok();
    template_files(&template, &args.name, repo.as_deref())
}

/// Symbolic links a project is made with: (its path in the project, what it points to).
type Links = Vec<(PathBuf, PathBuf)>;

/// A JavaScript project: the template's files, a `package.json` (an ES module package whose
/// `vigil_filter` is the SDK), and `node_modules/vigil_filter` linked to the SDK so that plain
/// `node --test` finds it (`npm install` makes the link again from `package.json`).
fn js_files(args: &FilterNewArgs) -> Result<(Vec<(PathBuf, String)>, Links)> {
    let sdk = match &args.sdk {
        Some(p) => p.clone(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk/js"),
    };
    if args.world == WorldChoice::Frame {
        bail!(
            "JavaScript projects start from an event filter: give --world event (a JavaScript frame filter: guest-sdk/js/tests/guests/bright)"
        );
    }
    let template = sdk.join("template");
    if !template.is_dir() || !sdk.join("vigil_filter.js").is_file() {
        bail!(
            "no JavaScript SDK and template at {}: give --sdk PATH (guest-sdk/js in Vigil's source)",
            sdk.display()
        );
    }
    let sdk = sdk
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", sdk.display()))?;
    let repo = sdk.join("../..").canonicalize().ok();
    let mut files = template_files(&template, &args.name, repo.as_deref())?;
    let package = serde_json::json!({
        "name": args.name,
        "version": "0.1.0",
        "description": "A Vigil event filter (vigil:filter@0.2.0) in JavaScript",
        "private": true,
        "type": "module",
        "scripts": {"build": "./build.sh", "test": "node --test test_app.js"},
        "devDependencies": {"vigil_filter": format!("file:{}", sdk.display())},
    });
    let package = serde_json::to_string_pretty(&package).context("package.json")? + "\n";
    files.push(("package.json".into(), package));
    files.push((".gitignore".into(), "/node_modules\n/filter.wasm\n".into()));
    Ok((files, vec![("node_modules/vigil_filter".into(), sdk)]))
}

/// The files of a template folder, `NAME` replaced by the project's name; `build.sh` pointed at
/// `repo`, the Vigil checkout whose build script it runs.
fn template_files(
    template: &Path,
    name: &str,
    repo: Option<&Path>,
) -> Result<Vec<(PathBuf, String)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(template)
        .with_context(|| format!("cannot read {}", template.display()))?
    {
        let path = entry?.path();
        if path.is_file() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let file = path.file_name().map(PathBuf::from).unwrap_or_default();
            let text = text.replace("NAME", name);
            // build.sh finds Vigil's build script in the checkout the SDK came from.
            let text = match repo {
                Some(repo) => text.replace("$here/../../..", &repo.to_string_lossy()),
                None => text,
            };
            files.push((file, text));
        }
    }
    files.sort();
    Ok(files)
}

const RUST_EVENT: &str = r#"//! NAME: an event filter for Vigil (vigil:filter@0.2.0). It is called with every inference
//! event that reaches its node and returns the events to pass on: here, detections of the
//! configured labels above a confidence.

use vigil_guest::{Event, EventFilter, Settings};

/// One node's filter; its state lives here.
pub struct Filter {
    labels: Vec<String>,
    minimum_confidence: f32,
}

impl EventFilter for Filter {
    fn new(settings: &Settings) -> Result<Self, String> {
        Ok(Self {
            labels: settings.list("labels"),
            minimum_confidence: settings.number_or("minimumConfidence", 0.5)? as f32,
        })
    }

    fn process_event(&mut self, mut event: Event) -> Vec<Event> {
        event.inferences.retain(|i| {
            i.tag().is_some_and(|t| {
                t.confidence >= self.minimum_confidence
                    && (self.labels.is_empty()
                        || self.labels.iter().any(|l| l.eq_ignore_ascii_case(&t.value)))
            })
        });
        if event.inferences.is_empty() {
            Vec::new()
        } else {
            vec![event]
        }
    }
}

#[cfg(target_arch = "wasm32")]
vigil_guest::export_event_filter!(Filter);

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_guest::{Inference, Rect};

    #[test]
    fn keeps_only_the_labels_asked_for() {
        let settings = Settings::from_pairs(&[("labels", "truck"), ("minimumConfidence", "0.6")]);
        let mut filter = Filter::new(&settings).expect("valid");
        let event = Event::new(
            0,
            vec![
                Inference::entity("truck", 0.9, Rect::WHOLE),
                Inference::entity("car", 0.9, Rect::WHOLE),
                Inference::entity("truck", 0.5, Rect::WHOLE),
            ],
        );
        let out = filter.process_event(event);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].inferences.len(), 1);
    }
}
"#;

const RUST_FRAME: &str = r#"//! NAME: a frame filter for Vigil (vigil:filter@0.2.0). It is called with decoded frames
//! (at most 10 per second, scaled to the width it asks for) and returns what it found: here, a
//! classification "bright" when the picture's mean brightness is above a threshold.

use vigil_guest::{Frame, FrameFilter, FrameRequest, Inference, Settings};

/// One node's filter; its state lives here.
pub struct Filter {
    threshold: f64,
}

impl FrameFilter for Filter {
    fn new(settings: &Settings) -> Result<Self, String> {
        Ok(Self {
            threshold: settings.number_or("threshold", 128.0)?,
        })
    }

    fn frame_request(&self) -> FrameRequest {
        FrameRequest {
            width: 160,
            luma: true,
            rgb: false,
        }
    }

    fn process_frame(&mut self, frame: &Frame) -> Vec<Inference> {
        let Some(luma) = &frame.luma else {
            return Vec::new();
        };
        let (mut sum, mut count) = (0u64, 0u64);
        for y in 0..luma.height {
            if let Some(row) = luma.row(y, 1) {
                sum += row.iter().map(|&v| u64::from(v)).sum::<u64>();
                count += row.len() as u64;
            }
        }
        let mean = if count == 0 { 0.0 } else { sum as f64 / count as f64 };
        if mean > self.threshold {
            vec![Inference::classification("bright", (mean / 255.0) as f32)]
        } else {
            Vec::new()
        }
    }
}

#[cfg(target_arch = "wasm32")]
vigil_guest::export_frame_filter!(Filter);
"#;

const RUST_README: &str = r#"# NAME

A Vigil WORLD filter, written with the vigil-guest SDK (vigil:filter@0.2.0).

Build (one command; `rustup target add wasm32-wasip2` once):

    cargo build --release --target wasm32-wasip2

The component is `target/wasm32-wasip2/release/CRATE.wasm`. Try it offline:

    vigil filter test --module target/wasm32-wasip2/release/CRATE.wasm --events events.jsonl   # an event filter
    vigil filter test --module target/wasm32-wasip2/release/CRATE.wasm --input clip.mp4        # a frame filter

Save its output (`> expected.jsonl`) and add `--expect expected.jsonl` to keep it as a
regression test. Unit tests run natively: `cargo test`.

Use it in a topology as a `#Vigil.WasmProcessor` node (`"module": "/path/to/CRATE.wasm"`,
`"configuration": {...}`); rebuild while the pipeline runs and the node swaps to the new build
between two calls, or swap through the API with `livePipelineModuleSwap`.
"#;
