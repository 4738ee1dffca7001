//! An S3-compatible object store: `--store s3://bucket/prefix`, the endpoint and credentials from
//! the environment as S3 tools take them (`AWS_ENDPOINT_URL` or `AWS_ENDPOINT_URL_S3`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`, `AWS_REGION`).
//! Path-style requests, SigV4-signed. Segment `<prefix>/<video>/<clip>-<seq>.mp4`.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use super::catalog::SegmentRow;
use super::sigv4::{Credentials, sha256_hex, sign, uri_encode};

/// What a download or any other request but an upload may take.
const DOWNLOAD_DEADLINE: Duration = Duration::from_secs(30);
/// What an upload may take at least (plus a second per MiB it carries).
const UPLOAD_DEADLINE_BASE: Duration = Duration::from_secs(10);

/// A bucket (and key prefix) in an S3-compatible store.
pub struct ObjectStore {
    http: reqwest::blocking::Client,
    endpoint: url::Url,
    bucket: String,
    prefix: String,
    credentials: Credentials,
}

impl std::fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "s3://{}/{} at {}",
            self.bucket, self.prefix, self.endpoint
        )
    }
}

impl ObjectStore {
    /// The store named by `s3://bucket/prefix`, endpoint and credentials from the environment.
    pub fn from_env(store: &str) -> Result<Self> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let rest = store
            .strip_prefix("s3://")
            .ok_or_else(|| anyhow!("--store must look like s3://bucket/prefix, not '{store}'"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            bail!("--store '{store}' names no bucket");
        }
        let region = env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let endpoint = env("AWS_ENDPOINT_URL_S3")
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let endpoint = url::Url::parse(&endpoint)
            .with_context(|| format!("AWS_ENDPOINT_URL '{endpoint}' is not a URL"))?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            bail!("the object store endpoint must be http:// or https://: {endpoint}");
        }
        let credentials = Credentials {
            access_key: env("AWS_ACCESS_KEY_ID")
                .ok_or_else(|| anyhow!("AWS_ACCESS_KEY_ID is not set (needed by --store)"))?,
            secret_key: env("AWS_SECRET_ACCESS_KEY")
                .ok_or_else(|| anyhow!("AWS_SECRET_ACCESS_KEY is not set (needed by --store)"))?,
            session_token: env("AWS_SESSION_TOKEN"),
            region,
        };
        let http = crate::tls::http_client_builder()?
            .timeout(DOWNLOAD_DEADLINE)
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| anyhow!("cannot create an HTTP client: {e}"))?;
        Ok(Self {
            http,
            endpoint,
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            credentials,
        })
    }

    /// The key of a segment.
    pub fn segment_key(&self, s: &SegmentRow) -> String {
        self.key(&format!("{}/{:08}-{:04}.mp4", s.video, s.clip, s.seq))
    }

    /// `<prefix>/<name>`.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    fn request(
        &self,
        method: &str,
        key: Option<&str>,
        body: Vec<u8>,
    ) -> Result<reqwest::blocking::Response> {
        self.request_with(method, key, body, &[])
    }

    /// A signed request with `more` headers besides `host` (signed too).
    fn request_with(
        &self,
        method: &str,
        key: Option<&str>,
        body: Vec<u8>,
        more: &[(String, String)],
    ) -> Result<reqwest::blocking::Response> {
        let path = match key {
            Some(k) => format!("/{}/{}", self.bucket, k),
            None => format!("/{}", self.bucket),
        };
        let host = match self.endpoint.port() {
            Some(p) => format!("{}:{p}", self.endpoint.host_str().unwrap_or_default()),
            None => self.endpoint.host_str().unwrap_or_default().to_string(),
        };
        let now = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let payload = sha256_hex(&body);
        let mut headers = vec![("host".to_string(), host)];
        headers.extend(more.iter().cloned());
        let auth = sign(
            method,
            &path,
            &[],
            &headers,
            &payload,
            &self.credentials,
            &now,
        );
        let base = self.endpoint.as_str().trim_end_matches('/');
        let url = format!("{base}{}", uri_encode(&path, true));
        // An upload gets 10 s plus a second per MiB, anything else 30 s: a store that stopped
        // answering is reported as one (it used to hang for 60 s, unreported).
        let deadline = (method == "PUT")
            .then(|| UPLOAD_DEADLINE_BASE + Duration::from_secs((body.len() >> 20) as u64));
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut request = self.http.request(method, url).body(body);
        if let Some(deadline) = deadline {
            request = request.timeout(deadline);
        }
        for (k, v) in more.iter().cloned().chain(auth) {
            request = request.header(k, v);
        }
        // Its causes print with `{:#}`, as every caller formats errors.
        Ok(request.send()?)
    }

    fn check(response: reqwest::blocking::Response, what: &str) -> Result<Vec<u8>> {
        let status = response.status();
        let body = response.bytes().map(|b| b.to_vec()).unwrap_or_default();
        if status.is_success() {
            return Ok(body);
        }
        let text = String::from_utf8_lossy(&body);
        let code = text
            .split("<Code>")
            .nth(1)
            .and_then(|t| t.split("</Code>").next())
            .unwrap_or("");
        bail!("{what}: HTTP {} {code}", status.as_u16())
    }

    /// Creates the bucket if it does not exist.
    pub fn ensure_bucket(&self) -> Result<()> {
        let response = self.request("PUT", None, Vec::new())?;
        match response.status().as_u16() {
            200 | 409 => Ok(()),
            _ => Self::check(response, &format!("creating bucket {}", self.bucket)).map(|_| ()),
        }
    }

    /// Uploads an object.
    pub fn put(&self, key: &str, body: Vec<u8>) -> Result<()> {
        let response = self.request("PUT", Some(key), body)?;
        Self::check(response, &format!("PUT {key}")).map(|_| ())
    }

    /// Downloads an object; `None` when it does not exist.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let response = self.request("GET", Some(key), Vec::new())?;
        if response.status().as_u16() == 404 {
            return Ok(None);
        }
        Self::check(response, &format!("GET {key}")).map(Some)
    }

    /// Downloads bytes `first..=last` of an object (HTTP `Range`); `None` when it does not
    /// exist. A store that ignores the range and sends the whole object is cut to it.
    pub fn get_range(&self, key: &str, first: u64, last: u64) -> Result<Option<Vec<u8>>> {
        let range = [("range".to_string(), format!("bytes={first}-{last}"))];
        let response = self.request_with("GET", Some(key), Vec::new(), &range)?;
        let status = response.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        let whole = status == 200;
        let mut bytes = Self::check(response, &format!("GET {key} bytes {first}-{last}"))?;
        if whole {
            let end = usize::try_from(last.saturating_add(1))
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            let start = usize::try_from(first).unwrap_or(usize::MAX).min(end);
            bytes = bytes[start..end].to_vec();
        }
        Ok(Some(bytes))
    }

    /// Deletes an object (absent is fine).
    pub fn delete(&self, key: &str) -> Result<()> {
        let response = self.request("DELETE", Some(key), Vec::new())?;
        match response.status().as_u16() {
            200 | 204 | 404 => Ok(()),
            _ => Self::check(response, &format!("DELETE {key}")).map(|_| ()),
        }
    }
}
