//! The archive's object store: S3 (AWS or any S3-compatible server), Azure Blob Storage, Google
//! Cloud Storage or a local folder, through Apache Arrow's `object_store` crate (signing,
//! multipart uploads, ranged reads). `--store` names it (see [`StoreLocation`]); requests go over
//! Vigil's own HTTP client, so HTTPS trusts the system's roots plus `--ca-file`. Segment keys are
//! `<prefix>/<video>/<clip>-<seq>.mp4`.
//!
//! The archive keeper and playback call it from plain threads: each call runs on the store's own
//! I/O thread and has a deadline (an upload 10 s plus a second per MiB, anything else 30 s), and
//! a store silent for 10 s while an answer is due fails the request, so a store that stops
//! answering is reported instead of hanging. A failed request is tried twice
//! more (transient errors, 0.1 s and 0.2 s apart); the keeper's own back-off does the rest.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use object_store::client::{HttpClient, HttpConnector};
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStoreExt, PutPayload, RetryConfig};

use super::catalog::SegmentRow;
pub use super::store_location::StoreLocation;
use super::store_location::{AzureAuth, Env, azure_settings, process_env, s3_settings};

/// What a download or any other request but an upload may take.
const DOWNLOAD_DEADLINE: Duration = Duration::from_secs(30);
/// What an upload may take at least (plus a second per MiB it carries).
const UPLOAD_DEADLINE_BASE: Duration = Duration::from_secs(10);
/// A store silent this long while an answer is awaited has stopped answering (a frozen server
/// with its connections open): the request fails then, whatever its deadline.
const SILENCE: Duration = Duration::from_secs(10);
/// Objects above this size go up in parts of this size (S3 wants parts of 5 MiB or more).
pub const MULTIPART_PART: usize = 8 << 20;

/// A bucket, container or folder, and the key prefix in it.
pub struct ObjectStore {
    inner: Arc<dyn object_store::ObjectStore>,
    /// The store's I/O thread; taken on drop (shut down without waiting, from any context).
    io: Option<tokio::runtime::Runtime>,
    location: StoreLocation,
    /// What `--store` said, for messages and events.
    url: String,
}

impl std::fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl Drop for ObjectStore {
    fn drop(&mut self) {
        if let Some(io) = self.io.take() {
            io.shutdown_background();
        }
    }
}

/// Builds `object_store`'s HTTP clients with Vigil's TLS trust (system roots plus `--ca-file`).
#[derive(Debug)]
struct VigilHttp;

impl HttpConnector for VigilHttp {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let generic = |e: String| object_store::Error::Generic {
            store: "http client",
            source: e.into(),
        };
        let tls = crate::tls::client_config().map_err(|e| generic(e.to_string()))?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .connect_timeout(Duration::from_secs(3))
            .read_timeout(SILENCE)
            .build()
            .map_err(|e| generic(format!("cannot create an HTTP client: {e}")))?;
        Ok(HttpClient::new(client))
    }
}

impl ObjectStore {
    /// The store named by a `--store` URL, credentials and endpoint from the environment.
    pub fn from_env(url: &str) -> Result<Self> {
        Self::from_env_with(url, &process_env)
    }

    /// The store named by `url`, credentials and endpoint from `env`.
    pub fn from_env_with(url: &str, env: Env) -> Result<Self> {
        let location = StoreLocation::parse(url)?;
        let retry = RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(5),
            backoff: object_store::BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
                base: 2.0,
            },
        };
        let inner: Arc<dyn object_store::ObjectStore> = match &location {
            StoreLocation::S3 { bucket, .. } => {
                let s = s3_settings(env)?;
                let mut b = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_region(&s.region)
                    .with_retry(retry)
                    .with_http_connector(VigilHttp);
                if let Some((id, secret, token)) = s.keys {
                    b = b.with_access_key_id(id).with_secret_access_key(secret);
                    if let Some(t) = token {
                        b = b.with_token(t);
                    }
                }
                if let Some(endpoint) = s.endpoint {
                    // Another S3 server: path-style, as most of them expect.
                    b = b
                        .with_allow_http(endpoint.scheme() == "http")
                        .with_endpoint(endpoint.as_str().trim_end_matches('/'))
                        .with_virtual_hosted_style_request(false);
                }
                Arc::new(b.build().context("S3 store")?)
            }
            StoreLocation::Azure { container, .. } => {
                let s = azure_settings(env)?;
                let mut b = object_store::azure::MicrosoftAzureBuilder::new()
                    .with_account(&s.account)
                    .with_container_name(container)
                    .with_retry(retry)
                    .with_http_connector(VigilHttp);
                b = match s.auth {
                    AzureAuth::Key(key) => b.with_access_key(key),
                    AzureAuth::Sas(sas) => {
                        b.with_config(object_store::azure::AzureConfigKey::SasKey, sas)
                    }
                };
                if let Some(endpoint) = s.endpoint {
                    b = b
                        .with_allow_http(endpoint.scheme() == "http")
                        .with_endpoint(endpoint.as_str().trim_end_matches('/').to_string());
                }
                Arc::new(b.build().context("Azure Blob store")?)
            }
            StoreLocation::Gcs { bucket, .. } => {
                let b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(retry)
                    .with_http_connector(VigilHttp);
                Arc::new(b.build().context("Google Cloud Storage store")?)
            }
            StoreLocation::Local { dir } => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create the store folder {}", dir.display()))?;
                Arc::new(
                    object_store::local::LocalFileSystem::new_with_prefix(dir)
                        .with_context(|| format!("store folder {}", dir.display()))?,
                )
            }
        };
        let io = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("object-store")
            .enable_all()
            .build()
            .context("cannot start the object store's I/O thread")?;
        Ok(Self {
            inner,
            io: Some(io),
            location,
            url: url.to_string(),
        })
    }

    /// The key of a segment: `<video>/<clip>-<seq>.mp4`, or in a store a cluster shares
    /// `<video>/<origin>/<clip>-<seq>.mp4` (clip numbers are per installation).
    pub fn segment_key(&self, s: &SegmentRow) -> String {
        match &s.origin {
            None => self.key(&format!("{}/{:08}-{:04}.mp4", s.video, s.clip, s.seq)),
            Some(origin) => self.key(&format!(
                "{}/{origin}/{:08}-{:04}.mp4",
                s.video, s.clip, s.seq
            )),
        }
    }

    /// `<prefix>/<name>`.
    pub fn key(&self, name: &str) -> String {
        match self.location.prefix() {
            "" => name.to_string(),
            prefix => format!("{prefix}/{name}"),
        }
    }

    /// Runs `work` on the I/O thread, giving up after `deadline`.
    fn run<T>(
        &self,
        what: &str,
        deadline: Duration,
        work: impl Future<Output = object_store::Result<T>>,
    ) -> Result<T> {
        let io = self
            .io
            .as_ref()
            .ok_or_else(|| anyhow!("{what}: the object store is shut down"))?;
        // The timer is made inside the runtime (its clock lives there).
        match io.block_on(async { tokio::time::timeout(deadline, work).await }) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(anyhow!("{what}: {}", describe(&e))),
            Err(_) => bail!(
                "{what}: no answer from {} within {} s",
                self.url,
                deadline.as_secs()
            ),
        }
    }

    /// Checks that the bucket (container, folder) exists and answers: a listing of the prefix.
    pub fn check(&self) -> Result<()> {
        let prefix = ObjectPath::from(self.location.prefix());
        let listing = self.inner.list_with_delimiter(Some(&prefix));
        self.run(&format!("listing {}", self.url), DOWNLOAD_DEADLINE, listing)
            .map(|_| ())
    }

    /// Uploads an object: in one request, or in parts of [`MULTIPART_PART`] when larger.
    pub fn put(&self, key: &str, body: Vec<u8>) -> Result<()> {
        let path = ObjectPath::from(key);
        let deadline = UPLOAD_DEADLINE_BASE + Duration::from_secs((body.len() >> 20) as u64);
        let body = Bytes::from(body);
        let what = format!("PUT {key}");
        if body.len() <= MULTIPART_PART {
            let put = self.inner.put(&path, PutPayload::from(body));
            return self.run(&what, deadline, put).map(|_| ());
        }
        let store = self.inner.clone();
        let upload = async move {
            let mut upload = store.put_multipart(&path).await?;
            let parts: Vec<_> = (0..body.len())
                .step_by(MULTIPART_PART)
                .map(|at| {
                    let end = (at + MULTIPART_PART).min(body.len());
                    upload.put_part(PutPayload::from(body.slice(at..end)))
                })
                .collect();
            match futures::future::try_join_all(parts).await {
                Ok(_) => upload.complete().await,
                Err(e) => {
                    // The parts already stored are dropped, not billed forever.
                    let _ = upload.abort().await;
                    Err(e)
                }
            }
        };
        self.run(&what, deadline, upload).map(|_| ())
    }

    /// Downloads an object; `None` when it does not exist.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let path = ObjectPath::from(key);
        let get = async {
            match self.inner.get(&path).await {
                Ok(r) => r.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        };
        self.run(&format!("GET {key}"), DOWNLOAD_DEADLINE, get)
            .map(|b| b.map(|b| b.to_vec()))
    }

    /// Downloads bytes `first..=last` of an object (a ranged read); `None` when it does not
    /// exist. A range past the object's end is cut to it.
    pub fn get_range(&self, key: &str, first: u64, last: u64) -> Result<Option<Vec<u8>>> {
        let path = ObjectPath::from(key);
        let get = async {
            let options = object_store::GetOptions {
                range: Some(object_store::GetRange::Bounded(
                    first..last.saturating_add(1),
                )),
                ..Default::default()
            };
            match self.inner.get_opts(&path, options).await {
                Ok(r) => r.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        };
        self.run(
            &format!("GET {key} bytes {first}-{last}"),
            DOWNLOAD_DEADLINE,
            get,
        )
        .map(|b| b.map(|b| b.to_vec()))
    }

    /// Deletes an object (absent is fine).
    pub fn delete(&self, key: &str) -> Result<()> {
        let path = ObjectPath::from(key);
        let delete = async {
            match self.inner.delete(&path).await {
                Err(object_store::Error::NotFound { .. }) => Ok(()),
                other => other,
            }
        };
        self.run(&format!("DELETE {key}"), DOWNLOAD_DEADLINE, delete)
    }
}

/// An `object_store` error with its causes on one line (the store's own error code included:
/// `SignatureDoesNotMatch`, `AuthenticationFailed`, `NoSuchBucket`, ...).
fn describe(e: &object_store::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_store_keeps_what_it_is_given() {
        let dir = std::env::temp_dir().join(format!("vigil-store-{}", std::process::id()));
        let url = format!("file://{}", dir.display());
        let store = ObjectStore::from_env_with(&url, &|_| None).expect("store");
        store.check().expect("check");
        let big: Vec<u8> = (0..MULTIPART_PART * 2 + 5)
            .map(|i| (i % 251) as u8)
            .collect();
        store.put("v/00000001-0000.mp4", big.clone()).expect("put");
        assert_eq!(store.get("v/00000001-0000.mp4").unwrap(), Some(big.clone()));
        assert_eq!(
            store.get_range("v/00000001-0000.mp4", 10, 19).unwrap(),
            Some(big[10..20].to_vec())
        );
        assert_eq!(store.get("v/absent.mp4").unwrap(), None);
        store.delete("v/00000001-0000.mp4").expect("delete");
        store.delete("v/00000001-0000.mp4").expect("absent is fine");
        assert_eq!(store.get("v/00000001-0000.mp4").unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
