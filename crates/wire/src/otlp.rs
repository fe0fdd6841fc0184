//! OTLP/HTTP metrics: an `ExportMetricsServiceRequest` (protobuf or
//! OTLP/JSON) translated into Prometheus series as the OpenTelemetry
//! "Prometheus and OpenMetrics compatibility" specification says.
//!
//! Layer 4: depends only on `model`. Owns decoding ([`proto`], [`json`]),
//! the translation ([`translate`]) and the response bodies. It keeps no
//! state: delta sums and histograms come out marked
//! [`Temporality::Delta`], and the caller (`api`) turns them into running
//! totals.
//!
//! Translation, documented for users in `docs/push.md`:
//!
//! - metric names are split into words at every character other than ASCII
//!   letters, digits and `:` and joined with `_`; the unit is appended
//!   (`ms` → `_milliseconds`, `By` → `_bytes`, `1` → nothing, `{packets}` →
//!   nothing, `x/s` → `_x_per_second`) unless already a word of the name;
//!   monotonic sums get `_total`, gauges with unit `1` get `_ratio`;
//! - gauges and non-monotonic sums → gauges; monotonic sums → counters;
//!   histograms → `_bucket{le}` (cumulative, with `+Inf`), `_sum`, `_count`;
//!   summaries → `{quantile}` series, `_sum`, `_count`; exponential
//!   histograms are refused (native histograms come later);
//! - data point attributes → labels (names sanitized, values of colliding
//!   names joined with `;` in key order); scope name and version →
//!   `otel_scope_name`, `otel_scope_version`; resource `service.name`
//!   (prefixed by `service.namespace/`) → `job`, `service.instance.id` →
//!   `instance`; the other resource attributes → a `target_info` gauge of
//!   value 1 carrying `job` and `instance`;
//! - a point flagged `NO_RECORDED_VALUE` becomes a staleness marker.
//!
//! A request fails as a whole only when it cannot be decoded. Points that
//! cannot be translated are counted in [`Translated::num_rejected_points`] and
//! explained in [`Translated::errors`], which the answer's `partial_success`
//! carries.

pub mod json;
pub mod proto;

use std::collections::BTreeMap;

use model::{Label, Labels, Sample, METRIC_NAME, STALE_NAN};
use proto::{any_value, metric, AggregationTemporality, AnyValue, KeyValue};

use crate::names::sanitize_label_name;
use crate::DecodeLimits;

/// `Content-Type` of protobuf requests and answers.
pub const CONTENT_TYPE_PROTOBUF: &str = "application/x-protobuf";
/// `Content-Type` of JSON requests and answers.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// A request body could not be decoded at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtlpDecodeError {
    /// The body is not a protobuf `ExportMetricsServiceRequest`.
    #[error("invalid protobuf ExportMetricsServiceRequest: {source}")]
    Protobuf {
        /// The decoder's error.
        #[source]
        source: prost::DecodeError,
    },
    /// The body is not JSON.
    #[error("invalid JSON: {source}")]
    Json {
        /// The parser's error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The body is JSON but does not follow the OTLP/JSON mapping.
    #[error("invalid OTLP/JSON at {path}: {reason}")]
    JsonField {
        /// Where, e.g. `resourceMetrics[0].scopeMetrics[0].metrics[1].sum.dataPoints[0].timeUnixNano`.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Decodes a protobuf body.
pub fn decode_protobuf(body: &[u8]) -> Result<proto::ExportMetricsServiceRequest, OtlpDecodeError> {
    prost::Message::decode(body).map_err(|source| OtlpDecodeError::Protobuf { source })
}

/// Decodes an OTLP/JSON body.
pub fn decode_json(body: &[u8]) -> Result<proto::ExportMetricsServiceRequest, OtlpDecodeError> {
    json::decode(body)
}

/// How a translated sample relates to earlier ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporality {
    /// The value is what the series is (a gauge or a cumulative count).
    Cumulative,
    /// The value is an increment since the previous point; the caller adds
    /// it to the series' running total.
    Delta,
}

/// One translated sample.
#[derive(Debug, Clone, PartialEq)]
pub struct TranslatedSample {
    /// The series, `__name__` included.
    pub labels: Labels,
    /// The sample; a staleness marker for `NO_RECORDED_VALUE` points.
    pub sample: Sample,
    /// Whether `sample.v` is an increment.
    pub temporality: Temporality,
}

/// Metadata of one translated metric family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyMetadata {
    /// The family name, e.g. `http_server_duration_milliseconds` or `requests_total`.
    pub family: String,
    /// `counter`, `gauge`, `histogram` or `summary`.
    pub metric_type: &'static str,
    /// The metric's description.
    pub help: String,
    /// The metric's unit as sent.
    pub unit: String,
}

/// The result of translating a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Translated {
    /// Samples in request order.
    pub samples: Vec<TranslatedSample>,
    /// One entry per metric, in request order.
    pub metadata: Vec<FamilyMetadata>,
    /// Data points in the request.
    pub num_points: usize,
    /// Data points that were refused.
    pub num_rejected_points: usize,
    /// Why, one entry per metric (or `target_info`) with refusals.
    pub errors: Vec<PointError>,
}

/// Points of one metric were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metric {metric:?}: {num_points} data point(s) rejected: {reason}")]
pub struct PointError {
    /// The OTLP metric name as sent, cut to 100 characters.
    pub metric: String,
    /// How many points.
    pub num_points: usize,
    /// Why (the first reason, when several).
    pub reason: PointErrorReason,
}

/// Why points were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PointErrorReason {
    /// Exponential histograms need native histograms, not supported yet.
    #[error("exponential histograms are not supported yet (native histograms come later); configure the SDK to export explicit-bucket histograms")]
    ExponentialHistogram,
    /// Sums and histograms must say whether they are delta or cumulative.
    #[error("aggregation temporality is unspecified")]
    UnspecifiedTemporality,
    /// The metric name is empty, or only made of invalid characters.
    #[error("empty metric name")]
    EmptyName,
    /// A number point has neither `as_double` nor `as_int`.
    #[error("data point has no value")]
    MissingValue,
    /// `bucket_counts` must have one more entry than `explicit_bounds`.
    #[error("{num_counts} bucket counts for {num_bounds} explicit bounds (need bounds + 1)")]
    BucketCountMismatch {
        /// `bucket_counts.len()`.
        num_counts: usize,
        /// `explicit_bounds.len()`.
        num_bounds: usize,
    },
    /// The series would have more labels than allowed.
    #[error("{num_labels} labels exceed the limit of {limit}")]
    TooManyLabels {
        /// Labels of the series, metric name included.
        num_labels: usize,
        /// `DecodeLimits::max_labels_per_series`.
        limit: usize,
    },
    /// A label name is longer than allowed.
    #[error("label name {name:?} exceeds the limit of {limit} bytes")]
    LabelNameTooLong {
        /// The name, cut to 100 characters.
        name: String,
        /// `DecodeLimits::max_label_name_len`.
        limit: usize,
    },
    /// A label value (or the metric name) is longer than allowed.
    #[error("value of label {name:?} is {len} bytes, exceeding the limit of {limit}")]
    LabelValueTooLong {
        /// The label name.
        name: String,
        /// The value's length.
        len: usize,
        /// `DecodeLimits::max_label_value_len`.
        limit: usize,
    },
}

/// Most characters of a name in an error message.
const MAX_CHARS_IN_MESSAGE: usize = 100;

fn cut(s: &str) -> String {
    match s.char_indices().nth(MAX_CHARS_IN_MESSAGE) {
        None => s.to_string(),
        Some((end, _)) => format!("{}...", &s[..end]),
    }
}

/// Translates a decoded request. `now_ms` stands in for points without a
/// timestamp.
pub fn translate(request: &proto::ExportMetricsServiceRequest, limits: &DecodeLimits, now_ms: i64) -> Translated {
    let mut out = Translated::default();
    for rm in &request.resource_metrics {
        let resource_attrs: &[KeyValue] = rm.resource.as_ref().map_or(&[], |r| &r.attributes);
        let resource = ResourceLabels::new(resource_attrs);
        let first_sample = out.samples.len();
        let mut max_t: Option<i64> = None;
        for sm in &rm.scope_metrics {
            let mut scope_labels = Vec::new();
            if let Some(scope) = &sm.scope {
                scope_labels.push(Label::new("otel_scope_name", scope.name.clone()));
                scope_labels.push(Label::new("otel_scope_version", scope.version.clone()));
            }
            for m in &sm.metrics {
                let mut t = MetricTranslator {
                    metric: m,
                    limits,
                    now_ms,
                    scope_labels: &scope_labels,
                    resource: &resource,
                    out: &mut out,
                    rejected: 0,
                    first_reason: None,
                };
                t.run();
            }
        }
        for s in &out.samples[first_sample..] {
            max_t = Some(max_t.map_or(s.sample.t, |t: i64| t.max(s.sample.t)));
        }
        if let Some(t) = max_t {
            target_info(&resource, limits, t, &mut out);
        }
    }
    out
}

/// What the resource contributes: `job`, `instance` and the other attributes.
struct ResourceLabels {
    job: String,
    instance: String,
    /// Attributes other than `service.*` identifiers, for `target_info`.
    other: Vec<(String, String)>,
}

impl ResourceLabels {
    fn new(attrs: &[KeyValue]) -> Self {
        let mut name = String::new();
        let mut namespace = String::new();
        let mut instance = String::new();
        let mut other = Vec::new();
        for kv in attrs {
            let value = any_value_to_string(kv.value.as_ref());
            match kv.key.as_str() {
                "service.name" => name = value,
                "service.namespace" => namespace = value,
                "service.instance.id" => instance = value,
                _ => other.push((kv.key.clone(), value)),
            }
        }
        let job = if !namespace.is_empty() && !name.is_empty() {
            format!("{namespace}/{name}")
        } else {
            name
        };
        ResourceLabels { job, instance, other }
    }

    /// Adds `job` and `instance` when the resource has them.
    fn add_to(&self, labels: &mut Vec<Label>) {
        if !self.job.is_empty() {
            labels.push(Label::new("job", self.job.clone()));
        }
        if !self.instance.is_empty() {
            labels.push(Label::new("instance", self.instance.clone()));
        }
    }
}

/// Adds `target_info{job, instance, <resource attributes>} 1` when the
/// resource has attributes beyond the identifying ones.
fn target_info(resource: &ResourceLabels, limits: &DecodeLimits, t: i64, out: &mut Translated) {
    if resource.other.is_empty() {
        return;
    }
    let mut labels = sanitize_attributes(resource.other.iter().map(|(k, v)| (k.as_str(), v.clone())));
    resource.add_to(&mut labels);
    labels.push(Label::new(METRIC_NAME, "target_info"));
    match check_limits(labels, limits) {
        Ok(labels) => out.samples.push(TranslatedSample {
            labels,
            sample: Sample::new(t, 1.0),
            temporality: Temporality::Cumulative,
        }),
        Err(reason) => out.errors.push(PointError {
            metric: "target_info".into(),
            num_points: 0,
            reason,
        }),
    }
}

/// Translates one metric's points into `out`.
struct MetricTranslator<'a> {
    metric: &'a proto::Metric,
    limits: &'a DecodeLimits,
    now_ms: i64,
    scope_labels: &'a [Label],
    resource: &'a ResourceLabels,
    out: &'a mut Translated,
    rejected: usize,
    first_reason: Option<PointErrorReason>,
}

/// The Prometheus kind of a metric, which decides the name suffixes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
    Histogram,
    Summary,
}

impl MetricTranslator<'_> {
    fn run(&mut self) {
        let Some(data) = &self.metric.data else {
            return;
        };
        match data {
            metric::Data::Gauge(g) => self.numbers(&g.data_points, Kind::Gauge, Temporality::Cumulative),
            metric::Data::Sum(s) => {
                let kind = if s.is_monotonic { Kind::Counter } else { Kind::Gauge };
                match temporality(s.aggregation_temporality) {
                    Some(temp) => self.numbers(&s.data_points, kind, temp),
                    None => self.reject_all(s.data_points.len(), PointErrorReason::UnspecifiedTemporality),
                }
            }
            metric::Data::Histogram(h) => match temporality(h.aggregation_temporality) {
                Some(temp) => self.histograms(&h.data_points, temp),
                None => self.reject_all(h.data_points.len(), PointErrorReason::UnspecifiedTemporality),
            },
            metric::Data::ExponentialHistogram(h) => {
                self.reject_all(h.data_points.len(), PointErrorReason::ExponentialHistogram)
            }
            metric::Data::Summary(s) => self.summaries(&s.data_points),
        }
        if let Some(reason) = self.first_reason.take() {
            self.out.num_rejected_points += self.rejected;
            self.out.errors.push(PointError {
                metric: cut(&self.metric.name),
                num_points: self.rejected,
                reason,
            });
        }
    }

    fn reject_all(&mut self, num_points: usize, reason: PointErrorReason) {
        self.out.num_points += num_points;
        if num_points > 0 {
            self.rejected += num_points;
            self.first_reason.get_or_insert(reason);
        }
    }

    fn reject(&mut self, reason: PointErrorReason) {
        self.rejected += 1;
        self.first_reason.get_or_insert(reason);
    }

    /// The family name, or `None` (and the points rejected) when empty.
    fn family_name(&mut self, kind: Kind, num_points: usize) -> Option<String> {
        let name = prometheus_name(&self.metric.name, &self.metric.unit, kind);
        if name.is_empty() {
            self.reject_all(num_points, PointErrorReason::EmptyName);
            return None;
        }
        self.out.num_points += num_points;
        self.out.metadata.push(FamilyMetadata {
            family: name.clone(),
            metric_type: match kind {
                Kind::Gauge => "gauge",
                Kind::Counter => "counter",
                Kind::Histogram => "histogram",
                Kind::Summary => "summary",
            },
            help: self.metric.description.clone(),
            unit: self.metric.unit.clone(),
        });
        Some(name)
    }

    /// Labels shared by all series of one point: attributes, scope, resource.
    fn point_labels(&self, attrs: &[KeyValue]) -> Vec<Label> {
        let mut labels = sanitize_attributes(
            attrs
                .iter()
                .map(|kv| (kv.key.as_str(), any_value_to_string(kv.value.as_ref()))),
        );
        set_labels(&mut labels, self.scope_labels.iter().cloned());
        let mut resource = Vec::new();
        self.resource.add_to(&mut resource);
        set_labels(&mut labels, resource);
        labels
    }

    fn timestamp(&self, time_unix_nano: u64) -> i64 {
        if time_unix_nano == 0 {
            self.now_ms
        } else {
            // u64 nanoseconds / 1e6 is at most 1.8e13, which fits an i64.
            (time_unix_nano / 1_000_000) as i64
        }
    }

    /// Builds all series of one point, or rejects the point as a whole.
    fn emit_point(&mut self, series: Vec<(Vec<Label>, f64)>, t: i64, temporality: Temporality) {
        let mut checked = Vec::with_capacity(series.len());
        for (labels, v) in series {
            match check_limits(labels, self.limits) {
                Ok(labels) => checked.push(TranslatedSample {
                    labels,
                    sample: Sample::new(t, v),
                    temporality,
                }),
                Err(reason) => {
                    self.reject(reason);
                    return;
                }
            }
        }
        self.out.samples.extend(checked);
    }

    fn numbers(&mut self, points: &[proto::NumberDataPoint], kind: Kind, temporality: Temporality) {
        let Some(name) = self.family_name(kind, points.len()) else {
            return;
        };
        for p in points {
            let v = if p.flags & proto::FLAG_NO_RECORDED_VALUE != 0 {
                STALE_NAN
            } else {
                match p.value {
                    Some(proto::number_data_point::Value::AsDouble(v)) => v,
                    Some(proto::number_data_point::Value::AsInt(v)) => v as f64,
                    None => {
                        self.reject(PointErrorReason::MissingValue);
                        continue;
                    }
                }
            };
            let mut labels = self.point_labels(&p.attributes);
            set_labels(&mut labels, [Label::new(METRIC_NAME, name.clone())]);
            let t = self.timestamp(p.time_unix_nano);
            self.emit_point(vec![(labels, v)], t, temporality);
        }
    }

    fn histograms(&mut self, points: &[proto::HistogramDataPoint], temporality: Temporality) {
        let Some(name) = self.family_name(Kind::Histogram, points.len()) else {
            return;
        };
        for p in points {
            if !p.bucket_counts.is_empty() && p.bucket_counts.len() != p.explicit_bounds.len() + 1 {
                self.reject(PointErrorReason::BucketCountMismatch {
                    num_counts: p.bucket_counts.len(),
                    num_bounds: p.explicit_bounds.len(),
                });
                continue;
            }
            let stale = p.flags & proto::FLAG_NO_RECORDED_VALUE != 0;
            let value = |v: f64| if stale { STALE_NAN } else { v };
            let base = self.point_labels(&p.attributes);
            let with = |suffix: &str, extra: Option<(&str, String)>| {
                let mut labels = base.clone();
                let mut set = vec![Label::new(METRIC_NAME, format!("{name}{suffix}"))];
                if let Some((n, v)) = extra {
                    set.push(Label::new(n, v));
                }
                set_labels(&mut labels, set);
                labels
            };
            let mut series = Vec::with_capacity(p.explicit_bounds.len() + 3);
            let mut cumulative: u64 = 0;
            if !p.bucket_counts.is_empty() {
                for (bound, count) in p.explicit_bounds.iter().zip(&p.bucket_counts) {
                    cumulative = cumulative.saturating_add(*count);
                    series.push((
                        with("_bucket", Some(("le", format_float(*bound)))),
                        value(cumulative as f64),
                    ));
                }
            }
            series.push((with("_bucket", Some(("le", "+Inf".into()))), value(p.count as f64)));
            if let Some(sum) = p.sum {
                series.push((with("_sum", None), value(sum)));
            }
            series.push((with("_count", None), value(p.count as f64)));
            let t = self.timestamp(p.time_unix_nano);
            self.emit_point(series, t, temporality);
        }
    }

    fn summaries(&mut self, points: &[proto::SummaryDataPoint]) {
        let Some(name) = self.family_name(Kind::Summary, points.len()) else {
            return;
        };
        for p in points {
            let stale = p.flags & proto::FLAG_NO_RECORDED_VALUE != 0;
            let value = |v: f64| if stale { STALE_NAN } else { v };
            let base = self.point_labels(&p.attributes);
            let with = |suffix: &str, quantile: Option<f64>| {
                let mut labels = base.clone();
                let mut set = vec![Label::new(METRIC_NAME, format!("{name}{suffix}"))];
                if let Some(q) = quantile {
                    set.push(Label::new("quantile", format_float(q)));
                }
                set_labels(&mut labels, set);
                labels
            };
            let mut series = Vec::with_capacity(p.quantile_values.len() + 2);
            for q in &p.quantile_values {
                series.push((with("", Some(q.quantile)), value(q.value)));
            }
            series.push((with("_sum", None), value(p.sum)));
            series.push((with("_count", None), value(p.count as f64)));
            let t = self.timestamp(p.time_unix_nano);
            self.emit_point(series, t, Temporality::Cumulative);
        }
    }
}

fn temporality(value: i32) -> Option<Temporality> {
    match AggregationTemporality::try_from(value) {
        Ok(AggregationTemporality::Delta) => Some(Temporality::Delta),
        Ok(AggregationTemporality::Cumulative) => Some(Temporality::Cumulative),
        _ => None,
    }
}

/// Replaces or adds labels by name.
fn set_labels(labels: &mut Vec<Label>, set: impl IntoIterator<Item = Label>) {
    for l in set {
        match labels.iter_mut().find(|x| x.name == l.name) {
            Some(existing) => existing.value = l.value,
            None => labels.push(l),
        }
    }
}

/// Sanitizes attribute keys; values of keys that sanitize to the same name
/// are joined with `;` in the order of the original keys. Empty keys are dropped.
fn sanitize_attributes<'k>(attrs: impl Iterator<Item = (&'k str, String)>) -> Vec<Label> {
    let mut sorted: Vec<(&str, String)> = attrs.filter(|(k, _)| !k.is_empty()).collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in sorted {
        let name = sanitize_label_name(key);
        match by_name.get_mut(&name) {
            Some(existing) => {
                existing.push(';');
                existing.push_str(&value);
            }
            None => {
                by_name.insert(name, value);
            }
        }
    }
    by_name.into_iter().map(|(n, v)| Label::new(n, v)).collect()
}

/// Normalises labels and checks them against the limits.
fn check_limits(labels: Vec<Label>, limits: &DecodeLimits) -> Result<Labels, PointErrorReason> {
    let labels = Labels::new(labels);
    if labels.len() > limits.max_labels_per_series {
        return Err(PointErrorReason::TooManyLabels {
            num_labels: labels.len(),
            limit: limits.max_labels_per_series,
        });
    }
    for l in labels.iter() {
        if l.name.len() > limits.max_label_name_len {
            return Err(PointErrorReason::LabelNameTooLong {
                name: cut(&l.name),
                limit: limits.max_label_name_len,
            });
        }
        if l.value.len() > limits.max_label_value_len {
            return Err(PointErrorReason::LabelValueTooLong {
                name: cut(&l.name),
                len: l.value.len(),
                limit: limits.max_label_value_len,
            });
        }
    }
    Ok(labels)
}

/// Formats a float as Go's `strconv.FormatFloat(v, 'f', -1, 64)`, which is
/// what Prometheus uses for `le` and `quantile`, with `+Inf`/`-Inf`/`NaN`.
fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// An attribute value as a label value: strings as is, numbers and booleans
/// as text, bytes in base64, arrays and maps as JSON (as the OpenTelemetry
/// collector's `AsString` does).
fn any_value_to_string(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => format_float(*d),
        Some(any_value::Value::BytesValue(b)) => json::base64_encode(b),
        Some(other @ (any_value::Value::ArrayValue(_) | any_value::Value::KvlistValue(_))) => {
            json::any_value_to_json(&AnyValue {
                value: Some(other.clone()),
            })
            .to_string()
        }
    }
}

/// OpenTelemetry units and their Prometheus words (from the collector's
/// `prometheus` translator).
fn unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        _ => return None,
    })
}

/// Units after a `/` and their Prometheus words.
fn per_unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

/// Splits a name into words at every character that is not an ASCII letter,
/// digit or `:`.
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// A unit as Prometheus words: mapped when known, annotations (`{...}`)
/// dropped, otherwise sanitized.
fn unit_words(unit: &str, map: fn(&str) -> Option<&'static str>) -> Vec<String> {
    let unit = unit.trim();
    if unit.is_empty() || unit.contains(['{', '}']) {
        return Vec::new();
    }
    match map(unit) {
        Some(word) => words(word),
        None => words(unit),
    }
}

/// The Prometheus family name of an OTLP metric (without `_bucket`/`_sum`/`_count`).
fn prometheus_name(name: &str, unit: &str, kind: Kind) -> String {
    let mut tokens = words(name);
    if tokens.is_empty() {
        return String::new();
    }
    let (main, per) = match unit.split_once('/') {
        Some((main, per)) => (main, per),
        None => (unit, ""),
    };
    let main_words = unit_words(main, unit_word);
    if !main_words.is_empty() && !contains_run(&tokens, &main_words) {
        tokens.extend(main_words);
    }
    let per_words = unit_words(per, per_unit_word);
    if !per_words.is_empty() && !contains_run(&tokens, &per_words) {
        tokens.push("per".into());
        tokens.extend(per_words);
    }
    if kind == Kind::Counter {
        tokens.retain(|t| t != "total");
        tokens.push("total".into());
    }
    if kind == Kind::Gauge && unit.trim() == "1" {
        tokens.retain(|t| t != "ratio");
        tokens.push("ratio".into());
    }
    let mut out = tokens.join("_");
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Tells whether `run` appears as consecutive words of `tokens`.
fn contains_run(tokens: &[String], run: &[String]) -> bool {
    !run.is_empty() && tokens.windows(run.len()).any(|w| w == run)
}

/// Builds the answer to an export: `partial_success` only when points were
/// rejected, as the OTLP specification asks.
pub fn response(translated_rejected: usize, error_message: &str) -> proto::ExportMetricsServiceResponse {
    proto::ExportMetricsServiceResponse {
        partial_success: (translated_rejected > 0 || !error_message.is_empty()).then(|| {
            proto::ExportMetricsPartialSuccess {
                rejected_data_points: translated_rejected as i64,
                error_message: error_message.to_string(),
            }
        }),
    }
}

/// Encodes an export answer as protobuf.
pub fn encode_response_protobuf(response: &proto::ExportMetricsServiceResponse) -> Vec<u8> {
    prost::Message::encode_to_vec(response)
}

/// Encodes an export answer as OTLP/JSON (int64 as a string).
pub fn encode_response_json(response: &proto::ExportMetricsServiceResponse) -> Vec<u8> {
    let value = match &response.partial_success {
        None => serde_json::json!({}),
        Some(p) => serde_json::json!({
            "partialSuccess": {
                "rejectedDataPoints": p.rejected_data_points.to_string(),
                "errorMessage": p.error_message,
            }
        }),
    };
    value.to_string().into_bytes()
}

/// The gRPC code `INVALID_ARGUMENT`, used in [`proto::Status`] for 400 answers.
pub const STATUS_INVALID_ARGUMENT: i32 = 3;

/// Encodes a `google.rpc.Status` error body as protobuf.
pub fn encode_status_protobuf(code: i32, message: &str) -> Vec<u8> {
    prost::Message::encode_to_vec(&proto::Status {
        code,
        message: message.to_string(),
    })
}

/// Encodes a `google.rpc.Status` error body as JSON.
pub fn encode_status_json(code: i32, message: &str) -> Vec<u8> {
    serde_json::json!({ "code": code, "message": message })
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests;
