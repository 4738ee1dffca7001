//! `vigil filter test`: a test bench for a user's module. A frame filter gets a clip's frames,
//! decoded and scaled as a pipeline would give them (at most `--fps` per second, at the size its
//! `frame-request` asks); an event filter gets events from a JSON-lines file. What the module
//! returns is printed to stdout, one JSON line per call that returned something or faulted, with
//! its media time: deterministic, so a saved output is a regression test (`--expect`). Timings
//! go to standard error: load, start-up, and the call-time distribution.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use super::filter::FilterTestArgs;
use crate::bus::trigger::parse_utc;
use crate::media::decode::Decoder;
use crate::media::mp4_reader::Mp4Video;
use crate::media::time::{MediaDuration, MediaTime};
use crate::wasm::bindings::Event;
use crate::wasm::convert::{FilterConfig, frame_of, inference_from_json, inference_json};
use crate::wasm::filter::{FilterHost, Limits, Outcome};
use crate::wasm::module::{ModuleSource, World};

/// Runs `vigil filter test`: 0 when it ran (and matched `--expect`), 1 when the output differs
/// from the expectation, 2 when it could not run.
pub fn filter_test(args: &FilterTestArgs) -> ExitCode {
    match run(args) {
        Ok(lines) => match &args.expect {
            None => ExitCode::SUCCESS,
            Some(path) => match compare(&lines, path) {
                Ok(()) => {
                    eprintln!("vigil filter test: the output matches {}", path.display());
                    ExitCode::SUCCESS
                }
                Err(why) => {
                    eprintln!("vigil filter test: {why}");
                    ExitCode::from(1)
                }
            },
        },
        Err(e) => {
            eprintln!("vigil filter test: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Reads `KEY=VALUE` options: JSON values typed, anything else as text.
fn config_of(pairs: &[String]) -> Result<FilterConfig> {
    pairs
        .iter()
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| anyhow!("--config {p:?}: expected KEY=VALUE"))?;
            let value = serde_json::from_str::<Value>(v)
                .ok()
                .filter(|j| !j.is_null())
                .unwrap_or_else(|| Value::String(v.to_string()));
            Ok((k.trim().to_string(), value))
        })
        .collect()
}

fn run(args: &FilterTestArgs) -> Result<Vec<String>> {
    let start = parse_utc(&args.start_time)
        .map_err(|e| anyhow!("--start-time {:?}: {e}", args.start_time))?;
    let t = Instant::now();
    let module = ModuleSource::parse(&args.module).load()?;
    let loaded = t.elapsed();
    let t = Instant::now();
    let mut host = FilterHost::new("test", module.clone(), config_of(&args.config)?, limits())?;
    let started = t.elapsed();
    eprintln!(
        "module {} ({:?} filter, vigil:filter@{}, {}): loaded in {:.1} ms, started in {:.1} ms",
        module.origin,
        module.world,
        module.contract.version(),
        &module.hash[..12],
        ms(loaded),
        ms(started)
    );
    let mut bench = Bench {
        start,
        lines: Vec::new(),
        calls: Vec::new(),
        faults: 0,
    };
    match (module.world, &args.input, &args.events) {
        (World::Frame, Some(clip), None) => frames(&mut host, clip, args.fps, &mut bench)?,
        (World::Event, None, Some(events)) => self::events(&mut host, events, &mut bench)?,
        (World::Frame, _, _) => bail!("a frame filter is tested on a clip: give --input CLIP.mp4"),
        (World::Event, _, _) => bail!("an event filter is tested on events: give --events E.jsonl"),
    }
    bench.summary();
    let mut out = std::io::stdout().lock();
    for line in &bench.lines {
        writeln!(out, "{line}").context("cannot write the output")?;
    }
    Ok(bench.lines)
}

/// The limits of a pipeline, but a generous start-up: the bench may compile the module.
fn limits() -> Limits {
    Limits {
        init_deadline: Duration::from_secs(60),
        ..Limits::default()
    }
}

struct Bench {
    start: MediaTime,
    lines: Vec<String>,
    calls: Vec<Duration>,
    faults: usize,
}

impl Bench {
    fn at(&self, t: MediaTime) -> Value {
        json!({"at": (t - self.start).to_string(), "time": t.to_string()})
    }

    /// Times a call; its output (`line`: the key and value to print, none when it returned
    /// nothing), skip or fault becomes a line at `t`.
    fn record<T>(
        &mut self,
        t: MediaTime,
        took: Duration,
        outcome: Outcome<T>,
        line: impl Fn(T) -> Option<(&'static str, Value)>,
    ) {
        self.calls.push(took);
        let mut v = self.at(t);
        match outcome {
            Outcome::Done(found) => match line(found) {
                Some((key, value)) => v[key] = value,
                None => return,
            },
            Outcome::Skipped => v["skipped"] = json!("backing off after repeated faults"),
            Outcome::Fault(why) => {
                self.faults += 1;
                v["fault"] = json!(why);
            }
        }
        self.lines.push(v.to_string());
    }

    fn summary(&self) {
        let mut sorted = self.calls.clone();
        sorted.sort_unstable();
        let pick = |q: f64| {
            sorted
                .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
                .map_or(0.0, |d| d.as_secs_f64() * 1e6)
        };
        eprintln!(
            "{} calls, {} with output or a fault, {} faults; call time p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
            self.calls.len(),
            self.lines.len(),
            self.faults,
            pick(0.5),
            pick(0.9),
            pick(0.99),
            pick(1.0)
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Every due frame of the clip, as a pipeline's hub gives it.
fn frames(host: &mut FilterHost, clip: &Path, fps: u32, bench: &mut Bench) -> Result<()> {
    let video = Mp4Video::open(clip)?;
    let mut decoder = Decoder::new(&video.params)?;
    let every = MediaDuration::from_nanos(1_000_000_000 / i64::from(fps.max(1)));
    let mut last: Option<MediaTime> = None;
    for sample in video.samples(bench.start) {
        let sample = sample?;
        for (pts, decoded) in decoder.decode(&sample)? {
            if last.is_some_and(|l| pts >= l && pts - l < every) {
                continue;
            }
            last = Some(pts);
            let request = host
                .frame_request()
                .unwrap_or(crate::wasm::bindings::FrameRequest {
                    width: 320,
                    luma: true,
                    rgb: false,
                });
            let f = decoder.scale(&decoded, pts, request.width, request.rgb)?;
            let t = Instant::now();
            let outcome = host.process_frame(frame_of(f, request.luma));
            bench.record(pts, t.elapsed(), outcome, |found| {
                (!found.is_empty()).then(|| {
                    let list: Vec<Value> = found.iter().map(inference_json).collect();
                    ("inferences", json!(list))
                })
            });
        }
    }
    Ok(())
}

/// One input event: its time and inferences.
fn read_event(line: &str, start: MediaTime) -> Result<Event> {
    let v: Value = serde_json::from_str(line).context("not JSON")?;
    let (time, body) = if let Some(at) = v.get("at") {
        let secs = at.as_f64().ok_or_else(|| anyhow!("'at' must be seconds"))?;
        (start + MediaDuration::from_nanos((secs * 1e9) as i64), &v)
    } else {
        let when = v
            .pointer("/properties/eventTime")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("neither 'at' nor properties.eventTime"))?;
        let t = parse_utc(when).map_err(|e| anyhow!("properties.eventTime: {e}"))?;
        (t, v.get("body").unwrap_or(&Value::Null))
    };
    let inferences = body
        .get("inferences")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(inference_from_json).collect())
        .unwrap_or_default();
    Ok(Event {
        timestamp_ns: time.as_nanos(),
        inferences,
    })
}

fn events(host: &mut FilterHost, path: &Path, bench: &mut Bench) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let event = read_event(line, bench.start)
            .with_context(|| format!("{} line {}", path.display(), n + 1))?;
        let at = MediaTime::from_nanos(event.timestamp_ns);
        let t = Instant::now();
        let outcome = host.process_event(event);
        let start = bench.start;
        bench.record(at, t.elapsed(), outcome, |out| {
            (!out.is_empty()).then(|| {
                let list: Vec<Value> = out
                    .iter()
                    .map(|e| {
                        let t = MediaTime::from_nanos(e.timestamp_ns);
                        let found: Vec<Value> = e.inferences.iter().map(inference_json).collect();
                        json!({"at": (t - start).to_string(), "inferences": found})
                    })
                    .collect();
                ("events", json!(list))
            })
        });
    }
    Ok(())
}

/// The first line where `lines` and the saved output differ.
fn compare(lines: &[String], path: &Path) -> Result<(), String> {
    let saved = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the expectation {}: {e}", path.display()))?;
    let saved: Vec<&str> = saved.lines().filter(|l| !l.trim().is_empty()).collect();
    for (i, (got, want)) in lines.iter().zip(&saved).enumerate() {
        let same = match (
            serde_json::from_str::<Value>(got),
            serde_json::from_str::<Value>(want),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => got == want,
        };
        if !same {
            return Err(format!(
                "line {} differs from {}:\n  expected {want}\n  got      {got}",
                i + 1,
                path.display()
            ));
        }
    }
    if lines.len() != saved.len() {
        let n = lines.len().min(saved.len());
        let (what, line) = match saved.get(n) {
            Some(want) => ("expected", want.to_string()),
            None => ("not expected", lines[n].clone()),
        };
        return Err(format!(
            "{} lines of output, {} in {}; line {} {what}: {line}",
            lines.len(),
            saved.len(),
            path.display(),
            n + 1
        ));
    }
    Ok(())
}
