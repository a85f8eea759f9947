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

/// Most memory one payload's decode may claim. bincode's limit counts
/// what a decode claims, not the bytes it reads: a sequence of `n`
/// elements claims `n` times the size of one element in memory, which is
/// many times its encoded size (a line of a few dozen bytes decodes into
/// hundreds). So an encodable payload of 64 KiB can claim a few MiB; the
/// bound only keeps damaged bytes (a length prefix of terabytes) from
/// claiming without limit.
pub const MAX_DECODE_CLAIM_BYTES: usize = 16 << 20;

fn encode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_PAYLOAD_BYTES>()
}

fn decode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_DECODE_CLAIM_BYTES>()
}

/// Encodes a value as a payload.
pub fn encode_payload<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, encode_config()).map_err(|e| CodecError(e.to_string()))
}

/// Decodes a payload (untrusted bytes: at most [`MAX_PAYLOAD_BYTES`] read,
/// at most [`MAX_DECODE_CLAIM_BYTES`] claimed, trailing bytes refused).
/// Whatever [`encode_payload`] encodes, this decodes.
pub fn decode_payload<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(CodecError(format!(
            "payload of {} bytes exceeds {MAX_PAYLOAD_BYTES}",
            bytes.len()
        )));
    }
    let (value, used) = bincode::serde::decode_from_slice(bytes, decode_config())
        .map_err(|e| CodecError(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError(format!("{} trailing bytes", bytes.len() - used)));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_encodes_within_the_payload_limit_decodes_even_when_it_claims_far_more_memory() {
        // Four empty texts encode in 4 bytes and take 96 in memory: 15,000
        // of them encode in 60 KB and claim about 1.4 MB when decoded.
        let many: Vec<(String, String, String, String)> = vec![Default::default(); 15_000];
        let bytes = encode_payload(&many).expect("within the payload limit");
        assert!(bytes.len() <= MAX_PAYLOAD_BYTES);
        let back: Vec<(String, String, String, String)> = decode_payload(&bytes).expect("decodes");
        assert_eq!(back, many);
    }

    #[test]
    fn damaged_bytes_claiming_without_bound_or_past_the_payload_limit_are_refused() {
        // A length prefix of 2^40 elements (bincode's varint tag 253: u64).
        let mut claim = vec![253u8];
        claim.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(decode_payload::<Vec<String>>(&claim).is_err());
        let long = vec![0u8; MAX_PAYLOAD_BYTES + 1];
        let err = decode_payload::<Vec<u8>>(&long).expect_err("over the limit");
        assert!(err.to_string().contains("exceeds"), "{err}");
    }
}
