//! The helpers every scrape-time owner of figures (the external systems'
//! counters, the relay's status, the consumers, the log and the projectors
//! in the server) writes its Prometheus families with, into the server's
//! one registry (prometheus-client, ADR 0012).

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::TypedMetric;

/// Writes one metric family whose samples are read at scrape time: its
/// `# HELP` and `# TYPE` lines, then one sample per label set. The type
/// comes from the metric: for a counter, `name` is the family name without
/// `_total`, which the encoder appends to every sample.
///
/// This is how every owner of figures (these counters, the relay's status,
/// the log and the projectors in the server) writes into the server's one
/// registry from its `Collector`.
///
/// # Errors
/// When the writer fails.
pub fn encode_family<S, M>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (S, M)>,
) -> Result<(), std::fmt::Error>
where
    S: EncodeLabelSet,
    M: EncodeMetric + TypedMetric,
{
    let mut family = encoder.encode_descriptor(name, help, None, M::TYPE)?;
    for (labels, metric) in samples {
        metric.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes one metric family of a single sample without labels (see
/// [`encode_family`] for the naming of counters).
///
/// # Errors
/// When the writer fails.
pub fn encode_metric<M>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric: M,
) -> Result<(), std::fmt::Error>
where
    M: EncodeMetric + TypedMetric,
{
    metric.encode(encoder.encode_descriptor(name, help, None, M::TYPE)?)
}
