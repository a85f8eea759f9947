//! Model-based property test: random appends, reads, subscriptions and
//! reopens against an in-memory model of the log.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::collections::HashMap;

use common::event;
use eventlog::{
    AppendError, AppendOutcome, AppendRequest, Durability, EventLog, ExpectedVersion, Idempotency,
    LogConfig,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Expect {
    Any,
    NoStream,
    /// The model's current version plus this offset (may be wrong on purpose).
    Relative(i8),
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        stream: u8,
        expect: Expect,
        count: u8,
        key: Option<u8>,
        seed: u8,
    },
    ReadStream {
        stream: u8,
        from: u64,
    },
    ReadAll {
        from: u64,
    },
    Subscribe {
        from: u64,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let expect = prop_oneof![
        Just(Expect::Any),
        Just(Expect::NoStream),
        (-1i8..=1).prop_map(Expect::Relative)
    ];
    prop_oneof![
        6 => (0u8..4, expect, 1u8..4, proptest::option::of(0u8..4), 0u8..3)
            .prop_map(|(stream, expect, count, key, seed)| Op::Append { stream, expect, count, key, seed }),
        2 => (0u8..4, 0u64..6).prop_map(|(stream, from)| Op::ReadStream { stream, from }),
        2 => (0u64..40).prop_map(|from| Op::ReadAll { from }),
        2 => (0u64..40).prop_map(|from| Op::Subscribe { from }),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Default)]
struct Model {
    /// (stream, version, payload) by position.
    events: Vec<(String, u64, Vec<u8>)>,
    versions: HashMap<String, u64>,
    keys: HashMap<String, ([u8; 32], AppendOutcome)>,
}

fn run(ops: Vec<Op>, heads_kept: usize) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let mut config = LogConfig::new(dir.path()).durability(Durability::Buffered);
        config.stream_heads_kept = heads_kept;
        let mut log = EventLog::open(config.clone()).unwrap();
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Append {
                    stream,
                    expect,
                    count,
                    key,
                    seed,
                } => {
                    let stream = format!("stream-{stream}");
                    let current = model.versions.get(&stream).copied().unwrap_or(0);
                    let expected = match expect {
                        Expect::Any => ExpectedVersion::Any,
                        Expect::NoStream => ExpectedVersion::NoStream,
                        Expect::Relative(d) => {
                            ExpectedVersion::Exact(current.saturating_add_signed(i64::from(d)))
                        }
                    };
                    let events = (0..count).map(|i| event(&format!("{seed}-{i}"))).collect();
                    let mut request = AppendRequest::new(stream.clone(), expected, events);
                    if let Some(k) = key {
                        request = request.idempotent(Idempotency::key(format!("key-{k}")));
                    }
                    let hash = request.request_hash();
                    let result = log.append(request.clone()).await;
                    // What the model says must happen.
                    let seen = key.and_then(|k| model.keys.get(&format!("key-{k}")).copied());
                    match seen {
                        Some((h, first)) if h == hash => prop_assert_eq!(result, Ok(first)),
                        Some(_) => {
                            let conflict =
                                matches!(result, Err(AppendError::IdempotencyConflict { .. }));
                            prop_assert!(
                                conflict,
                                "expected an idempotency conflict, got {:?}",
                                result
                            );
                        }
                        None if !expected.admits(current) => prop_assert_eq!(
                            result,
                            Err(AppendError::WrongExpectedVersion {
                                stream_id: stream,
                                expected,
                                actual: current
                            })
                        ),
                        None => {
                            let first = model.events.len() as u64;
                            let outcome = result.unwrap();
                            prop_assert_eq!(outcome.first_position, first);
                            prop_assert_eq!(outcome.last_position, first + u64::from(count) - 1);
                            prop_assert_eq!(outcome.stream_version, current + u64::from(count));
                            prop_assert!(!outcome.deduplicated);
                            for (i, e) in request.events.iter().enumerate() {
                                model.events.push((
                                    stream.clone(),
                                    current + i as u64 + 1,
                                    e.payload.clone(),
                                ));
                            }
                            model.versions.insert(stream, current + u64::from(count));
                            if let Some(k) = key {
                                let mut remembered = outcome;
                                remembered.deduplicated = true;
                                model.keys.insert(format!("key-{k}"), (hash, remembered));
                            }
                        }
                    }
                }
                Op::ReadStream { stream, from } => {
                    let stream = format!("stream-{stream}");
                    let got: Vec<_> = log
                        .read_stream(&stream, from, usize::MAX)
                        .unwrap()
                        .into_iter()
                        .map(|e| (e.stream_id, e.stream_version, e.payload))
                        .collect();
                    let want: Vec<_> = model
                        .events
                        .iter()
                        .filter(|e| e.0 == stream && e.1 >= from.max(1))
                        .cloned()
                        .collect();
                    prop_assert_eq!(got, want);
                }
                Op::ReadAll { from } => {
                    let got: Vec<_> = log
                        .iter_all(from)
                        .map(|e| e.map(|e| (e.stream_id, e.stream_version, e.payload)))
                        .collect::<Result<_, _>>()
                        .unwrap();
                    let want: Vec<_> = model.events.iter().skip(from as usize).cloned().collect();
                    prop_assert_eq!(got, want);
                }
                Op::Subscribe { from } => {
                    let mut sub = log.subscribe(from);
                    let mut got = Vec::new();
                    loop {
                        let batch = sub.try_next_batch(7).unwrap();
                        if batch.is_empty() {
                            break;
                        }
                        got.extend(
                            batch
                                .into_iter()
                                .map(|e| (e.stream_id, e.stream_version, e.payload)),
                        );
                    }
                    let want: Vec<_> = model.events.iter().skip(from as usize).cloned().collect();
                    prop_assert_eq!(got, want);
                }
                Op::Reopen => {
                    log.close().await;
                    drop(log);
                    log = EventLog::open(config.clone()).unwrap();
                    prop_assert_eq!(log.next_position(), model.events.len() as u64);
                }
            }
        }
        let report = log.verify(&mut |_| {}).unwrap();
        prop_assert_eq!(report.events, model.events.len() as u64);
        log.close().await;
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_log_behaves_like_its_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops, LogConfig::new("").stream_heads_kept)?;
    }

    /// A writer that keeps one stream head and reads the others back from
    /// the stream index decides every append as one that keeps them all.
    #[test]
    fn a_writer_keeping_one_head_behaves_like_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops, 1)?;
    }
}
