//! The HTTP side of an HttpExtension (ava-spec §5): one POST per sampled frame with AVA's headers,
//! and what the answer means: inferences, nothing (204), busy (503 with `Retry-After`), or a
//! failure to report (network error, timeout, unexpected status, a body that is not JSON or
//! breaks the inference schema).

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use serde_json::Value;

use crate::media::image::EncodedImage;
use crate::media::time::MediaTime;
use crate::topology::model::{Credentials, Endpoint};

/// How long one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Wait after a 503 without a usable `Retry-After`.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// What one request came to.
#[derive(Debug)]
pub enum Reply {
    /// 200 with an inference body (`{"inferences": [...]}`, at least one).
    Inferences(serde_json::Map<String, Value>),
    /// 204, or a 200 with an empty inference list: nothing found.
    Nothing,
    /// 503: the service is busy; ask again after this long.
    Busy(Duration),
    /// The service could not be reached or did not answer in time.
    NetworkError {
        /// `timeout`, `connectionFailed` or `requestFailed`.
        code: &'static str,
        /// What happened.
        detail: String,
    },
    /// The service answered something this node cannot use.
    ProtocolError {
        /// HTTP status.
        status: u16,
        /// What is wrong.
        detail: String,
    },
}

/// A client for one extension endpoint.
pub struct ExtensionClient {
    http: reqwest::blocking::Client,
    endpoint: Endpoint,
}

impl ExtensionClient {
    /// A client for `endpoint` (HTTP, or HTTPS trusting [`crate::tls::client_config`]).
    pub fn new(endpoint: &Endpoint) -> anyhow::Result<Self> {
        let http = crate::tls::http_client_builder()?
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot create an HTTP client: {e}"))?;
        Ok(Self {
            http,
            endpoint: endpoint.clone(),
        })
    }

    /// POSTs `image`, taken from the frame at `frame_time`.
    pub fn post(&self, image: &EncodedImage, frame_time: MediaTime) -> Reply {
        let mut request = self
            .http
            .post(&self.endpoint.url)
            .header(CONTENT_TYPE, image.content_type)
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, concat!("vigil/", env!("CARGO_PKG_VERSION")))
            .header("x-ms-client-request-id", uuid::Uuid::new_v4().to_string())
            .header("x-vigil-frame-time", frame_time.to_string())
            .header("x-vigil-image-width", image.layout.width.to_string())
            .header("x-vigil-image-height", image.layout.height.to_string());
        if let Some(format) = &image.pixel_format {
            request = request.header("x-vigil-pixel-format", format.as_str());
        }
        match &self.endpoint.credentials {
            Some(Credentials::UsernamePassword { username, password }) => {
                request = request.basic_auth(username, Some(password));
            }
            Some(Credentials::HttpHeader { name, value }) => {
                request = request.header(name.as_str(), value.as_str());
            }
            None => {}
        }
        let response = match request.body(image.bytes.clone()).send() {
            Ok(r) => r,
            Err(e) => return network_error(e),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(300.0)));
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        // At most max_reply_bytes() are read: a service that answers without end cannot fill
        // memory (a reply over the limit is a protocol error).
        let mut body = Vec::new();
        let read = std::io::Read::read_to_end(
            &mut std::io::Read::take(response, max_reply_bytes() as u64 + 1),
            &mut body,
        );
        if let Err(e) = read {
            let detail = format!("the answer could not be read: {e}");
            return match e
                .into_inner()
                .and_then(|inner| inner.downcast::<reqwest::Error>().ok())
            {
                Some(cause) => network_error(*cause),
                None => Reply::ProtocolError { status, detail },
            };
        }
        if body.len() > max_reply_bytes() {
            return Reply::ProtocolError {
                status,
                detail: format!(
                    "the answer is over the {} KiB limit of an inference reply (--max-reply-kib)",
                    max_reply_bytes() / 1024
                ),
            };
        }
        match status {
            204 => Reply::Nothing,
            503 => Reply::Busy(retry_after.unwrap_or(DEFAULT_RETRY_AFTER)),
            200 => parse_inferences(&body, &content_type),
            _ => Reply::ProtocolError {
                status,
                detail: format!(
                    "unexpected status {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ),
            },
        }
    }
}

/// Largest inference reply read (`--max-reply-kib`, 1 MiB by default).
pub fn max_reply_bytes() -> usize {
    crate::limits::get().reply_bytes
}

fn network_error(e: reqwest::Error) -> Reply {
    let code = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connectionFailed"
    } else {
        "requestFailed"
    };
    // The error with its causes ("error sending request: … : Connection refused").
    let detail = format!("{:#}", anyhow::Error::new(e));
    Reply::NetworkError { code, detail }
}

/// The inference types of AVA's schema; each item carries an object of the same name.
const INFERENCE_TYPES: &[&str] = &[
    "classification",
    "motion",
    "entity",
    "text",
    "event",
    "other",
];

/// Checks a 200 body against AVA's inference schema (ava-spec §7).
pub fn parse_inferences(body: &[u8], content_type: &str) -> Reply {
    let bad = |detail: String| Reply::ProtocolError {
        status: 200,
        detail,
    };
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return bad(format!(
                "the body is not JSON (Content-Type '{content_type}', {} bytes): {e}",
                body.len()
            ));
        }
    };
    let Value::Object(map) = value else {
        return bad("the body is not a JSON object with an 'inferences' array".into());
    };
    let Some(Value::Array(items)) = map.get("inferences") else {
        return bad("the body has no 'inferences' array".into());
    };
    if items.is_empty() {
        return Reply::Nothing;
    }
    for (i, item) in items.iter().enumerate() {
        let kind = item.get("type").and_then(Value::as_str);
        let Some(kind) = kind.filter(|k| INFERENCE_TYPES.contains(k)) else {
            return bad(format!(
                "inferences[{i}]: 'type' must be one of {}",
                INFERENCE_TYPES.join(", ")
            ));
        };
        let payload = item.get(kind);
        if !payload.is_some_and(Value::is_object) {
            return bad(format!(
                "inferences[{i}]: type '{kind}' needs an object '{kind}'"
            ));
        }
        if let Some(b) = payload.and_then(|p| p.get("box")) {
            let ok = ["l", "t", "w", "h"]
                .iter()
                .all(|k| b.get(k).and_then(Value::as_f64).is_some_and(f64::is_finite));
            if !ok {
                return bad(format!(
                    "inferences[{i}].{kind}.box needs numbers l, t, w and h"
                ));
            }
        }
        if kind == "entity"
            && payload
                .and_then(|p| p.get("tag"))
                .and_then(|t| t.get("value"))
                .is_none()
        {
            return bad(format!("inferences[{i}].entity needs a tag with a value"));
        }
    }
    Reply::Inferences(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inference_bodies_are_checked_against_the_schema() {
        let ok = br#"{"inferences":[{"type":"entity","entity":{"tag":{"value":"truck","confidence":0.9},"box":{"l":0.1,"t":0.2,"w":0.3,"h":0.4}}}]}"#;
        assert!(matches!(
            parse_inferences(ok, "application/json"),
            Reply::Inferences(_)
        ));
        assert!(matches!(
            parse_inferences(br#"{"inferences":[]}"#, "application/json"),
            Reply::Nothing
        ));
        for (body, needle) in [
            (&b"{not json"[..], "not JSON"),
            (br#"[1]"#, "not a JSON object"),
            (br#"{"detections":[]}"#, "no 'inferences'"),
            (
                br#"{"inferences":[{"type":"car"}]}"#,
                "inferences[0]: 'type'",
            ),
            (
                br#"{"inferences":[{"type":"entity"}]}"#,
                "needs an object 'entity'",
            ),
            (
                br#"{"inferences":[{"type":"motion","motion":{"box":{"l":"x"}}}]}"#,
                "motion.box needs numbers",
            ),
        ] {
            match parse_inferences(body, "text/plain") {
                Reply::ProtocolError { detail, .. } => assert!(detail.contains(needle), "{detail}"),
                other => panic!("{other:?} for {}", String::from_utf8_lossy(body)),
            }
        }
    }
}

#[cfg(test)]
mod reply_size_tests {
    use std::io::{BufRead, BufReader, Write};

    use super::*;
    use crate::media::image::{EncodedImage, ImageLayout};
    use crate::topology::model::Endpoint;

    /// A service whose answer never ends (here 8 MiB, sent as fast as it can) is cut at the
    /// limit and reported; memory stays bounded.
    #[test]
    fn an_endless_answer_is_cut_at_the_limit() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/score", listener.local_addr().expect("address"));
        std::thread::spawn(move || {
            if let Ok((stream, _)) = listener.accept() {
                let mut writer = stream.try_clone().expect("clone");
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let _ = write!(
                    writer,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
                );
                let chunk = vec![b' '; 64 * 1024];
                for _ in 0..128 {
                    if writer.write_all(&chunk).is_err() {
                        break;
                    }
                }
            }
        });
        let client = ExtensionClient::new(&Endpoint {
            url,
            credentials: None,
            tls: None,
        })
        .expect("client");
        let image = EncodedImage {
            bytes: vec![0; 16],
            content_type: "image/bmp",
            layout: ImageLayout {
                width: 2,
                height: 2,
                content_x: 0,
                content_y: 0,
                content_width: 2,
                content_height: 2,
            },
            pixel_format: None,
        };
        match client.post(&image, MediaTime::from_secs(1)) {
            Reply::ProtocolError { detail, .. } => {
                assert!(detail.contains("over the 1024 KiB limit"), "{detail}")
            }
            other => panic!("{other:?}"),
        }
    }
}
