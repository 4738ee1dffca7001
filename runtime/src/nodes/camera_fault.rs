//! Why a camera's session failed, as AVA's diagnostics name it: `AuthenticationError`,
//! `NetworkError`, `MediaFormatError` or `ProtocolError`. Vigil's own failures carry their kind
//! ([`CameraFault`]); retina's errors are opaque but for the RTSP status (its documentation asks
//! callers to file an issue rather than inspect them), so they are told apart by that status and
//! by the fixed words retina's messages start with for transport failures.

/// A failure of the camera's session found by Vigil itself.
#[derive(Debug, thiserror::Error)]
pub enum CameraFault {
    /// The camera did not answer in time, or sent nothing for too long.
    #[error("{0}")]
    Network(String),
    /// The camera's media is not what Vigil records (no H.264 or H.265 video, unknown codec).
    #[error("{0}")]
    MediaFormat(String),
}

/// AVA's diagnostics kind of a failed session's error.
pub fn classify(e: &anyhow::Error) -> &'static str {
    for cause in e.chain() {
        if let Some(fault) = cause.downcast_ref::<CameraFault>() {
            return match fault {
                CameraFault::Network(_) => "NetworkError",
                CameraFault::MediaFormat(_) => "MediaFormatError",
            };
        }
        if let Some(r) = cause.downcast_ref::<retina::Error>() {
            return retina_kind(r);
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return "NetworkError";
        }
    }
    "ProtocolError"
}

/// The kind of a retina error: by its RTSP status when the camera answered with one, else by
/// the words retina's message starts with.
fn retina_kind(e: &retina::Error) -> &'static str {
    match e.status_code() {
        Some(401 | 403 | 407) => "AuthenticationError",
        Some(_) => "ProtocolError",
        None => kind_of_retina_message(&e.to_string()),
    }
}

/// Retina's messages for transport failures and unsupported media (retina 0.4's `ErrorInt`).
fn kind_of_retina_message(message: &str) -> &'static str {
    const NETWORK: [&str; 5] = [
        "Unable to connect to RTSP server",
        "Error reading from RTSP peer",
        "Error writing to RTSP peer",
        "Error receiving UDP packet",
        "Timeout",
    ];
    if NETWORK.iter().any(|p| message.starts_with(p)) {
        "NetworkError"
    } else if message.starts_with("Unsupported") {
        "MediaFormatError"
    } else {
        "ProtocolError"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vigils_own_faults_keep_their_kind_through_context() {
        let e = anyhow::Error::new(CameraFault::Network("SETUP timed out after 10 s".into()))
            .context("camera front");
        assert_eq!(classify(&e), "NetworkError");
        let e = anyhow::Error::new(CameraFault::MediaFormat("no H.264".into()));
        assert_eq!(classify(&e), "MediaFormatError");
    }

    #[test]
    fn io_errors_are_network_errors_and_the_rest_protocol_errors() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(classify(&anyhow::Error::new(refused)), "NetworkError");
        // Words alone no longer decide: a message that says "unauthorized" is not a status.
        assert_eq!(
            classify(&anyhow::anyhow!("401 unauthorized, connection reset")),
            "ProtocolError"
        );
    }

    #[test]
    fn retina_messages_are_told_apart_by_their_opening_words() {
        for (message, kind) in [
            (
                "Unable to connect to RTSP server: Connection refused (os error 111)",
                "NetworkError",
            ),
            (
                "Error reading from RTSP peer: unexpected EOF\n\nconn: ...",
                "NetworkError",
            ),
            ("Timeout", "NetworkError"),
            ("Unsupported: H.264 profile", "MediaFormatError"),
            ("RTSP framing error: bad header", "ProtocolError"),
        ] {
            assert_eq!(kind_of_retina_message(message), kind, "{message}");
        }
    }
}
