//! The payload codec: bincode 2.0.1 through its serde integration.
//!
//! The log stores payloads as opaque bytes; this is the one encoding the
//! platform uses for them, so every crate that writes or reads domain events
//! goes through these two functions. bincode encodes enum variants by index,
//! so event enums must be append-only.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::record::MAX_PAYLOAD_BYTES;

/// Why a payload could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("payload codec: {0}")]
pub struct CodecError(String);

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_PAYLOAD_BYTES>()
}

/// Encodes a value as a payload.
pub fn encode_payload<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| CodecError(e.to_string()))
}

/// Decodes a payload (untrusted bytes: bounded, and trailing bytes refused).
pub fn decode_payload<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| CodecError(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError(format!("{} trailing bytes", bytes.len() - used)));
    }
    Ok(value)
}
