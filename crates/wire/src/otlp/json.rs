//! OTLP/JSON: the protobuf JSON mapping of an `ExportMetricsServiceRequest`,
//! decoded into the [`super::proto`] messages.
//!
//! Layer 4. Follows the OTLP specification's JSON rules: keys are lowerCamelCase
//! (the original snake_case names are accepted too, as protobuf JSON parsers
//! do); 64-bit integers may be strings or numbers; doubles may be numbers or
//! `"NaN"`, `"Infinity"`, `"-Infinity"`; enums are integers (names are
//! accepted too); `bytes` values are base64; unknown keys are ignored and
//! `null` means absent. Exemplars are skipped: they are never stored.
//!
//! Nesting is bounded by `serde_json`'s recursion limit (128), so deeply
//! nested attribute values cannot overflow the stack.

use serde_json::{Map, Value};

use super::proto::{self, any_value, metric};
use super::OtlpDecodeError;

/// Decodes an OTLP/JSON body.
pub(crate) fn decode(body: &[u8]) -> Result<proto::ExportMetricsServiceRequest, OtlpDecodeError> {
    let value: Value = serde_json::from_slice(body).map_err(|source| OtlpDecodeError::Json { source })?;
    let mut path = Path::default();
    let root = object(&value, &path)?;
    let resource_metrics = list(root, "resourceMetrics", "resource_metrics", &mut path, resource_metrics)?;
    Ok(proto::ExportMetricsServiceRequest { resource_metrics })
}

/// Where the decoder is, rendered only for error messages.
#[derive(Default)]
struct Path(Vec<Segment>);

enum Segment {
    Key(&'static str),
    Index(usize),
}

impl Path {
    fn render(&self) -> String {
        let mut out = String::new();
        for seg in &self.0 {
            match seg {
                Segment::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        if out.is_empty() {
            out.push_str("top level");
        }
        out
    }

    fn error(&self, reason: impl Into<String>) -> OtlpDecodeError {
        OtlpDecodeError::JsonField {
            path: self.render(),
            reason: reason.into(),
        }
    }
}

type Obj = Map<String, Value>;

fn object<'v>(value: &'v Value, path: &Path) -> Result<&'v Obj, OtlpDecodeError> {
    value.as_object().ok_or_else(|| path.error("expected an object"))
}

/// The value under `camel` (or `snake`), `None` when absent or null.
fn get<'v>(obj: &'v Obj, camel: &str, snake: &str) -> Option<&'v Value> {
    obj.get(camel).or_else(|| obj.get(snake)).filter(|v| !v.is_null())
}

/// Decodes a list of objects under a key, each with `decode_item`.
fn list<T>(
    obj: &Obj,
    camel: &'static str,
    snake: &str,
    path: &mut Path,
    decode_item: fn(&Obj, &mut Path) -> Result<T, OtlpDecodeError>,
) -> Result<Vec<T>, OtlpDecodeError> {
    let Some(value) = get(obj, camel, snake) else {
        return Ok(Vec::new());
    };
    path.0.push(Segment::Key(camel));
    let items = value.as_array().ok_or_else(|| path.error("expected an array"))?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        path.0.push(Segment::Index(i));
        let item = object(item, path)?;
        out.push(decode_item(item, path)?);
        path.0.pop();
    }
    path.0.pop();
    Ok(out)
}

/// Decodes an optional nested object under a key.
fn nested<T>(
    obj: &Obj,
    camel: &'static str,
    snake: &str,
    path: &mut Path,
    decode_item: fn(&Obj, &mut Path) -> Result<T, OtlpDecodeError>,
) -> Result<Option<T>, OtlpDecodeError> {
    let Some(value) = get(obj, camel, snake) else {
        return Ok(None);
    };
    path.0.push(Segment::Key(camel));
    let item = object(value, path)?;
    let out = decode_item(item, path)?;
    path.0.pop();
    Ok(Some(out))
}

/// Runs a scalar decoder on the value under a key, with the key in the path
/// of any error.
fn scalar<T>(
    obj: &Obj,
    camel: &'static str,
    snake: &str,
    path: &mut Path,
    decode_value: fn(&Value) -> Result<T, String>,
) -> Result<Option<T>, OtlpDecodeError> {
    let Some(value) = get(obj, camel, snake) else {
        return Ok(None);
    };
    decode_value(value).map(Some).map_err(|reason| {
        path.0.push(Segment::Key(camel));
        let e = path.error(reason);
        path.0.pop();
        e
    })
}

fn string(v: &Value) -> Result<String, String> {
    v.as_str().map(str::to_string).ok_or_else(|| "expected a string".into())
}

fn boolean(v: &Value) -> Result<bool, String> {
    v.as_bool().ok_or_else(|| "expected a boolean".into())
}

fn uint64(v: &Value) -> Result<u64, String> {
    match v {
        Value::String(s) => s
            .parse()
            .map_err(|_| format!("expected an unsigned 64-bit integer, got {s:?}")),
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("expected an unsigned 64-bit integer, got {n}")),
        _ => Err("expected an unsigned 64-bit integer (string or number)".into()),
    }
}

fn int64(v: &Value) -> Result<i64, String> {
    match v {
        Value::String(s) => s.parse().map_err(|_| format!("expected a 64-bit integer, got {s:?}")),
        Value::Number(n) => n.as_i64().ok_or_else(|| format!("expected a 64-bit integer, got {n}")),
        _ => Err("expected a 64-bit integer (string or number)".into()),
    }
}

fn uint32(v: &Value) -> Result<u32, String> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| "expected an unsigned 32-bit integer".into())
}

fn double(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| "expected a number".into()),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other.parse().map_err(|_| format!("expected a number, got {other:?}")),
        },
        _ => Err("expected a number".into()),
    }
}

fn temporality(v: &Value) -> Result<i32, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| "expected an enum number".into()),
        Value::String(s) => match s.as_str() {
            "AGGREGATION_TEMPORALITY_UNSPECIFIED" => Ok(0),
            "AGGREGATION_TEMPORALITY_DELTA" => Ok(1),
            "AGGREGATION_TEMPORALITY_CUMULATIVE" => Ok(2),
            other => Err(format!("unknown aggregation temporality {other:?}")),
        },
        _ => Err("expected an enum number".into()),
    }
}

fn doubles(v: &Value) -> Result<Vec<f64>, String> {
    v.as_array()
        .ok_or_else(|| String::from("expected an array of numbers"))?
        .iter()
        .map(double)
        .collect()
}

fn uint64s(v: &Value) -> Result<Vec<u64>, String> {
    v.as_array()
        .ok_or_else(|| String::from("expected an array of integers"))?
        .iter()
        .map(uint64)
        .collect()
}

fn resource_metrics(obj: &Obj, path: &mut Path) -> Result<proto::ResourceMetrics, OtlpDecodeError> {
    Ok(proto::ResourceMetrics {
        resource: nested(obj, "resource", "resource", path, resource)?,
        scope_metrics: list(obj, "scopeMetrics", "scope_metrics", path, scope_metrics)?,
        schema_url: scalar(obj, "schemaUrl", "schema_url", path, string)?.unwrap_or_default(),
    })
}

fn resource(obj: &Obj, path: &mut Path) -> Result<proto::Resource, OtlpDecodeError> {
    Ok(proto::Resource {
        attributes: list(obj, "attributes", "attributes", path, key_value)?,
        dropped_attributes_count: scalar(obj, "droppedAttributesCount", "dropped_attributes_count", path, uint32)?
            .unwrap_or_default(),
    })
}

fn scope_metrics(obj: &Obj, path: &mut Path) -> Result<proto::ScopeMetrics, OtlpDecodeError> {
    Ok(proto::ScopeMetrics {
        scope: nested(obj, "scope", "scope", path, scope)?,
        metrics: list(obj, "metrics", "metrics", path, metric)?,
        schema_url: scalar(obj, "schemaUrl", "schema_url", path, string)?.unwrap_or_default(),
    })
}

fn scope(obj: &Obj, path: &mut Path) -> Result<proto::InstrumentationScope, OtlpDecodeError> {
    Ok(proto::InstrumentationScope {
        name: scalar(obj, "name", "name", path, string)?.unwrap_or_default(),
        version: scalar(obj, "version", "version", path, string)?.unwrap_or_default(),
        attributes: list(obj, "attributes", "attributes", path, key_value)?,
        dropped_attributes_count: scalar(obj, "droppedAttributesCount", "dropped_attributes_count", path, uint32)?
            .unwrap_or_default(),
    })
}

fn metric(obj: &Obj, path: &mut Path) -> Result<proto::Metric, OtlpDecodeError> {
    let data = if let Some(g) = nested(obj, "gauge", "gauge", path, gauge)? {
        Some(metric::Data::Gauge(g))
    } else if let Some(s) = nested(obj, "sum", "sum", path, sum)? {
        Some(metric::Data::Sum(s))
    } else if let Some(h) = nested(obj, "histogram", "histogram", path, histogram)? {
        Some(metric::Data::Histogram(h))
    } else if let Some(h) = nested(
        obj,
        "exponentialHistogram",
        "exponential_histogram",
        path,
        exponential_histogram,
    )? {
        Some(metric::Data::ExponentialHistogram(h))
    } else {
        nested(obj, "summary", "summary", path, summary)?.map(metric::Data::Summary)
    };
    Ok(proto::Metric {
        name: scalar(obj, "name", "name", path, string)?.unwrap_or_default(),
        description: scalar(obj, "description", "description", path, string)?.unwrap_or_default(),
        unit: scalar(obj, "unit", "unit", path, string)?.unwrap_or_default(),
        data,
    })
}

fn gauge(obj: &Obj, path: &mut Path) -> Result<proto::Gauge, OtlpDecodeError> {
    Ok(proto::Gauge {
        data_points: list(obj, "dataPoints", "data_points", path, number_point)?,
    })
}

fn sum(obj: &Obj, path: &mut Path) -> Result<proto::Sum, OtlpDecodeError> {
    Ok(proto::Sum {
        data_points: list(obj, "dataPoints", "data_points", path, number_point)?,
        aggregation_temporality: scalar(
            obj,
            "aggregationTemporality",
            "aggregation_temporality",
            path,
            temporality,
        )?
        .unwrap_or_default(),
        is_monotonic: scalar(obj, "isMonotonic", "is_monotonic", path, boolean)?.unwrap_or_default(),
    })
}

fn histogram(obj: &Obj, path: &mut Path) -> Result<proto::Histogram, OtlpDecodeError> {
    Ok(proto::Histogram {
        data_points: list(obj, "dataPoints", "data_points", path, histogram_point)?,
        aggregation_temporality: scalar(
            obj,
            "aggregationTemporality",
            "aggregation_temporality",
            path,
            temporality,
        )?
        .unwrap_or_default(),
    })
}

fn exponential_histogram(obj: &Obj, path: &mut Path) -> Result<proto::ExponentialHistogram, OtlpDecodeError> {
    // Exponential histograms are refused point by point; only the number of
    // points matters, so their contents are not decoded.
    let num_points = get(obj, "dataPoints", "data_points")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let _ = path;
    Ok(proto::ExponentialHistogram {
        data_points: vec![proto::ExponentialHistogramDataPoint::default(); num_points],
        aggregation_temporality: 0,
    })
}

fn summary(obj: &Obj, path: &mut Path) -> Result<proto::Summary, OtlpDecodeError> {
    Ok(proto::Summary {
        data_points: list(obj, "dataPoints", "data_points", path, summary_point)?,
    })
}

fn number_point(obj: &Obj, path: &mut Path) -> Result<proto::NumberDataPoint, OtlpDecodeError> {
    use proto::number_data_point::Value as V;
    let value = if let Some(v) = scalar(obj, "asDouble", "as_double", path, double)? {
        Some(V::AsDouble(v))
    } else {
        scalar(obj, "asInt", "as_int", path, int64)?.map(V::AsInt)
    };
    Ok(proto::NumberDataPoint {
        attributes: list(obj, "attributes", "attributes", path, key_value)?,
        start_time_unix_nano: scalar(obj, "startTimeUnixNano", "start_time_unix_nano", path, uint64)?
            .unwrap_or_default(),
        time_unix_nano: scalar(obj, "timeUnixNano", "time_unix_nano", path, uint64)?.unwrap_or_default(),
        value,
        exemplars: Vec::new(),
        flags: scalar(obj, "flags", "flags", path, uint32)?.unwrap_or_default(),
    })
}

fn histogram_point(obj: &Obj, path: &mut Path) -> Result<proto::HistogramDataPoint, OtlpDecodeError> {
    Ok(proto::HistogramDataPoint {
        attributes: list(obj, "attributes", "attributes", path, key_value)?,
        start_time_unix_nano: scalar(obj, "startTimeUnixNano", "start_time_unix_nano", path, uint64)?
            .unwrap_or_default(),
        time_unix_nano: scalar(obj, "timeUnixNano", "time_unix_nano", path, uint64)?.unwrap_or_default(),
        count: scalar(obj, "count", "count", path, uint64)?.unwrap_or_default(),
        sum: scalar(obj, "sum", "sum", path, double)?,
        bucket_counts: scalar(obj, "bucketCounts", "bucket_counts", path, uint64s)?.unwrap_or_default(),
        explicit_bounds: scalar(obj, "explicitBounds", "explicit_bounds", path, doubles)?.unwrap_or_default(),
        exemplars: Vec::new(),
        flags: scalar(obj, "flags", "flags", path, uint32)?.unwrap_or_default(),
        min: scalar(obj, "min", "min", path, double)?,
        max: scalar(obj, "max", "max", path, double)?,
    })
}

fn summary_point(obj: &Obj, path: &mut Path) -> Result<proto::SummaryDataPoint, OtlpDecodeError> {
    Ok(proto::SummaryDataPoint {
        attributes: list(obj, "attributes", "attributes", path, key_value)?,
        start_time_unix_nano: scalar(obj, "startTimeUnixNano", "start_time_unix_nano", path, uint64)?
            .unwrap_or_default(),
        time_unix_nano: scalar(obj, "timeUnixNano", "time_unix_nano", path, uint64)?.unwrap_or_default(),
        count: scalar(obj, "count", "count", path, uint64)?.unwrap_or_default(),
        sum: scalar(obj, "sum", "sum", path, double)?.unwrap_or_default(),
        quantile_values: list(obj, "quantileValues", "quantile_values", path, value_at_quantile)?,
        flags: scalar(obj, "flags", "flags", path, uint32)?.unwrap_or_default(),
    })
}

fn value_at_quantile(
    obj: &Obj,
    path: &mut Path,
) -> Result<proto::summary_data_point::ValueAtQuantile, OtlpDecodeError> {
    Ok(proto::summary_data_point::ValueAtQuantile {
        quantile: scalar(obj, "quantile", "quantile", path, double)?.unwrap_or_default(),
        value: scalar(obj, "value", "value", path, double)?.unwrap_or_default(),
    })
}

fn key_value(obj: &Obj, path: &mut Path) -> Result<proto::KeyValue, OtlpDecodeError> {
    Ok(proto::KeyValue {
        key: scalar(obj, "key", "key", path, string)?.unwrap_or_default(),
        value: nested(obj, "value", "value", path, any_value)?,
    })
}

fn any_value(obj: &Obj, path: &mut Path) -> Result<proto::AnyValue, OtlpDecodeError> {
    use any_value::Value as V;
    let value = if let Some(s) = scalar(obj, "stringValue", "string_value", path, string)? {
        Some(V::StringValue(s))
    } else if let Some(b) = scalar(obj, "boolValue", "bool_value", path, boolean)? {
        Some(V::BoolValue(b))
    } else if let Some(i) = scalar(obj, "intValue", "int_value", path, int64)? {
        Some(V::IntValue(i))
    } else if let Some(d) = scalar(obj, "doubleValue", "double_value", path, double)? {
        Some(V::DoubleValue(d))
    } else if let Some(b) = scalar(obj, "bytesValue", "bytes_value", path, bytes)? {
        Some(V::BytesValue(b))
    } else if let Some(a) = nested(obj, "arrayValue", "array_value", path, array_value)? {
        Some(V::ArrayValue(a))
    } else {
        nested(obj, "kvlistValue", "kvlist_value", path, kvlist_value)?.map(V::KvlistValue)
    };
    Ok(proto::AnyValue { value })
}

fn array_value(obj: &Obj, path: &mut Path) -> Result<proto::ArrayValue, OtlpDecodeError> {
    Ok(proto::ArrayValue {
        values: list(obj, "values", "values", path, any_value)?,
    })
}

fn kvlist_value(obj: &Obj, path: &mut Path) -> Result<proto::KeyValueList, OtlpDecodeError> {
    Ok(proto::KeyValueList {
        values: list(obj, "values", "values", path, key_value)?,
    })
}

fn bytes(v: &Value) -> Result<Vec<u8>, String> {
    let s = v.as_str().ok_or_else(|| String::from("expected a base64 string"))?;
    base64_decode(s).ok_or_else(|| "invalid base64".into())
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes bytes as standard base64 with padding.
pub(crate) fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard or URL-safe base64, padded or not; `None` if invalid.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A single leftover sextet cannot encode a byte.
    if bits >= 6 {
        return None;
    }
    Some(out)
}

/// An attribute value as JSON, the way the OpenTelemetry collector renders
/// arrays and maps in label values.
pub(crate) fn any_value_to_json(value: &proto::AnyValue) -> Value {
    use any_value::Value as V;
    match &value.value {
        None => Value::Null,
        Some(V::StringValue(s)) => Value::String(s.clone()),
        Some(V::BoolValue(b)) => Value::Bool(*b),
        Some(V::IntValue(i)) => Value::from(*i),
        Some(V::DoubleValue(d)) => serde_json::Number::from_f64(*d).map_or(Value::Null, Value::Number),
        Some(V::BytesValue(b)) => Value::String(base64_encode(b)),
        Some(V::ArrayValue(a)) => Value::Array(a.values.iter().map(any_value_to_json).collect()),
        Some(V::KvlistValue(kv)) => Value::Object(
            kv.values
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(Value::Null, any_value_to_json)))
                .collect(),
        ),
    }
}
