//! Who may call the HTTP listener: tokens (operator, viewer), the sign-in cookie, JSON-only
//! same-origin state changes, `Host` checks, and no listening off loopback without tokens.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::json;
use support::peers::free_port;
use support::service::{serve, serve_with};
use support::temp_dir;

const OPERATOR: &str = "operator-token-for-the-tests-0001";
const VIEWER: &str = "viewer-token-for-the-tests-00001";

/// curl with `args`; (HTTP status, headers, body).
fn curl(args: &[&str]) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "-"])
        .args(args)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn tokens_file(dir: &Path) -> String {
    let path = dir.join("tokens");
    std::fs::write(
        &path,
        format!("# who may do what\noperator {OPERATOR}\nviewer {VIEWER}\n"),
    )
    .expect("write tokens");
    path.display().to_string()
}

#[test]
fn off_loopback_the_service_needs_tokens() {
    let dir = temp_dir("auth-open");
    let port = free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--http", &format!("0.0.0.0:{port}")])
        .output()
        .expect("vigil runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0") && stderr.contains("--tokens"),
        "{stderr}"
    );
    let short = dir.join("short");
    std::fs::write(&short, "operator abc\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["serve", "--data-dir"])
        .arg(dir.join("data"))
        .arg("--tokens")
        .arg(&short)
        .output()
        .expect("vigil runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("short:1") && stderr.contains("at least 16"),
        "{stderr}"
    );
}

#[test]
fn tokens_roles_cookie_origin_and_host_are_enforced() {
    let dir = temp_dir("auth-tokens");
    let port = free_port();
    let tokens = tokens_file(&dir);
    let mut vigil = serve_with(
        &dir,
        port,
        &[
            "--data-dir",
            dir.join("data").to_str().expect("path"),
            "--tokens",
            &tokens,
            "--http",
            &format!("0.0.0.0:{port}"),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    let bearer = |t: &str| format!("authorization: Bearer {t}");
    let json = "content-type: application/json";
    let list = format!("{base}/api/methods/pipelineTopologyList");

    assert_eq!(curl(&[&format!("{base}/healthz")]).0, 200);
    assert_eq!(
        curl(&[&format!("{base}/")]).0,
        200,
        "the page itself is open"
    );
    let (status, head, _) = curl(&[&format!("{base}/api/pipelines")]);
    assert_eq!(status, 401);
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{head}"
    );
    assert_eq!(curl(&[&format!("{base}/metrics")]).0, 401);
    assert_eq!(
        curl(&[
            "-H",
            &bearer("wrong-token-wrong-token"),
            &format!("{base}/metrics")
        ])
        .0,
        401
    );
    assert_eq!(
        curl(&["-H", &bearer(VIEWER), &format!("{base}/api/pipelines")]).0,
        200
    );
    assert_eq!(
        curl(&["-H", &bearer(VIEWER), &format!("{base}/metrics")]).0,
        200
    );
    // A viewer may not change anything; an operator may.
    let (status, _, body) = curl(&["-H", &bearer(VIEWER), "-H", json, "-d", "{}", &list]);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("operator token"), "{body}");
    let (status, _, body) = curl(&["-H", &bearer(OPERATOR), "-H", json, "-d", "{}", &list]);
    assert_eq!(status, 200, "{body}");
    // Not JSON, or from another site: refused before anything runs.
    let trigger = format!("{base}/pipelines/p/inputs/recordingTrigger");
    let (status, _, body) = curl(&[
        "-H",
        &bearer(OPERATOR),
        "-H",
        "content-type: text/plain",
        "-d",
        "{}",
        &trigger,
    ]);
    assert_eq!(status, 415, "{body}");
    let (status, _, body) = curl(&[
        "-H",
        &bearer(OPERATOR),
        "-H",
        json,
        "-H",
        "origin: http://evil.example",
        "-d",
        "{}",
        &list,
    ]);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("evil.example"), "{body}");
    // DNS rebinding: a name the service was not told about.
    let (status, _, body) = curl(&[
        "-H",
        &bearer(VIEWER),
        "-H",
        "host: evil.example",
        &format!("{base}/api/pipelines"),
    ]);
    assert_eq!(status, 421, "{body}");

    // The page's sign-in: a cookie that is HttpOnly and SameSite=Strict.
    let login = format!("{base}/api/login");
    let payload = json!({ "token": VIEWER }).to_string();
    let (status, head, body) = curl(&["-H", json, "-d", &payload, &login]);
    assert_eq!(status, 200, "{body}");
    let cookie = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie:")
                .then(|| l.to_string())
        })
        .expect("a cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie
        .split_once(':')
        .and_then(|(_, v)| v.trim().split(';').next())
        .expect("cookie pair")
        .to_string();
    assert_eq!(
        curl(&[
            "-H",
            &format!("cookie: {pair}"),
            &format!("{base}/api/pipelines")
        ])
        .0,
        200
    );
    let (status, _, session) = curl(&[
        "-H",
        &format!("cookie: {pair}"),
        &format!("{base}/api/session"),
    ]);
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&session).expect("JSON"),
        json!({"authRequired": true, "role": "viewer"})
    );
    let bad = json!({ "token": "not-a-token-not-a-token" }).to_string();
    assert_eq!(curl(&["-H", json, "-d", &bad, &login]).0, 401);

    // The command-line client sends VIGIL_TOKEN.
    let client = |token: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vigil"));
        c.args(["topology", "list", "--server", &base]);
        match token {
            Some(t) => c.env("VIGIL_TOKEN", t),
            None => c.env_remove("VIGIL_TOKEN"),
        };
        c.output().expect("vigil runs")
    };
    let out = client(Some(OPERATOR));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = client(None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("HTTP 401") && stderr.contains("VIGIL_TOKEN"),
        "{stderr}"
    );
    vigil.interrupt();
}

/// Without tokens (loopback), a page on another site still cannot start a recording: its
/// no-cors POST can only be `text/plain`, and it names its origin.
#[test]
fn a_cross_site_post_cannot_trigger_without_tokens() {
    let dir = temp_dir("auth-csrf");
    let port = free_port();
    let mut vigil = serve(&dir, port, &[]);
    let trigger = format!("http://127.0.0.1:{port}/pipelines/p/inputs/recordingTrigger");
    let (status, _, body) = curl(&[
        "-H",
        "content-type: text/plain",
        "-H",
        "origin: http://evil.example",
        "-d",
        "{}",
        &trigger,
    ]);
    assert_eq!(status, 415, "{body}");
    let (status, _, body) = curl(&[
        "-H",
        "content-type: application/json",
        "-H",
        "origin: http://evil.example",
        "-d",
        "{}",
        &trigger,
    ]);
    assert_eq!(status, 403, "{body}");
    // The same request from this host reaches the route (no such pipeline here).
    let (status, _, body) = curl(&[
        "-H",
        "content-type: application/json",
        "-H",
        &format!("origin: http://127.0.0.1:{port}"),
        "-d",
        "{}",
        &trigger,
    ]);
    assert_eq!(status, 404, "{body}");
    vigil.interrupt();
}

/// Wrong tokens are throttled per client address: ten are answered 401, then every request
/// with a token from that address, right or wrong, gets 429 with `Retry-After` (sign-in
/// included) and the service reports it once (`ClientThrottled`); another address is not
/// affected.
#[test]
fn wrong_tokens_are_throttled_per_address() {
    let dir = temp_dir("auth-throttle");
    let port = free_port();
    let tokens = tokens_file(&dir);
    let mut vigil = serve(&dir, port, &["--tokens", &tokens]);
    let base = format!("http://127.0.0.1:{port}");
    let metrics = format!("{base}/metrics");
    let bearer = |t: &str| format!("authorization: Bearer {t}");
    let session = format!("{base}/api/session");
    for n in 1..=10 {
        let guess = format!("guessed-token-number-{n:04}");
        if n <= 5 {
            assert_eq!(curl(&["-H", &bearer(&guess), &metrics]).0, 401, "guess {n}");
        } else {
            // The page's session route tells a token's role: its guesses count too.
            let (status, _, body) = curl(&["-H", &bearer(&guess), &session]);
            assert_eq!(status, 200, "guess {n}");
            assert!(body.contains("\"role\":null"), "guess {n}: {body}");
        }
    }
    let (status, head, body) = curl(&["-H", &bearer("guessed-token-number-0011"), &metrics]);
    assert_eq!(status, 429, "{head}{body}");
    let retry: u64 = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after:")
                .map(|v| v.trim().to_string())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After in {head}"));
    assert!((1..=10).contains(&retry), "{head}");
    assert!(body.contains("too many wrong tokens"), "{body}");
    // The right token is not even checked while throttled, nor is a sign-in, nor does the
    // session route tell its role.
    assert_eq!(curl(&["-H", &bearer(VIEWER), &metrics]).0, 429);
    let (status, _, body) = curl(&["-H", &bearer(VIEWER), &session]);
    assert_eq!(status, 200);
    assert!(body.contains("\"role\":null"), "{body}");
    let login = json!({ "token": OPERATOR }).to_string();
    assert_eq!(
        curl(&[
            "-H",
            "content-type: application/json",
            "-d",
            &login,
            &format!("{base}/api/login")
        ])
        .0,
        429
    );
    // Requests without a token are not guesses: 401 as before, and the open routes stay open.
    assert_eq!(curl(&[&metrics]).0, 401);
    assert_eq!(curl(&[&format!("{base}/healthz")]).0, 200);
    // Another address (127.0.0.2 reaches the loopback listener) has its own allowance.
    assert_eq!(
        curl(&["--interface", "127.0.0.2", "-H", &bearer(VIEWER), &metrics]).0,
        200
    );
    // Reported once, as an event (in the log, on MQTT and NATS), naming the client.
    let events = std::fs::read_to_string(dir.join("events.jsonl")).expect("event log");
    let throttled: Vec<serde_json::Value> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| {
            e["properties"]["eventType"] == "Microsoft.VideoAnalyzer.Diagnostics.ClientThrottled"
        })
        .collect();
    assert_eq!(throttled.len(), 1, "{events}");
    assert_eq!(throttled[0]["properties"]["subject"], "/api");
    assert_eq!(throttled[0]["body"]["client"], "127.0.0.1");
    assert_eq!(throttled[0]["body"]["wrongTokens"], 10);
    assert_eq!(throttled[0]["body"]["retryInSeconds"], 10);
    vigil.interrupt();
}
