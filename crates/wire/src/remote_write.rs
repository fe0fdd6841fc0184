//! Prometheus remote write 1.0: a snappy-compressed (block format) protobuf
//! [`prompb::WriteRequest`], converted into our [`Labels`] and [`Sample`]s.
//!
//! Layer 4: depends only on `model`. Owns body-level checks (sizes, snappy,
//! protobuf) and per-series checks (label names, lengths, counts, metric
//! name, native histograms). It does not check sample timestamps, ordering or
//! duplicates — that is the storage's job — and it does not store anything.
//!
//! A request fails as a whole ([`WireError`]) only when its body cannot be
//! decoded. Bad series are collected in [`DecodedWrite::rejected`], each with a
//! message that names the series, so that the API can store the valid series
//! and still answer 400 with [`DecodedWrite::rejection_message`], which is what
//! Prometheus does for partially bad requests (a 400 is not retried).
//!
//! Exemplars are decoded and counted but not returned.

use std::fmt;

use model::{Label, Labels, Sample, METRIC_NAME};

use crate::error::WireError;
use crate::prompb;
use crate::{snappy, DecodeLimits};

/// The `Content-Type` of a remote-write request.
pub const CONTENT_TYPE: &str = "application/x-protobuf";
/// The `Content-Encoding` of a remote-write request.
pub const CONTENT_ENCODING: &str = "snappy";
/// The header in which remote-write 1.0 clients announce their version.
pub const VERSION_HEADER: &str = "X-Prometheus-Remote-Write-Version";
/// The protocol version this module implements.
pub const VERSION: &str = "0.1.0";

/// How many rejected series [`DecodedWrite::rejection_message`] spells out.
const MAX_REJECTIONS_IN_MESSAGE: usize = 10;
/// Label names and values longer than this are cut in error messages, so that
/// a hostile 4 KiB value is not echoed back whole.
const MAX_LABEL_CHARS_IN_MESSAGE: usize = 100;
/// At most this many labels are spelled out when naming a series in an error.
const MAX_LABELS_IN_MESSAGE: usize = 20;

/// Metadata of one metric family, as sent by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricMetadata {
    /// The family name, e.g. `http_requests` (no `_total`/`_bucket` suffix handling is done).
    pub family: String,
    /// The lowercase type as the metadata API shows it: `counter`, `gauge`,
    /// `histogram`, `gaugehistogram`, `summary`, `info`, `stateset` or `unknown`
    /// (also for type numbers we do not know).
    pub metric_type: &'static str,
    /// The help text.
    pub help: String,
    /// The unit, often empty.
    pub unit: String,
}

/// The result of decoding a remote-write body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodedWrite {
    /// The valid series with their float samples, in request order. Labels are
    /// normalised (sorted, empty values dropped); samples are as sent, which
    /// may be unsorted. Series without samples are left out.
    pub series: Vec<(Labels, Vec<Sample>)>,
    /// Metric metadata, in request order.
    pub metadata: Vec<MetricMetadata>,
    /// Series (or parts of series) that were refused, with the reason.
    pub rejected: Vec<SeriesError>,
    /// How many exemplars the request carried; they are not stored.
    pub num_exemplars_ignored: usize,
}

impl DecodedWrite {
    /// The number of float samples in the accepted series.
    pub fn num_samples(&self) -> usize {
        self.series.iter().map(|(_, samples)| samples.len()).sum()
    }

    /// A one-line message for a 400 answer when some series were refused,
    /// listing the first few rejections; `None` when nothing was refused.
    pub fn rejection_message(&self) -> Option<String> {
        let first = self.rejected.first()?;
        let mut msg = format!("{} series rejected: {first}", self.rejected.len());
        for e in self.rejected.iter().skip(1).take(MAX_REJECTIONS_IN_MESSAGE - 1) {
            msg.push_str("; ");
            msg.push_str(&e.to_string());
        }
        if self.rejected.len() > MAX_REJECTIONS_IN_MESSAGE {
            msg.push_str(&format!(
                "; and {} more",
                self.rejected.len() - MAX_REJECTIONS_IN_MESSAGE
            ));
        }
        Some(msg)
    }
}

/// One series of a request was refused (or, for native histograms, part of it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("series {series}: {reason}")]
pub struct SeriesError {
    /// The series as sent, e.g. `{__name__="up", job="node"}`, with long names
    /// and values cut short.
    pub series: String,
    /// Why it was refused.
    pub reason: SeriesErrorReason,
}

/// Why a series was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeriesErrorReason {
    /// A label has an empty name.
    #[error("label with empty name")]
    EmptyLabelName,
    /// Two labels have the same name.
    #[error("duplicate label name {name:?}")]
    DuplicateLabelName {
        /// The repeated name.
        name: String,
    },
    /// There is no `__name__` label, or its value is empty.
    #[error("missing metric name (label __name__)")]
    MissingMetricName,
    /// The series has more labels than allowed.
    #[error("{num_labels} labels exceed the limit of {limit}")]
    TooManyLabels {
        /// The number of labels sent.
        num_labels: usize,
        /// `DecodeLimits::max_labels_per_series`.
        limit: usize,
    },
    /// A label name is longer than allowed.
    #[error("label name of {len} bytes exceeds the limit of {limit}")]
    LabelNameTooLong {
        /// The name's length in bytes.
        len: usize,
        /// `DecodeLimits::max_label_name_len`.
        limit: usize,
    },
    /// A label value is longer than allowed.
    #[error("value of label {name:?} is {len} bytes, exceeding the limit of {limit}")]
    LabelValueTooLong {
        /// The label name, cut short if long.
        name: String,
        /// The value's length in bytes.
        len: usize,
        /// `DecodeLimits::max_label_value_len`.
        limit: usize,
    },
    /// The series carries native histogram samples, which we do not store yet.
    /// Its float samples, if any and if the labels are valid, are still accepted.
    #[error("{num_histograms} native histogram samples dropped: native histograms are not supported")]
    NativeHistogramsUnsupported {
        /// How many histogram samples were dropped.
        num_histograms: usize,
    },
}

/// Decodes a snappy-compressed remote-write body.
///
/// Fails only when the body as a whole is unusable: too large (checked before
/// decompressing), not snappy, not a protobuf `WriteRequest`, or holding
/// non-UTF-8 strings. Invalid series end up in [`DecodedWrite::rejected`].
pub fn decode(body: &[u8], limits: &DecodeLimits) -> Result<DecodedWrite, WireError> {
    let request = decode_write_request(body, limits)?;
    Ok(convert_write_request(request, limits))
}

/// Decodes a snappy-compressed body into the raw protobuf message, without
/// any per-series checks.
pub fn decode_write_request(body: &[u8], limits: &DecodeLimits) -> Result<prompb::WriteRequest, WireError> {
    let raw = snappy::decompress(body, limits)?;
    prost::Message::decode(raw.as_slice()).map_err(|e| WireError::protobuf("WriteRequest", e))
}

fn convert_write_request(request: prompb::WriteRequest, limits: &DecodeLimits) -> DecodedWrite {
    let mut out = DecodedWrite {
        series: Vec::with_capacity(request.timeseries.len()),
        ..DecodedWrite::default()
    };
    for ts in request.timeseries {
        out.num_exemplars_ignored += ts.exemplars.len();
        if let Err(reason) = validate_labels(&ts.labels, limits) {
            out.rejected.push(SeriesError {
                series: describe_series(&ts.labels),
                reason,
            });
            continue;
        }
        if !ts.histograms.is_empty() {
            out.rejected.push(SeriesError {
                series: describe_series(&ts.labels),
                reason: SeriesErrorReason::NativeHistogramsUnsupported {
                    num_histograms: ts.histograms.len(),
                },
            });
        }
        if ts.samples.is_empty() {
            continue;
        }
        let labels = Labels::new(ts.labels.into_iter().map(|l| Label::new(l.name, l.value)).collect());
        let samples = ts.samples.iter().map(|s| Sample::new(s.timestamp, s.value)).collect();
        out.series.push((labels, samples));
    }
    out.metadata = request
        .metadata
        .into_iter()
        .map(|m| MetricMetadata {
            metric_type: prompb::MetricType::try_from(m.r#type)
                .unwrap_or(prompb::MetricType::Unknown)
                .as_exposition_str(),
            family: m.metric_family_name,
            help: m.help,
            unit: m.unit,
        })
        .collect();
    out
}

/// Checks one series' labels as sent, before normalisation.
fn validate_labels(labels: &[prompb::Label], limits: &DecodeLimits) -> Result<(), SeriesErrorReason> {
    if labels.len() > limits.max_labels_per_series {
        return Err(SeriesErrorReason::TooManyLabels {
            num_labels: labels.len(),
            limit: limits.max_labels_per_series,
        });
    }
    let mut has_metric_name = false;
    for l in labels {
        if l.name.is_empty() {
            return Err(SeriesErrorReason::EmptyLabelName);
        }
        if l.name.len() > limits.max_label_name_len {
            return Err(SeriesErrorReason::LabelNameTooLong {
                len: l.name.len(),
                limit: limits.max_label_name_len,
            });
        }
        if l.value.len() > limits.max_label_value_len {
            return Err(SeriesErrorReason::LabelValueTooLong {
                name: l.name.clone(),
                len: l.value.len(),
                limit: limits.max_label_value_len,
            });
        }
        has_metric_name |= l.name == METRIC_NAME && !l.value.is_empty();
    }
    // Senders must sort labels, so duplicates are usually adjacent; sort a copy
    // of the names only when the input is not sorted.
    let sorted = labels.windows(2).all(|w| w[0].name <= w[1].name);
    let duplicate = if sorted {
        labels.windows(2).find(|w| w[0].name == w[1].name).map(|w| &w[0].name)
    } else {
        let mut names: Vec<&String> = labels.iter().map(|l| &l.name).collect();
        names.sort_unstable();
        names.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
    };
    if let Some(name) = duplicate {
        return Err(SeriesErrorReason::DuplicateLabelName { name: name.clone() });
    }
    if !has_metric_name {
        return Err(SeriesErrorReason::MissingMetricName);
    }
    Ok(())
}

/// Formats labels as sent, like Prometheus prints a label set, cutting long
/// names and values and long label lists.
fn describe_series(labels: &[prompb::Label]) -> String {
    struct Cut<'a>(&'a str);
    impl fmt::Display for Cut<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self.0.char_indices().nth(MAX_LABEL_CHARS_IN_MESSAGE) {
                None => write!(f, "{:?}", self.0),
                Some((end, _)) => write!(f, "{:?}...({} bytes)", &self.0[..end], self.0.len()),
            }
        }
    }
    let mut out = String::from("{");
    for (i, l) in labels.iter().take(MAX_LABELS_IN_MESSAGE).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        // Names are printed bare when they are plain identifiers, quoted otherwise.
        let plain = !l.name.is_empty()
            && l.name.len() <= MAX_LABEL_CHARS_IN_MESSAGE
            && l.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if plain {
            out.push_str(&l.name);
        } else {
            out.push_str(&Cut(&l.name).to_string());
        }
        out.push('=');
        out.push_str(&Cut(&l.value).to_string());
    }
    if labels.len() > MAX_LABELS_IN_MESSAGE {
        out.push_str(&format!(", ...{} more", labels.len() - MAX_LABELS_IN_MESSAGE));
    }
    out.push('}');
    out
}

/// Builds the protobuf message for series and metadata. Unknown metadata
/// type names become `UNKNOWN`.
pub fn to_write_request(series: &[(Labels, Vec<Sample>)], metadata: &[MetricMetadata]) -> prompb::WriteRequest {
    prompb::WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| prompb::TimeSeries {
                labels: labels_to_prompb(labels),
                samples: samples
                    .iter()
                    .map(|s| prompb::Sample {
                        value: s.v,
                        timestamp: s.t,
                    })
                    .collect(),
                exemplars: Vec::new(),
                histograms: Vec::new(),
            })
            .collect(),
        metadata: metadata
            .iter()
            .map(|m| prompb::MetricMetadata {
                r#type: metric_type_from_str(m.metric_type) as i32,
                metric_family_name: m.family.clone(),
                help: m.help.clone(),
                unit: m.unit.clone(),
            })
            .collect(),
    }
}

/// Encodes series and metadata as a snappy-compressed remote-write body.
///
/// Fails only when the encoded request exceeds snappy's 4 GiB block limit.
pub fn encode(series: &[(Labels, Vec<Sample>)], metadata: &[MetricMetadata]) -> Result<Vec<u8>, WireError> {
    encode_write_request(&to_write_request(series, metadata))
}

/// Encodes any protobuf `WriteRequest` as a snappy-compressed body (useful
/// to build requests our own types cannot express, e.g. with histograms).
pub fn encode_write_request(request: &prompb::WriteRequest) -> Result<Vec<u8>, WireError> {
    snappy::compress(&prost::Message::encode_to_vec(request))
}

pub(crate) fn labels_to_prompb(labels: &Labels) -> Vec<prompb::Label> {
    labels
        .iter()
        .map(|l| prompb::Label {
            name: l.name.clone(),
            value: l.value.clone(),
        })
        .collect()
}

fn metric_type_from_str(s: &str) -> prompb::MetricType {
    use prompb::MetricType as T;
    [
        T::Counter,
        T::Gauge,
        T::Histogram,
        T::GaugeHistogram,
        T::Summary,
        T::Info,
        T::StateSet,
    ]
    .into_iter()
    .find(|t| t.as_exposition_str() == s)
    .unwrap_or(T::Unknown)
}

#[cfg(test)]
mod tests;
