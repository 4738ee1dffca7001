#![allow(dead_code)]
//! The object stores the archive tests run against, each a real server: s3s-fs (S3, SigV4
//! checked, objects as files) and Azurite (Azure Blob Storage, shared-key signatures checked,
//! read back through Microsoft's SDK). Both are installed by scripts/setup-s3.sh.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::archive::{ACCESS_KEY, SECRET_KEY};
use super::peers::{Peer, free_port, wait_for_port};
use super::repo;

/// The bucket (S3) or container (Azure) every test uses.
pub const BUCKET: &str = "vigil";

/// Azurite's published development account and key (in Microsoft's docs; not a secret).
const AZURE_ACCOUNT: &str = "devstoreaccount1";
const AZURE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// A well-formed key that is not the account's.
const AZURE_WRONG_KEY: &str =
    "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleS13cm9uZw==";

/// Which kind of store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// S3 (s3s-fs).
    S3,
    /// Azure Blob Storage (Azurite).
    Azure,
}

/// TLS in front of a store: the certificate and key it serves, the CA that signed them.
#[derive(Clone, Debug)]
pub struct StoreTls {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM key.
    pub key: PathBuf,
    /// PEM CA certificate (Vigil's `--ca-file`).
    pub ca: PathBuf,
}

/// A store under test: its kind, its data folder and port. Made before the server runs, so a
/// test can point Vigil at a store that is down and [`TestStore::start`] it later.
#[derive(Clone, Debug)]
pub struct TestStore {
    /// Which server.
    pub kind: Kind,
    /// Its data folder.
    pub dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// HTTPS instead of HTTP.
    pub tls: Option<StoreTls>,
}

impl TestStore {
    /// A store of `kind` with its data under `dir`, on a free port, not started.
    pub fn new(kind: Kind, dir: &Path) -> Self {
        Self {
            kind,
            dir: dir.to_path_buf(),
            port: free_port(),
            tls: None,
        }
    }

    /// The same, served over HTTPS with `tls` (Azurite only: s3s-fs has no TLS).
    pub fn with_tls(mut self, tls: StoreTls) -> Self {
        assert_eq!(self.kind, Kind::Azure, "s3s-fs serves plain HTTP only");
        self.tls = Some(tls);
        self
    }

    /// Starts the server, waits for its port and creates the bucket or container.
    pub fn start(&self) -> Peer {
        std::fs::create_dir_all(&self.dir).expect("store dir");
        match self.kind {
            Kind::S3 => super::archive::s3_server(&self.dir, self.port),
            Kind::Azure => {
                let mut cmd = Command::new(tools().join("node_modules/.bin/azurite-blob"));
                cmd.args(["--blobHost", "127.0.0.1", "--blobPort"])
                    .arg(self.port.to_string())
                    .arg("--location")
                    .arg(&self.dir)
                    .args(["--silent", "--skipApiVersionCheck", "--loose"]);
                if let Some(tls) = &self.tls {
                    cmd.arg("--cert").arg(&tls.cert).arg("--key").arg(&tls.key);
                }
                let child = cmd
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("Azurite starts (scripts/setup-s3.sh installs it)");
                wait_for_port(self.port);
                let peer = Peer { child };
                let out = self.azure_blob(&["create", BUCKET]);
                assert!(
                    out.status.success(),
                    "creating the container: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                peer
            }
        }
    }

    /// `--store` for `prefix` in the test bucket or container.
    pub fn url(&self, prefix: &str) -> String {
        match self.kind {
            Kind::S3 => format!("s3://{BUCKET}/{prefix}"),
            Kind::Azure => format!("azure://{BUCKET}/{prefix}"),
        }
    }

    fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        match self.kind {
            Kind::S3 => format!("{scheme}://127.0.0.1:{}", self.port),
            Kind::Azure => format!("{scheme}://127.0.0.1:{}/{AZURE_ACCOUNT}", self.port),
        }
    }

    fn connection_string(&self, key: &str) -> String {
        format!(
            "DefaultEndpointsProtocol={};AccountName={AZURE_ACCOUNT};AccountKey={key};BlobEndpoint={};",
            if self.tls.is_some() { "https" } else { "http" },
            self.endpoint()
        )
    }

    /// The environment a Vigil needs to reach the store with the right credentials.
    pub fn env(&self) -> Vec<(String, String)> {
        match self.kind {
            Kind::S3 => super::archive::store_env(self.port, SECRET_KEY),
            Kind::Azure => vec![(
                "AZURE_STORAGE_CONNECTION_STRING".into(),
                self.connection_string(AZURE_KEY),
            )],
        }
    }

    /// The same with a wrong secret.
    pub fn env_with_wrong_secret(&self) -> Vec<(String, String)> {
        match self.kind {
            Kind::S3 => vec![
                ("AWS_ENDPOINT_URL".into(), self.endpoint()),
                ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
                ("AWS_SECRET_ACCESS_KEY".into(), "wrong-secret".into()),
                ("AWS_REGION".into(), "us-east-1".into()),
            ],
            Kind::Azure => vec![(
                "AZURE_STORAGE_CONNECTION_STRING".into(),
                self.connection_string(AZURE_WRONG_KEY),
            )],
        }
    }

    /// The store's error code for a request signed with a wrong secret.
    pub fn refusal_code(&self) -> &'static str {
        match self.kind {
            Kind::S3 => "SignatureDoesNotMatch",
            Kind::Azure => "AuthorizationFailure",
        }
    }

    /// The object at `key`, read by another client than Vigil's; `None` when absent.
    pub fn read(&self, key: &str) -> Option<Vec<u8>> {
        match self.kind {
            Kind::S3 => std::fs::read(self.dir.join(BUCKET).join(key)).ok(),
            Kind::Azure => {
                let out = self.azure_blob(&["get", BUCKET, key]);
                match out.status.code() {
                    Some(0) => Some(out.stdout),
                    Some(3) => None,
                    _ => panic!(
                        "reading {key} from Azurite: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ),
                }
            }
        }
    }

    /// The keys under `prefix` (a folder: `old/frontdoor/`), sorted.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = match self.kind {
            Kind::S3 => {
                let folder = self.dir.join(BUCKET).join(prefix);
                std::fs::read_dir(&folder)
                    .map(|d| {
                        d.flatten()
                            .filter(|e| e.path().is_file())
                            .map(|e| format!("{prefix}{}", e.file_name().to_string_lossy()))
                            .collect()
                    })
                    .unwrap_or_default()
            }
            Kind::Azure => {
                let out = self.azure_blob(&["list", BUCKET, prefix]);
                assert!(
                    out.status.success(),
                    "listing Azurite: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .filter_map(|v| v["name"].as_str().map(str::to_string))
                    .collect()
            }
        };
        keys.sort();
        keys
    }

    /// Runs the SDK helper (tests/support/azure-blob.js) against this store.
    fn azure_blob(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new("node");
        cmd.arg(repo().join("tests/support/azure-blob.js"))
            .args(args)
            .env("NODE_PATH", tools().join("node_modules"))
            .env(
                "AZURE_STORAGE_CONNECTION_STRING",
                self.connection_string(AZURE_KEY),
            );
        if let Some(tls) = &self.tls {
            cmd.env("NODE_EXTRA_CA_CERTS", &tls.ca);
        }
        cmd.output().expect("node runs")
    }
}

/// Where scripts/setup-s3.sh installs Azurite and the Azure SDK.
fn tools() -> PathBuf {
    repo().join("target/store-tools")
}
