//! What `--store` names and how to reach it: the URL (`s3://bucket/prefix`,
//! `azure://container/prefix`, `gs://bucket/prefix`, `file:///folder`) and the credentials and
//! endpoint the environment gives, read as each provider's own tools read them.
//!
//! * S3: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` (or
//!   `AWS_DEFAULT_REGION`), `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` for another
//!   S3-compatible server (addressed path-style); without keys, the instance's or container's
//!   role as the AWS SDKs find it.
//! * Azure Blob: `AZURE_STORAGE_CONNECTION_STRING` (what the Azure portal and Azurite hand out),
//!   else `AZURE_STORAGE_ACCOUNT` with `AZURE_STORAGE_KEY` or `AZURE_STORAGE_SAS_TOKEN` (the
//!   names `az storage` reads), and `AZURE_STORAGE_BLOB_ENDPOINT` for another endpoint.
//! * GCS: `GOOGLE_APPLICATION_CREDENTIALS` or `GOOGLE_SERVICE_ACCOUNT_KEY`, as object_store reads
//!   them.

use std::collections::HashMap;

use anyhow::{Context, Result, anyhow, bail};

/// Which store and where in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// An S3 bucket (AWS or an S3-compatible server).
    S3 {
        /// Bucket.
        bucket: String,
        /// Key prefix, without slashes at either end.
        prefix: String,
    },
    /// An Azure Blob Storage container.
    Azure {
        /// Container.
        container: String,
        /// Blob name prefix.
        prefix: String,
    },
    /// A Google Cloud Storage bucket.
    Gcs {
        /// Bucket.
        bucket: String,
        /// Object name prefix.
        prefix: String,
    },
    /// A folder on this machine (a mounted share, a second disk).
    Local {
        /// The folder.
        dir: std::path::PathBuf,
    },
}

impl StoreLocation {
    /// Parses a `--store` URL.
    pub fn parse(url: &str) -> Result<Self> {
        let usage = "--store must be s3://bucket/prefix, azure://container/prefix, \
                     gs://bucket/prefix or file:///folder";
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| anyhow!("{usage}, not '{url}'"))?;
        let split = |what: &str| -> Result<(String, String)> {
            let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if name.is_empty() {
                bail!("--store '{url}' names no {what}");
            }
            Ok((name.to_string(), prefix.trim_matches('/').to_string()))
        };
        match scheme {
            "s3" => {
                let (bucket, prefix) = split("bucket")?;
                Ok(Self::S3 { bucket, prefix })
            }
            "azure" | "az" => {
                let (container, prefix) = split("container")?;
                Ok(Self::Azure { container, prefix })
            }
            "gs" => {
                let (bucket, prefix) = split("bucket")?;
                Ok(Self::Gcs { bucket, prefix })
            }
            "file" => {
                if !rest.starts_with('/') {
                    bail!(
                        "--store '{url}': a file:// store takes an absolute folder (file:///srv/vigil)"
                    );
                }
                Ok(Self::Local { dir: rest.into() })
            }
            _ => bail!("{usage}, not '{url}'"),
        }
    }

    /// The key prefix inside the bucket or container (none for a folder).
    pub fn prefix(&self) -> &str {
        match self {
            Self::S3 { prefix, .. } | Self::Azure { prefix, .. } | Self::Gcs { prefix, .. } => {
                prefix
            }
            Self::Local { .. } => "",
        }
    }
}

/// One variable of the environment, empty ones counted as unset.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process's environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// S3 settings: region, optional endpoint, optional static keys.
#[derive(Debug, PartialEq, Eq)]
pub struct S3Settings {
    /// Region (`us-east-1` unless the environment says otherwise).
    pub region: String,
    /// Another endpoint than AWS's, addressed path-style.
    pub endpoint: Option<url::Url>,
    /// Access key id, secret and session token.
    pub keys: Option<(String, String, Option<String>)>,
}

/// Reads the S3 settings.
pub fn s3_settings(env: Env) -> Result<S3Settings> {
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".into());
    let endpoint = match env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL")) {
        Some(e) => {
            let url = url::Url::parse(&e)
                .with_context(|| format!("AWS_ENDPOINT_URL '{e}' is not a URL"))?;
            if !matches!(url.scheme(), "http" | "https") {
                bail!("the object store endpoint must be http:// or https://: {e}");
            }
            Some(url)
        }
        None => None,
    };
    let keys = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Some((id, secret, env("AWS_SESSION_TOKEN"))),
        (Some(_), None) => bail!("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"),
        (None, Some(_)) => bail!("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"),
        (None, None) => None,
    };
    Ok(S3Settings {
        region,
        endpoint,
        keys,
    })
}

/// How to sign Azure requests.
#[derive(Debug, PartialEq, Eq)]
pub enum AzureAuth {
    /// The account's shared key (base64).
    Key(String),
    /// A shared access signature (its query string).
    Sas(String),
}

/// Azure Blob settings.
#[derive(Debug, PartialEq, Eq)]
pub struct AzureSettings {
    /// Storage account.
    pub account: String,
    /// Key or SAS.
    pub auth: AzureAuth,
    /// The blob endpoint when it is not `https://<account>.blob.core.windows.net` (Azurite,
    /// Azure Stack, a private endpoint); a path-style one ends in `/<account>` and is used as
    /// given.
    pub endpoint: Option<url::Url>,
}

/// Reads the Azure Blob settings.
pub fn azure_settings(env: Env) -> Result<AzureSettings> {
    let mut fields: HashMap<String, String> = HashMap::new();
    if let Some(cs) = env("AZURE_STORAGE_CONNECTION_STRING") {
        for part in cs.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                anyhow!("AZURE_STORAGE_CONNECTION_STRING: '{part}' is not Name=value")
            })?;
            fields.insert(k.to_ascii_lowercase(), v.to_string());
        }
        if fields.get("usedevelopmentstorage").map(String::as_str) == Some("true") {
            // Azurite's well-known account on its default port.
            fields.insert("accountname".into(), "devstoreaccount1".into());
            fields.insert("accountkey".into(), AZURITE_KEY.into());
            fields.insert(
                "blobendpoint".into(),
                "http://127.0.0.1:10000/devstoreaccount1".into(),
            );
        }
    }
    let account = fields
        .remove("accountname")
        .or_else(|| env("AZURE_STORAGE_ACCOUNT"))
        .ok_or_else(|| {
            anyhow!(
                "no Azure storage account: set AZURE_STORAGE_CONNECTION_STRING, or \
                 AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN"
            )
        })?;
    let auth = match (
        fields
            .remove("accountkey")
            .or_else(|| env("AZURE_STORAGE_KEY")),
        fields
            .remove("sharedaccesssignature")
            .or_else(|| env("AZURE_STORAGE_SAS_TOKEN")),
    ) {
        (Some(key), _) => AzureAuth::Key(key),
        (None, Some(sas)) => AzureAuth::Sas(sas.trim_start_matches('?').to_string()),
        (None, None) => bail!(
            "no credentials for Azure storage account '{account}': set AZURE_STORAGE_KEY or \
             AZURE_STORAGE_SAS_TOKEN (or AccountKey / SharedAccessSignature in \
             AZURE_STORAGE_CONNECTION_STRING)"
        ),
    };
    let endpoint = match fields
        .remove("blobendpoint")
        .or_else(|| env("AZURE_STORAGE_BLOB_ENDPOINT"))
    {
        Some(e) => {
            let url = url::Url::parse(&e)
                .with_context(|| format!("the Azure blob endpoint '{e}' is not a URL"))?;
            if !matches!(url.scheme(), "http" | "https") {
                bail!("the Azure blob endpoint must be http:// or https://: {e}");
            }
            Some(url)
        }
        None => None,
    };
    Ok(AzureSettings {
        account,
        auth,
        endpoint,
    })
}

/// Azurite's published development account key (not a secret: it is in Microsoft's docs).
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn urls_name_the_store_and_the_prefix() {
        assert_eq!(
            StoreLocation::parse("s3://b/site-a/").unwrap(),
            StoreLocation::S3 {
                bucket: "b".into(),
                prefix: "site-a".into()
            }
        );
        assert_eq!(
            StoreLocation::parse("azure://videos").unwrap(),
            StoreLocation::Azure {
                container: "videos".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            StoreLocation::parse("gs://b/x/y").unwrap(),
            StoreLocation::Gcs {
                bucket: "b".into(),
                prefix: "x/y".into()
            }
        );
        assert_eq!(
            StoreLocation::parse("file:///srv/vigil").unwrap(),
            StoreLocation::Local {
                dir: "/srv/vigil".into()
            }
        );
        for bad in ["s3:///x", "ftp://h/x", "bucket/x", "file://relative"] {
            let e = StoreLocation::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn s3_keys_come_in_pairs() {
        let e = s3_settings(&env_of(&[("AWS_ACCESS_KEY_ID", "a")])).unwrap_err();
        assert!(e.to_string().contains("AWS_SECRET_ACCESS_KEY"), "{e}");
        let s = s3_settings(&env_of(&[
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
        ]))
        .unwrap();
        assert_eq!(s.region, "eu-west-1");
        assert_eq!(s.keys, Some(("a".into(), "s".into(), None)));
        assert_eq!(s.endpoint.unwrap().as_str(), "http://127.0.0.1:9000/");
        assert!(s3_settings(&env_of(&[])).unwrap().keys.is_none());
    }

    #[test]
    fn azure_reads_a_connection_string_or_the_az_variables() {
        let s = azure_settings(&env_of(&[(
            "AZURE_STORAGE_CONNECTION_STRING",
            "DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/acct;",
        )]))
        .unwrap();
        assert_eq!(s.account, "acct");
        assert_eq!(s.auth, AzureAuth::Key("a2V5".into()));
        assert_eq!(s.endpoint.unwrap().path(), "/acct");
        let dev = azure_settings(&env_of(&[(
            "AZURE_STORAGE_CONNECTION_STRING",
            "UseDevelopmentStorage=true",
        )]))
        .unwrap();
        assert_eq!(dev.account, "devstoreaccount1");
        let sas = azure_settings(&env_of(&[
            ("AZURE_STORAGE_ACCOUNT", "acct"),
            ("AZURE_STORAGE_SAS_TOKEN", "?sv=2022&sig=x"),
        ]))
        .unwrap();
        assert_eq!(sas.auth, AzureAuth::Sas("sv=2022&sig=x".into()));
        assert!(sas.endpoint.is_none());
        let e = azure_settings(&env_of(&[("AZURE_STORAGE_ACCOUNT", "acct")])).unwrap_err();
        assert!(e.to_string().contains("AZURE_STORAGE_KEY"), "{e}");
        let e = azure_settings(&env_of(&[])).unwrap_err();
        assert!(
            e.to_string().contains("AZURE_STORAGE_CONNECTION_STRING"),
            "{e}"
        );
        let e = azure_settings(&env_of(&[(
            "AZURE_STORAGE_CONNECTION_STRING",
            "AccountName",
        )]))
        .unwrap_err();
        assert!(e.to_string().contains("Name=value"), "{e}");
    }
}
