//! Fuzzes the query path end to end: the API's time and duration parameter
//! parsers, then parsing (with error positions) and evaluating the query as
//! an instant and as a range query over a small store holding a counter with
//! a reset, a gauge, a classic histogram and a stale series. It must never
//! panic; errors are fine.
//!
//! Input: the query on the first line; an optional second line
//! `time start end step` of API-style parameters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model::{Labels, Sample, STALE_NAN};
use promql::{Engine, EngineOptions};
use std::sync::OnceLock;
use std::time::Duration;
use storage_api::{MemStorage, Queryable};

fn store() -> &'static MemStorage {
    static STORE: OnceLock<MemStorage> = OnceLock::new();
    STORE.get_or_init(|| {
        let s = MemStorage::new();
        let step = 15_000;
        for inst in ["a", "b"] {
            let counter: Vec<Sample> = (0..40)
                .map(|i| Sample::new(i * step, if i < 20 { i as f64 * 3.0 } else { (i - 20) as f64 }))
                .collect();
            s.add(Labels::from_pairs(&[("__name__", "requests_total"), ("instance", inst)]), &counter);
            let gauge: Vec<Sample> = (0..40).map(|i| Sample::new(i * step, (i as f64).sin() * 100.0)).collect();
            s.add(Labels::from_pairs(&[("__name__", "temp"), ("instance", inst)]), &gauge);
            for (le, f) in [("0.1", 1.0), ("1", 3.0), ("+Inf", 4.0)] {
                let b: Vec<Sample> = (0..40).map(|i| Sample::new(i * step, i as f64 * f)).collect();
                s.add(
                    Labels::from_pairs(&[("__name__", "lat_bucket"), ("instance", inst), ("le", le)]),
                    &b,
                );
            }
        }
        let mut stale: Vec<Sample> = (0..10).map(|i| Sample::new(i * step, 1.0)).collect();
        stale.push(Sample::new(10 * step, STALE_NAN));
        s.add(Labels::from_pairs(&[("__name__", "up"), ("job", "x")]), &stale);
        s
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(2, '\n');
    let query = lines.next().unwrap_or("");
    let params: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let time = params.first().and_then(|p| api::params::parse_time(p).ok()).unwrap_or(300_000);
    let start = params.get(1).and_then(|p| api::params::parse_time(p).ok()).unwrap_or(0);
    let end = params.get(2).and_then(|p| api::params::parse_time(p).ok()).unwrap_or(600_000);
    let step = params.get(3).and_then(|p| api::params::parse_duration(p).ok()).unwrap_or(15_000);

    // promql-parser 0.11 panics on some inputs (e.g. a range of 10^57
    // seconds); the engine catches that and answers with a parse error. Those
    // panics are the parser's, not ours: skip such inputs quietly, so that
    // every panic the fuzzer reports below is in Haetae's code.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let parser_panicked = std::panic::catch_unwind(|| promql_parser::parser::parse(query)).is_err();
    std::panic::set_hook(hook);
    if parser_panicked {
        return;
    }

    let engine = Engine::new(EngineOptions {
        max_samples: 200_000,
        timeout: Duration::from_secs(2),
        ..EngineOptions::default()
    });
    let Ok(querier) = store().querier(&model::TenantId::default()) else {
        return;
    };
    let _ = promql::parse(query);
    let _ = engine.instant_query(querier.as_ref(), query, time);
    // The API refuses these before the engine sees them; so does this target.
    if step > 0 && start <= end && (end - start) / step <= 11_000 {
        let _ = engine.range_query(querier.as_ref(), query, start, end, step);
    }
});
