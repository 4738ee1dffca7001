//! Size limits on what comes from outside that a deployment may need to change: a trigger's
//! body, a method call's payload, an inference service's reply. Set once at start-up from the
//! command line (`--max-trigger-kib`, `--max-method-kib`, `--max-reply-kib`); the defaults
//! otherwise. Over a limit, an input is refused with an event naming the limit and never copied
//! whole into events or logs. The other bounds (topology documents, RTSP answers, events'
//! SDP) are fixed: see the README's Security section.

use std::sync::OnceLock;

/// The configurable limits, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputLimits {
    /// Largest trigger body (MQTT payload or HTTP body).
    pub trigger_bytes: usize,
    /// Largest method payload (MQTT or HTTP).
    pub method_bytes: usize,
    /// Largest inference reply read.
    pub reply_bytes: usize,
}

impl Default for InputLimits {
    fn default() -> Self {
        Self {
            trigger_bytes: 64 << 10,
            method_bytes: 2 << 20,
            reply_bytes: 1 << 20,
        }
    }
}

/// The most any limit may be set to: far above any real input, and below what the MQTT
/// connection accepts (so that an oversized message is still dropped, not the connection).
pub const CEILING_BYTES: usize = 32 << 20;

static LIMITS: OnceLock<InputLimits> = OnceLock::new();

/// Why limits cannot be set.
#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    /// A limit of 0 or above [`CEILING_BYTES`].
    #[error("{name}: {kib} KiB is out of range (1 KiB to {} KiB)", CEILING_BYTES >> 10)]
    OutOfRange {
        /// The option.
        name: &'static str,
        /// The value given.
        kib: usize,
    },
    /// Set already (start-up sets them once).
    #[error("the input limits are already set")]
    AlreadySet,
}

impl InputLimits {
    /// The defaults with the values given (KiB) in place of theirs; each from 1 KiB to
    /// [`CEILING_BYTES`].
    pub fn with_kib(
        trigger: Option<usize>,
        method: Option<usize>,
        reply: Option<usize>,
    ) -> Result<Self, LimitsError> {
        let pick = |name, kib: Option<usize>, default: usize| match kib {
            None => Ok(default),
            Some(k) if (1..=CEILING_BYTES >> 10).contains(&k) => Ok(k << 10),
            Some(kib) => Err(LimitsError::OutOfRange { name, kib }),
        };
        let d = Self::default();
        Ok(Self {
            trigger_bytes: pick("--max-trigger-kib", trigger, d.trigger_bytes)?,
            method_bytes: pick("--max-method-kib", method, d.method_bytes)?,
            reply_bytes: pick("--max-reply-kib", reply, d.reply_bytes)?,
        })
    }
}

/// Sets the process's limits; once, at start-up, before anything reads them.
pub fn set(limits: InputLimits) -> Result<(), LimitsError> {
    LIMITS.set(limits).map_err(|_| LimitsError::AlreadySet)
}

/// The process's limits (the defaults until [`set`]).
pub fn get() -> InputLimits {
    *LIMITS.get_or_init(InputLimits::default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_kib_within_range() {
        let l = InputLimits::with_kib(Some(256), None, Some(4096)).expect("valid");
        assert_eq!(l.trigger_bytes, 256 << 10);
        assert_eq!(l.method_bytes, 2 << 20);
        assert_eq!(l.reply_bytes, 4 << 20);
        let e = InputLimits::with_kib(Some(0), None, None).expect_err("0 refused");
        assert!(e.to_string().starts_with("--max-trigger-kib: 0 KiB"), "{e}");
        assert!(InputLimits::with_kib(None, Some(1 << 20), None).is_err());
    }
}
