//! Who may do what on the HTTP listener.
//!
//! * **Tokens**: operators (control methods, triggers, and everything a viewer may do) and
//!   viewers (the page's data, playback, events, metrics). They come from `--tokens FILE`
//!   (lines `operator TOKEN` / `viewer TOKEN`, `#` comments) and from `VIGIL_OPERATOR_TOKEN` /
//!   `VIGIL_VIEWER_TOKEN`. A request carries one as `Authorization: Bearer TOKEN` or as the
//!   `vigil_token` cookie the page's sign-in sets (HttpOnly, SameSite=Strict). Without any token
//!   configured nothing is asked, and the service listens on loopback only (checked at start).
//!   `/healthz`, the page itself and its script are open: they hold no data.
//! * **Cross-site requests**: a state-changing request (POST) must say `Content-Type:
//!   application/json` (a form or a no-cors `fetch` from another site cannot) and, when it
//!   carries an `Origin`, come from this very host.
//! * **DNS rebinding**: the `Host` a request names must be an IP address, `localhost`, or a
//!   name given with `--allowed-host`.
//! * **Guessing**: wrong tokens are counted per client address and throttled
//!   ([`super::auth_throttle`]): 10, then one every 10 s; a throttled client gets 429.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use serde_json::json;
use sha2::{Digest, Sha256};

/// What a token allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads: the page's data, playback, events, metrics.
    Viewer,
    /// Everything: control methods and triggers too.
    Operator,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }
}

/// The configured tokens, kept as SHA-256 digests.
#[derive(Clone, Default)]
pub struct Tokens {
    keys: Vec<([u8; 32], Role)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.keys.len())
    }
}

/// Shortest token accepted: a guessable token is no protection.
pub const MIN_TOKEN_LEN: usize = 16;

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    /// Reads `file` (if any) and the `VIGIL_OPERATOR_TOKEN` / `VIGIL_VIEWER_TOKEN` variables.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let mut tokens = Self::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the tokens file {}", path.display()))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let where_ = format!("{}:{}", path.display(), n + 1);
                let (role, token) = line.split_once(char::is_whitespace).with_context(|| {
                    format!("{where_}: expected `operator TOKEN` or `viewer TOKEN`")
                })?;
                let role = match role {
                    "operator" => Role::Operator,
                    "viewer" => Role::Viewer,
                    other => bail!("{where_}: unknown role '{other}' (operator or viewer)"),
                };
                tokens.add(role, token.trim(), &where_)?;
            }
        }
        for (var, role) in [
            ("VIGIL_OPERATOR_TOKEN", Role::Operator),
            ("VIGIL_VIEWER_TOKEN", Role::Viewer),
        ] {
            if let Ok(token) = std::env::var(var)
                && !token.is_empty()
            {
                tokens.add(role, &token, var)?;
            }
        }
        Ok(tokens)
    }

    /// Adds `token` for `role`; `origin` names where it came from, for the error.
    pub fn add(&mut self, role: Role, token: &str, origin: &str) -> Result<()> {
        if token.chars().count() < MIN_TOKEN_LEN || token.chars().any(char::is_whitespace) {
            bail!("{origin}: a token must be at least {MIN_TOKEN_LEN} characters without spaces");
        }
        self.keys.push((digest(token), role));
        Ok(())
    }

    /// Whether no token is configured (then nothing is asked).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The role `token` gives (compared in constant time).
    pub fn role_of(&self, token: &str) -> Option<Role> {
        let given = digest(token);
        let mut found = None;
        for (key, role) in &self.keys {
            let same = key
                .iter()
                .zip(given.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
            if same {
                found = found.max(Some(*role));
            }
        }
        found
    }
}

/// The listener's rules.
#[derive(Clone, Debug, Default)]
pub struct AccessPolicy {
    /// Tokens; none: nothing is asked (loopback only).
    pub tokens: Tokens,
    /// Host names besides IP addresses and `localhost` that requests may name.
    pub allowed_hosts: Vec<String>,
    /// The listener serves HTTPS: the sign-in cookie is marked `Secure`.
    pub secure_cookie: bool,
    /// Wrong tokens per client address (shared by the policy's clones).
    pub throttle: Arc<super::auth_throttle::AuthThrottle>,
    /// Where a throttled client is reported (`ClientThrottled`); none: the log only.
    pub events: Option<crate::bus::event_log::EventBus>,
}

/// Why a presented token was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// The client used up its wrong tokens; it may try again after this long.
    Throttled(Duration),
    /// The token is not one of ours.
    WrongToken,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Throttled(wait) => too_many(wait),
            Refusal::WrongToken => refuse(
                StatusCode::UNAUTHORIZED,
                "this token is not valid here".into(),
            ),
        }
    }
}

impl AccessPolicy {
    /// The role of the token `ip` presents: refused while `ip` is throttled, or when wrong
    /// (counted; the client's tenth in a row is logged).
    fn judge(&self, ip: Option<IpAddr>, token: &str) -> Result<Role, Refusal> {
        let now = Instant::now();
        if let Some(ip) = ip
            && let Err(wait) = self.throttle.check(ip, now)
        {
            return Err(Refusal::Throttled(wait));
        }
        match self.tokens.role_of(token) {
            Some(role) => Ok(role),
            None => {
                if let Some(ip) = ip
                    && let Some(client) = self.throttle.wrong_token(ip, now)
                {
                    self.report_throttled(client);
                }
                Err(Refusal::WrongToken)
            }
        }
    }

    /// Reports that `client` used up its wrong tokens (`ClientThrottled`, subject `/api`), or
    /// logs it when there is no bus.
    fn report_throttled(&self, client: String) {
        use super::auth_throttle::{BURST, REFILL};
        let detail = format!(
            "{BURST} wrong tokens from {client}: its requests with a token are refused (429) for {} s, then one more guess is allowed every {} s",
            REFILL.as_secs(),
            REFILL.as_secs()
        );
        let Some(bus) = &self.events else {
            tracing::warn!("{detail}");
            return;
        };
        bus.emit(crate::bus::event::Event::new(
            crate::bus::event::EventClass::Diagnostics,
            "ClientThrottled",
            "/api".into(),
            crate::nodes::rtsp_source::wall_now(),
            serde_json::json!({
                "client": client,
                "wrongTokens": BURST,
                "retryInSeconds": REFILL.as_secs(),
                "detail": detail,
            }),
        ));
    }
}

/// `429 Too Many Requests` with `Retry-After` in whole seconds.
fn too_many(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = refuse(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many wrong tokens from this address: try again in {seconds} s"),
    );
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The address a connection comes from, recorded by the listener for every request
/// (`into_make_service_with_connect_info::<ClientAddr>`), over TCP or TLS.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, crate::tls::server::TlsListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, crate::tls::server::TlsListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// The client's address, when the listener records it.
fn client_ip(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<ClientAddr>>()
        .map(|info| info.0.0.ip())
}

/// Refuses a listener off loopback when no token is configured.
pub fn check_listener(address: &std::net::SocketAddr, policy: &AccessPolicy) -> Result<()> {
    if policy.tokens.is_empty() && !address.ip().is_loopback() {
        bail!(
            "refusing to listen on {address} without tokens: anyone who reaches it could control the service; give --tokens FILE or VIGIL_OPERATOR_TOKEN, or listen on 127.0.0.1"
        );
    }
    Ok(())
}

/// Name of the cookie the page's sign-in sets.
pub const COOKIE: &str = "vigil_token";

fn refuse(status: StatusCode, why: String) -> Response {
    let mut response = (status, axum::Json(json!({ "error": why }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The host a request names, without its port.
fn host_of(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                name
            } else {
                host
            }
        })
    };
    Some(name.to_ascii_lowercase())
}

fn host_allowed(name: &str, policy: &AccessPolicy) -> bool {
    name.parse::<std::net::IpAddr>().is_ok()
        || name == "localhost"
        || policy
            .allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
}

/// The token a request carries: `Authorization: Bearer`, else the sign-in cookie.
pub fn token_of(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return value.strip_prefix("Bearer ").map(|t| t.trim().to_string());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then(|| value.to_string())
        })
}

/// Whether a POST is a JSON request from this host (not a form or a no-cors fetch from
/// another site).
fn same_site_json(headers: &HeaderMap, host: &str) -> Result<(), (StatusCode, String)> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a request that changes something must be sent with Content-Type: application/json"
                .into(),
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let origin_host = origin
            .split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/'))
            .unwrap_or("");
        let request_host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(host);
        if !origin_host.eq_ignore_ascii_case(request_host) {
            return Err((
                StatusCode::FORBIDDEN,
                format!("a request from {origin} may not change anything here"),
            ));
        }
    }
    Ok(())
}

/// What a request needs: nothing (health, the page, sign-in), a viewer or an operator.
fn needed(method: &Method, path: &str) -> Option<Role> {
    let open = path == "/healthz"
        || path == "/"
        || path.starts_with("/assets/")
        || path == "/api/session"
        || path == "/api/login"
        || path == "/api/logout";
    if open {
        None
    } else if method == Method::GET || method == Method::HEAD {
        Some(Role::Viewer)
    } else {
        Some(Role::Operator)
    }
}

/// The middleware: checks `Host`, then a POST's type and origin, then the token.
pub async fn guard(
    State(policy): State<Arc<AccessPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let Some(host) = host_of(headers) else {
        return refuse(StatusCode::BAD_REQUEST, "the request has no Host".into());
    };
    if !host_allowed(&host, &policy) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this service does not answer for '{host}' (give --allowed-host {host} if it should)"
            ),
        );
    }
    let method = request.method().clone();
    if method == Method::POST
        && let Err((status, why)) = same_site_json(headers, &host)
    {
        return refuse(status, why);
    }
    if let Some(role) = needed(&method, request.uri().path())
        && !policy.tokens.is_empty()
    {
        let Some(token) = token_of(headers) else {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "sign in: send Authorization: Bearer TOKEN".into(),
            );
        };
        match policy.judge(client_ip(&request), &token) {
            Err(refusal) => return refusal.into_response(),
            Ok(have) if have < role => {
                return refuse(
                    StatusCode::FORBIDDEN,
                    format!(
                        "a {} token cannot do this; an operator token can",
                        have.as_str()
                    ),
                );
            }
            Ok(_) => {}
        }
    }
    next.run(request).await
}

/// `GET /api/session`: whether tokens are asked, and the role of the caller's.
///
/// A token checked here counts like anywhere else (this route would otherwise let anyone test
/// tokens unthrottled); while the client is throttled its token is not checked and the role
/// is null, so the page shows its sign-in form.
pub async fn session(
    State(policy): State<Arc<AccessPolicy>>,
    client: Option<axum::Extension<ConnectInfo<ClientAddr>>>,
    headers: HeaderMap,
) -> Response {
    let role = if policy.tokens.is_empty() {
        Some(Role::Operator)
    } else {
        let ip = client.map(|c| c.0.0.0.ip());
        token_of(&headers).and_then(|t| policy.judge(ip, &t).ok())
    };
    axum::Json(json!({
        "authRequired": !policy.tokens.is_empty(),
        "role": role.map(Role::as_str),
    }))
    .into_response()
}

/// `POST /api/login` `{"token"}`: sets the sign-in cookie when the token is valid.
pub async fn login(
    State(policy): State<Arc<AccessPolicy>>,
    client: Option<axum::Extension<ConnectInfo<ClientAddr>>>,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> Response {
    let token = body["token"].as_str().unwrap_or("");
    let ip = client.map(|c| c.0.0.0.ip());
    match policy.judge(ip, token) {
        Err(refusal) => refusal.into_response(),
        Ok(role) if token.bytes().all(|b| b.is_ascii_graphic() && b != b';') => {
            let secure = if policy.secure_cookie { "; Secure" } else { "" };
            let cookie = format!(
                "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age=2592000{secure}"
            );
            let mut response = axum::Json(json!({ "role": role.as_str() })).into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Ok(_) => Refusal::WrongToken.into_response(),
    }
}

/// `POST /api/logout`: clears the sign-in cookie.
pub async fn logout() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("vigil_token=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn tokens_give_their_role_and_short_ones_are_refused() {
        let mut t = Tokens::default();
        t.add(Role::Viewer, "viewer-token-0123456789", "test")
            .expect("ok");
        t.add(Role::Operator, "operator-token-0123456789", "test")
            .expect("ok");
        assert_eq!(t.role_of("viewer-token-0123456789"), Some(Role::Viewer));
        assert_eq!(t.role_of("operator-token-0123456789"), Some(Role::Operator));
        assert_eq!(t.role_of("operator-token-012345678"), None);
        assert!(t.add(Role::Operator, "short", "test").is_err());
    }

    #[test]
    fn hosts_are_ip_addresses_localhost_or_allowed_names() {
        let policy = AccessPolicy {
            allowed_hosts: vec!["nvr.example".into()],
            ..AccessPolicy::default()
        };
        for (host, ok) in [
            ("127.0.0.1:7878", true),
            ("[::1]:7878", true),
            ("192.168.1.9", true),
            ("localhost:7878", true),
            ("NVR.example:443", true),
            ("evil.example:7878", false),
        ] {
            let name = host_of(&headers(&[("host", host)])).expect("host");
            assert_eq!(host_allowed(&name, &policy), ok, "{host}");
        }
    }

    #[test]
    fn a_post_must_be_json_from_this_host() {
        let ok = headers(&[
            ("host", "127.0.0.1:7878"),
            ("content-type", "application/json; charset=utf-8"),
            ("origin", "http://127.0.0.1:7878"),
        ]);
        assert!(same_site_json(&ok, "127.0.0.1").is_ok());
        let form = headers(&[("host", "127.0.0.1:7878"), ("content-type", "text/plain")]);
        assert!(same_site_json(&form, "127.0.0.1").is_err());
        let other = headers(&[
            ("host", "127.0.0.1:7878"),
            ("content-type", "application/json"),
            ("origin", "http://evil.example"),
        ]);
        assert!(same_site_json(&other, "127.0.0.1").is_err());
    }

    #[test]
    fn the_token_comes_from_the_header_or_the_cookie() {
        let bearer = headers(&[("authorization", "Bearer abc")]);
        assert_eq!(token_of(&bearer).as_deref(), Some("abc"));
        let cookie = headers(&[("cookie", "a=1; vigil_token=xyz; b=2")]);
        assert_eq!(token_of(&cookie).as_deref(), Some("xyz"));
        assert_eq!(token_of(&HeaderMap::new()), None);
    }
}
