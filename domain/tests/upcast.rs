//! Upcasting `QuotePriced` from schema version 1 to version 2, on committed bytes.
//!
//! `tests/golden/quote_priced_v1.hex` holds the bincode payload of
//! [`fixtures::quote_priced`] as the code before version 2 encoded it (it was
//! generated then, and is never regenerated). `quote_priced_v2.hex` pins the current
//! encoding of the same event, so an accidental shape change fails here; bless it
//! only with a version bump: `DOMAIN_BLESS=1 cargo test -p domain --test upcast`.

use domain::decider::DomainEvent;
use domain::events::{decode, AnyEvent, DecodeError, PayloadCodec, StoredEvent};
use domain::handoff::legacy::v1 as handoff_v1;
use domain::handoff::HandoffEvent;
use domain::idempotency::Purpose;
use domain::ids::StreamKind;
use domain::quote::legacy::v1;
use domain::quote::QuoteEvent;
use domain::testing::fixtures::{self, PRICE_BOOK};
use domain::upcast::{current_version, OldEvent};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::PathBuf;

/// The log's codec (`eventlog::codec`): bincode's standard configuration,
/// bounded to the 64 KiB payload limit, trailing bytes refused. The bound
/// matters: read as the current shape, the v1 bytes claim a string of
/// terabytes, which an unbounded decoder tries to allocate.
struct Bincode;

impl PayloadCodec for Bincode {
    type Error = String;

    fn decode<T: DeserializeOwned>(&self, payload: &[u8]) -> Result<T, String> {
        let config = bincode::config::standard().with_limit::<{ 64 * 1024 }>();
        let (value, read) =
            bincode::serde::decode_from_slice(payload, config).map_err(|e| e.to_string())?;
        if read == payload.len() {
            Ok(value)
        } else {
            Err(format!("{} trailing bytes", payload.len() - read))
        }
    }
}

fn encode<E: Serialize>(event: &E) -> Vec<u8> {
    bincode::serde::encode_to_vec(event, bincode::config::standard())
        .unwrap_or_else(|e| panic!("encode: {e}"))
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn golden(name: &str) -> Vec<u8> {
    let path = golden_path(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let text = text.trim();
    assert!(text.len() % 2 == 0, "odd hex length in {name}");
    (0..text.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&text[i..i + 2], 16)
                .unwrap_or_else(|e| panic!("bad hex at {i} in {name}: {e}"))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn stored<'a>(event_type: &'a str, schema_version: u16, payload: &'a [u8]) -> StoredEvent<'a> {
    StoredEvent {
        position: 42,
        stream_id: "quote-q1",
        event_type,
        schema_version,
        payload,
    }
}

fn price_of(event: &AnyEvent) -> &domain::quote::PriceResult {
    match event {
        AnyEvent::Quote(QuoteEvent::QuotePriced { price, .. }) => price,
        other => panic!("not a QuotePriced: {other:?}"),
    }
}

#[test]
fn quote_priced_is_at_version_2_and_every_other_type_at_1() {
    assert_eq!(fixtures::quote_priced().schema_version(), 2);
    assert_eq!(current_version("QuotePriced"), 2);
    for other in fixtures::quote_ready_to_accept()
        .iter()
        .filter(|e| e.event_type() != "QuotePriced")
    {
        assert_eq!(other.schema_version(), 1, "{}", other.event_type());
    }
    assert_eq!(fixtures::order_captured(&["l1"]).schema_version(), 1);
}

#[test]
fn the_committed_version_1_bytes_decode_to_the_new_shape_with_the_book_from_policy_version() {
    let bytes = golden("quote_priced_v1.hex");
    // What version 1 said: the book was in `policy_version`.
    let old: v1::QuoteEvent = Bincode
        .decode(&bytes)
        .expect("the frozen v1 shape reads them");
    let v1::QuoteEvent::QuotePriced {
        price: old_price, ..
    } = &old
    else {
        panic!("not a QuotePriced: {old:?}");
    };
    assert_eq!(old_price.policy_version, PRICE_BOOK);

    // Why a chain is needed: bincode is not self-describing, so the v1 bytes
    // do not read as the current enum.
    assert!(Bincode.decode::<QuoteEvent>(&bytes).is_err());

    let event = decode(&stored("QuotePriced", 1, &bytes), &Bincode).expect("upcast");
    assert_eq!(event.schema_version(), 2);
    let price = price_of(&event);
    assert_eq!(price.price_book, old_price.policy_version);
    assert_eq!(price.policy_version, old_price.policy_version);
    assert_eq!(event, AnyEvent::Quote(fixtures::quote_priced()));
}

#[test]
fn the_frozen_v1_mirror_writes_exactly_the_committed_version_1_bytes() {
    // So tests that write old logs through the mirror write genuine v1 payloads.
    let old = fixtures::quote_priced_v1(&fixtures::quote_priced()).expect("v1 can say it");
    assert_eq!(hex(&encode(&old)), hex(&golden("quote_priced_v1.hex")));
}

#[test]
fn the_current_encoding_is_pinned_at_version_2() {
    let path = golden_path("quote_priced_v2.hex");
    let current = encode(&fixtures::quote_priced());
    if std::env::var_os("DOMAIN_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, hex(&current) + "\n")
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
    let committed = golden("quote_priced_v2.hex");
    assert_eq!(
        hex(&current),
        hex(&committed),
        "QuotePriced's encoding changed: freeze the old shape, bump its version and add an upcaster (ADR 0013)"
    );
    let event = decode(&stored("QuotePriced", 2, &committed), &Bincode).expect("decode");
    assert_eq!(event, AnyEvent::Quote(fixtures::quote_priced()));
    assert_ne!(committed, golden("quote_priced_v1.hex"));
}

#[test]
fn an_old_and_a_new_log_of_the_same_facts_read_the_same() {
    let events = fixtures::quote_ready_to_accept();
    let read = |version_1: bool| -> Vec<AnyEvent> {
        events
            .iter()
            .map(|e| {
                let (version, bytes) = match fixtures::quote_priced_v1(e).filter(|_| version_1) {
                    Some(old) => (1, encode(&old)),
                    None => (e.schema_version(), encode(e)),
                };
                decode(&stored(e.event_type(), version, &bytes), &Bincode).expect("decode")
            })
            .collect()
    };
    let old = read(true);
    assert_eq!(old, read(false));
    assert_eq!(
        old,
        events.into_iter().map(AnyEvent::Quote).collect::<Vec<_>>()
    );
}

#[test]
fn versions_without_a_chain_are_refused_with_the_typed_error() {
    let bytes = golden("quote_priced_v1.hex");
    for version in [0, 3, u16::MAX] {
        assert_eq!(
            decode(&stored("QuotePriced", version, &bytes), &Bincode),
            Err(DecodeError::UnsupportedVersion {
                position: 42,
                kind: StreamKind::Quote,
                event_type: "QuotePriced".to_owned(),
                schema_version: version,
                current: 2,
            })
        );
    }
    // Types that never changed have no chain either.
    let created = encode(&fixtures::quote_created());
    assert!(matches!(
        decode(&stored("QuoteCreated", 0, &created), &Bincode),
        Err(DecodeError::UnsupportedVersion { current: 1, .. })
    ));
    // A chain belongs to its aggregate: a QuotePriced v1 on an order stream is not read.
    let on_an_order = StoredEvent {
        stream_id: "order-o1",
        ..stored("QuotePriced", 1, &bytes)
    };
    assert!(matches!(
        decode(&on_an_order, &Bincode),
        Err(DecodeError::UnsupportedVersion {
            kind: StreamKind::Order,
            ..
        })
    ));
    assert!(OldEvent::read(StreamKind::Order, "QuotePriced", 1, &bytes, &Bincode).is_none());
}

#[test]
fn a_version_1_payload_of_another_type_is_a_mismatch_naming_it() {
    // Index 0 of the v1 mirror is the QuoteCreated placeholder.
    let error = decode(&stored("QuotePriced", 1, &[0]), &Bincode).expect_err("refused");
    assert!(
        matches!(
            error,
            DecodeError::Mismatch {
                decoded_type: "QuoteCreated",
                decoded_version: 1,
                ..
            }
        ),
        "{error:?}"
    );
    // A real v1 QuoteCreated payload does not even read as the mirror.
    let created = encode(&fixtures::quote_created());
    assert!(matches!(
        decode(&stored("QuotePriced", 1, &created), &Bincode),
        Err(DecodeError::Undecodable {
            schema_version: 1,
            ..
        })
    ));
    // A current-shape payload under a version 1 envelope is refused too.
    let v2 = golden("quote_priced_v2.hex");
    assert!(decode(&stored("QuotePriced", 1, &v2), &Bincode).is_err());
}

/// `HandoffResolved` v1 (before it named its subject): the committed bytes
/// are the golden line of the code before version 2.
fn handoff_resolved_stored(version: u16, payload: &[u8]) -> StoredEvent<'_> {
    StoredEvent {
        stream_id: "handoff-h1",
        ..stored("HandoffResolved", version, payload)
    }
}

#[test]
fn the_committed_handoff_resolved_v1_bytes_read_with_no_subject() {
    let bytes = golden("handoff_resolved_v1.hex");
    let old: handoff_v1::HandoffEvent = Bincode
        .decode(&bytes)
        .expect("the frozen v1 shape reads them");
    let handoff_v1::HandoffEvent::HandoffResolved { operator, note, at } = old.clone() else {
        panic!("not a HandoffResolved: {old:?}");
    };
    assert_eq!((operator.as_str(), note.as_str()), ("ops", "creds rotated"));
    // The v1 bytes do not read as the current shape: version 2 adds a field.
    assert!(Bincode.decode::<HandoffEvent>(&bytes).is_err());

    let event = decode(&handoff_resolved_stored(1, &bytes), &Bincode).expect("upcast");
    assert_eq!(event.schema_version(), 2);
    assert_eq!(
        event,
        AnyEvent::Handoff(HandoffEvent::HandoffResolved {
            operator,
            note,
            at,
            subject: None,
        })
    );
    // The mirror writes exactly those bytes back.
    assert_eq!(hex(&encode(&old)), hex(&bytes));
    // A placeholder's index under a v1 envelope names the type it holds.
    let error = decode(&handoff_resolved_stored(1, &[0]), &Bincode).expect_err("refused");
    assert!(
        matches!(
            error,
            DecodeError::Mismatch {
                decoded_type: "HandoffRequested",
                decoded_version: 1,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn the_current_handoff_resolved_encoding_is_pinned_at_version_2() {
    let event = HandoffEvent::HandoffResolved {
        operator: "ops".to_owned(),
        note: "creds rotated".to_owned(),
        at: domain::ids::Timestamp(1_780_000_000_000),
        subject: Some(fixtures::subject("l1", Purpose::Release, 1)),
    };
    let path = golden_path("handoff_resolved_v2.hex");
    let current = encode(&event);
    if std::env::var_os("DOMAIN_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, hex(&current) + "\n")
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
    let committed = golden("handoff_resolved_v2.hex");
    assert_eq!(
        hex(&current),
        hex(&committed),
        "HandoffResolved's encoding changed: freeze the old shape, bump its version and add an upcaster (ADR 0013)"
    );
    let decoded = decode(&handoff_resolved_stored(2, &committed), &Bincode).expect("decode");
    assert_eq!(decoded, AnyEvent::Handoff(event));
    // The v2 bytes under a v1 envelope are not read as v1.
    assert!(decode(&handoff_resolved_stored(1, &committed), &Bincode).is_err());
}

proptest! {
    #[test]
    fn no_bytes_make_decode_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
        version in 0u16..4,
    ) {
        let _ = decode(&stored("QuotePriced", version, &bytes), &Bincode);
    }

    #[test]
    fn damaged_version_1_bytes_are_refused_or_read_never_a_panic(
        cut in 0usize..200,
        flip in 0usize..200,
        mask in 1u8..=255,
    ) {
        let mut bytes = golden("quote_priced_v1.hex");
        let flip = flip % bytes.len();
        bytes[flip] ^= mask;
        bytes.truncate(bytes.len().saturating_sub(cut % 8));
        if let Ok(event) = decode(&stored("QuotePriced", 1, &bytes), &Bincode) {
            prop_assert_eq!(event.event_type(), "QuotePriced");
            prop_assert_eq!(event.schema_version(), 2);
        }
    }
}
