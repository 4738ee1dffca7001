//! The command-line client of a running service (`--server URL`): `vigil topology …`,
//! `vigil pipeline …` and `vigil methods run operations.json` call AVA's module methods over
//! `POST <server>/api/methods/<methodName>` and print tables for people, or JSON with `--json`.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// The API version the client sends.
const API_VERSION: &str = "1.1";

/// A connection to a service.
pub struct Client {
    server: String,
    http: reqwest::blocking::Client,
    token: Option<String>,
}

impl Client {
    /// A client of the service at `server` (`http://host:port`), sending the token in
    /// `VIGIL_TOKEN` (if set) as `Authorization: Bearer`.
    pub fn new(server: &str) -> Result<Self> {
        let http = crate::tls::http_client_builder()?
            .timeout(std::time::Duration::from_secs(120))
            .build()?;
        Ok(Self {
            server: server.trim_end_matches('/').to_string(),
            http,
            token: std::env::var("VIGIL_TOKEN").ok().filter(|t| !t.is_empty()),
        })
    }

    /// Calls `method` with `payload`: (AVA status, payload).
    pub fn call(&self, method: &str, payload: &Value) -> Result<(u16, Value)> {
        let url = format!("{}/api/methods/{method}", self.server);
        let mut request = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(payload.to_string());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let (http_status, body) = request
            .send()
            .and_then(|r| Ok((r.status().as_u16(), r.text()?)))
            .with_context(|| format!("cannot reach the service at {}", self.server))?;
        let answer: Value = serde_json::from_str(&body)
            .with_context(|| format!("{url}: the answer is not JSON: {body}"))?;
        // The listener's own refusals (sign-in, host, content type) carry `error`, not a status.
        if let (None, Some(why)) = (answer["status"].as_u64(), answer["error"].as_str()) {
            anyhow::bail!(
                "{url}: HTTP {http_status}: {why} (set VIGIL_TOKEN to a token of the service)"
            );
        }
        let status = answer["status"].as_u64().unwrap_or(0) as u16;
        Ok((status, answer["payload"].clone()))
    }
}

/// `payload` with `@apiVersion` set (unless it has one).
pub fn versioned(mut payload: Value, version: &str) -> Value {
    if let Some(map) = payload.as_object_mut() {
        map.entry("@apiVersion").or_insert_with(|| json!(version));
    }
    payload
}

/// Calls `method`; fails with the service's error (code, message, details) on a status ≥ 400.
pub fn checked(client: &Client, method: &str, payload: Value) -> Result<(u16, Value)> {
    let (status, answer) = client.call(method, &versioned(payload, API_VERSION))?;
    if status >= 400 {
        bail!("{method}: {status} {}", error_text(&answer));
    }
    Ok((status, answer))
}

/// An OData error as lines: code and message, then each detail with its target.
pub fn error_text(payload: &Value) -> String {
    let e = &payload["error"];
    let mut out = format!(
        "{}: {}",
        e["code"].as_str().unwrap_or("?"),
        e["message"].as_str().unwrap_or("")
    );
    for d in e["details"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\n  {}: {}",
            d["code"].as_str().unwrap_or("?"),
            d["message"].as_str().unwrap_or("")
        ));
    }
    out
}

/// Prints rows as aligned columns under `headers`.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", text.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// Runs an AVA sample app's operations file (`{"apiVersion", "operations": [{opName,
/// opParams}]}`) against the service: each operation is a method call with its `opParams`
/// as payload; `pipelineTopologySet` with `pipelineTopologyUrl` (LVA: `topologyUrl`) sends the
/// topology at that URL or file path (relative to the operations file); `WaitForInput` prints
/// its message and waits for Enter when standard input is a terminal. Returns how many calls
/// answered with an error.
pub fn run_operations(client: &Client, path: &Path, json_output: bool) -> Result<usize> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let version = file["apiVersion"]
        .as_str()
        .unwrap_or(API_VERSION)
        .to_string();
    let Some(operations) = file["operations"].as_array() else {
        bail!("{}: no 'operations' array", path.display());
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let mut failed = 0;
    for (i, op) in operations.iter().enumerate() {
        let name = op["opName"].as_str().unwrap_or("");
        let params = op["opParams"].clone();
        if name == "WaitForInput" {
            println!(
                "{}",
                params["message"]
                    .as_str()
                    .unwrap_or("Press Enter to continue")
            );
            if std::io::stdin().is_terminal() {
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
            }
            continue;
        }
        let url = params
            .get("pipelineTopologyUrl")
            .or_else(|| params.get("topologyUrl"))
            .and_then(Value::as_str);
        let payload = match url {
            Some(url) => fetch_topology(client, url, base)
                .with_context(|| format!("operation {i} ({name})"))?,
            None => params,
        };
        let (status, answer) = client.call(name, &versioned(payload, &version))?;
        if json_output {
            println!(
                "{}",
                json!({"opName": name, "status": status, "payload": answer})
            );
        } else if status >= 400 {
            println!(
                "{name}: {status}\n  {}",
                error_text(&answer).replace('\n', "\n  ")
            );
        } else {
            println!("{name}: {status}");
            if !answer.is_null() {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&answer).unwrap_or_default()
                );
            }
        }
        if status >= 400 {
            failed += 1;
        }
    }
    Ok(failed)
}

fn fetch_topology(client: &Client, url: &str, base: &Path) -> Result<Value> {
    let text = if url.starts_with("http://") || url.starts_with("https://") {
        client
            .http
            .get(url)
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.text())
            .with_context(|| format!("cannot fetch {url}"))?
    } else {
        let path = base.join(url);
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?
    };
    serde_json::from_str(&text).with_context(|| format!("{url}: not JSON"))
}
