//! Request parameters as Prometheus reads them: times (RFC 3339 or Unix
//! seconds), durations, `match[]` selectors, tenant header, and parameters
//! from both the query string and a form body.

use crate::ApiError;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, Method};
use model::{MatchOp, Matcher, TenantId};

/// The header that selects a tenant, as in Cortex, Mimir and Loki.
pub const TENANT_HEADER: &str = "X-Scope-OrgID";

/// The tenant named by the `X-Scope-OrgID` header, or `default`.
pub fn tenant_from_headers(headers: &HeaderMap) -> Result<TenantId, ApiError> {
    match headers.get(TENANT_HEADER) {
        None => Ok(TenantId::default()),
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| ApiError::BadData(format!("{TENANT_HEADER} header is not ASCII")))?;
            TenantId::new(s.trim()).map_err(|e| ApiError::BadData(format!("invalid {TENANT_HEADER} header: {e}")))
        }
    }
}

/// The smallest and largest times the API accepts, as Prometheus' `MinTime`/`MaxTime`.
pub const MIN_TIME_MS: i64 = i64::MIN / 2;
/// See [`MIN_TIME_MS`].
pub const MAX_TIME_MS: i64 = i64::MAX / 2;

/// Parses a time given as Unix seconds (with fraction) or RFC 3339, into milliseconds.
pub fn parse_time(s: &str) -> Result<i64, ApiError> {
    let bad = || ApiError::BadData(format!("cannot parse {s:?} to a valid timestamp"));
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() {
            return Err(bad());
        }
        let ms = (f * 1000.0).round();
        if ms < MIN_TIME_MS as f64 || ms > MAX_TIME_MS as f64 {
            return Err(bad());
        }
        return Ok(ms as i64);
    }
    // Prometheus' own MinTime/MaxTime as Go formats them.
    match s {
        "-292273086-05-16T16:47:06Z" => return Ok(MIN_TIME_MS),
        "292277025-08-18T07:12:54.999999999Z" => return Ok(MAX_TIME_MS),
        _ => {}
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp_millis())
        .map_err(|_| bad())
}

/// Parses a duration given as seconds (with fraction) or in Prometheus'
/// syntax (`1h30m`, `5m`, `250ms`), into milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, ApiError> {
    let bad = || ApiError::BadData(format!("cannot parse {s:?} to a valid duration"));
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() || f * 1000.0 > i64::MAX as f64 || f * 1000.0 < i64::MIN as f64 {
            return Err(bad());
        }
        return Ok((f * 1000.0).round() as i64);
    }
    let mut total: i64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit_ms: i64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = n
            .checked_mul(unit_ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

/// Parses one `match[]` selector such as `up{job="node"}` into matchers.
pub fn parse_selector(s: &str) -> Result<Vec<Matcher>, ApiError> {
    use promql_parser::parser::Expr;
    let expr = promql_parser::parser::parse(s).map_err(|e| ApiError::BadData(format!("invalid match[] {s:?}: {e}")))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(ApiError::BadData(format!(
            "invalid match[] {s:?}: not a series selector"
        )));
    };
    if !vs.matchers.or_matchers.is_empty() {
        return Err(ApiError::BadData(format!(
            "invalid match[] {s:?}: 'or' in selectors is not supported"
        )));
    }
    let mut out = Vec::new();
    if let Some(name) = &vs.name {
        out.push(Matcher::equal(model::METRIC_NAME, name.clone()));
    }
    for m in &vs.matchers.matchers {
        use promql_parser::label::MatchOp as P;
        let op = match &m.op {
            P::Equal => MatchOp::Equal,
            P::NotEqual => MatchOp::NotEqual,
            P::Re(_) => MatchOp::RegexMatch,
            P::NotRe(_) => MatchOp::RegexNoMatch,
        };
        out.push(Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| ApiError::BadData(e.to_string()))?);
    }
    if out.iter().all(Matcher::matches_empty) {
        return Err(ApiError::BadData(format!(
            "invalid match[] {s:?}: match[] must contain at least one non-empty matcher"
        )));
    }
    Ok(out)
}

/// Request parameters from the query string and, for POST, a form body,
/// keeping repeated keys such as `match[]`.
#[derive(Debug, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// All values of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Parses `key` as a time, `default` when absent or empty.
    pub fn time(&self, key: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some(s) => parse_time(s),
        }
    }

    /// Parses `limit`: absent or 0 means none.
    pub fn limit(&self) -> Result<Option<usize>, ApiError> {
        match self.get("limit") {
            None | Some("") => Ok(None),
            Some(s) => match s.parse::<usize>() {
                Ok(0) => Ok(None),
                Ok(n) => Ok(Some(n)),
                Err(_) => Err(ApiError::BadData(format!(
                    "cannot parse \"limit\" {s:?}: must be a non-negative integer"
                ))),
            },
        }
    }

    /// All `match[]` selectors, parsed.
    pub fn selectors(&self) -> Result<Vec<Vec<Matcher>>, ApiError> {
        self.all("match[]").into_iter().map(parse_selector).collect()
    }

    /// `start` and `end`, checked to be in order.
    pub fn range(&self) -> Result<(i64, i64), ApiError> {
        let start = self.time("start", MIN_TIME_MS)?;
        let end = self.time("end", MAX_TIME_MS)?;
        if end < start {
            return Err(ApiError::BadData("end timestamp must not be before start time".into()));
        }
        Ok((start, end))
    }
}

/// Form bodies larger than this are refused.
const MAX_FORM_BYTES: usize = 8 << 20;

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mut pairs: Vec<(String, String)> = match req.uri().query() {
            Some(q) => {
                serde_urlencoded::from_str(q).map_err(|e| ApiError::BadData(format!("invalid query string: {e}")))?
            }
            None => Vec::new(),
        };
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if req.method() == Method::POST && is_form {
            let body = axum::body::Bytes::from_request(req, state)
                .await
                .map_err(|e| ApiError::BadData(format!("cannot read request body: {e}")))?;
            if body.len() > MAX_FORM_BYTES {
                return Err(ApiError::TooLarge(format!(
                    "form body larger than {MAX_FORM_BYTES} bytes"
                )));
            }
            let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
                .map_err(|e| ApiError::BadData(format!("invalid form body: {e}")))?;
            pairs.extend(form);
        }
        Ok(Params(pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations() {
        assert_eq!(parse_time("1435781451.781").unwrap(), 1_435_781_451_781);
        assert_eq!(parse_time("2015-07-01T20:10:51.781Z").unwrap(), 1_435_781_451_781);
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("NaN").is_err());
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration("15").unwrap(), 15_000);
        assert_eq!(parse_duration("250ms").unwrap(), 250);
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn selectors() {
        let m = parse_selector(r#"up{job=~"a|b"}"#).unwrap();
        assert_eq!(m.len(), 2);
        assert!(parse_selector(r#"{job=~".*"}"#).is_err());
        assert!(parse_selector("sum(up)").is_err());
        assert!(parse_selector("up{").is_err());
    }
}
