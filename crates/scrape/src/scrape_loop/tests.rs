use super::*;
use model::is_stale_nan;

/// A storage whose refs carry the labels they were issued for and an
/// epoch; bumping the epoch invalidates every ref (as a head cut would).
#[derive(Default)]
struct RefStore {
    epoch: std::sync::atomic::AtomicU64,
    /// Every sample appended: labels, sample, whether it came by a valid ref.
    log: Mutex<Vec<(String, Sample, bool)>>,
}

struct FakeRef {
    epoch: u64,
    labels: Labels,
}

impl SampleAppender for RefStore {
    fn append(
        &self,
        _tenant: &TenantId,
        batch: Vec<storage_api::SeriesSamples>,
    ) -> Result<storage_api::AppendReport, StorageError> {
        let mut log = self.log.lock();
        for s in batch {
            for sample in s.samples {
                log.push((s.labels.to_string(), sample, false));
            }
        }
        Ok(storage_api::AppendReport::default())
    }

    fn append_by_ref(
        &self,
        _tenant: &TenantId,
        batch: &[RefAppend<'_>],
        new_refs: &mut Vec<(usize, SeriesRef)>,
    ) -> Result<storage_api::AppendReport, StorageError> {
        let epoch = self.epoch.load(std::sync::atomic::Ordering::Relaxed);
        let mut log = self.log.lock();
        for (i, e) in batch.iter().enumerate() {
            let by_ref = match e.series_ref.and_then(|r| r.downcast::<FakeRef>()) {
                Some(r) => {
                    assert_eq!(&r.labels, e.labels, "a ref must come with the labels it was issued for");
                    r.epoch == epoch
                }
                None => false,
            };
            if !by_ref {
                new_refs.push((
                    i,
                    SeriesRef::new(Arc::new(FakeRef {
                        epoch,
                        labels: e.labels.clone(),
                    })),
                ));
            }
            log.push((e.labels.to_string(), e.sample, by_ref));
        }
        Ok(storage_api::AppendReport::default())
    }
}

struct NoMetadata;

impl MetadataStore for NoMetadata {
    fn put_metadata(&self, _tenant: &TenantId, _metadata: Vec<MetricMetadata>) {}
    fn metadata(&self, _tenant: &TenantId, _metric: Option<&str>, _limit: Option<usize>) -> Vec<MetricMetadata> {
        Vec::new()
    }
}

fn params(metric_relabel: &str) -> Arc<LoopParams> {
    Arc::new(LoopParams {
        client: reqwest::Client::new(),
        url: "http://127.0.0.1:1/metrics".into(),
        parsed_url: None,
        timeout_header: timeout_header(Duration::from_secs(10)),
        interval: Duration::from_secs(15),
        timeout: Duration::from_secs(10),
        honor_labels: false,
        honor_timestamps: true,
        sample_limit: 0,
        label_limit: 0,
        label_name_length_limit: 0,
        label_value_length_limit: 0,
        body_size_limit: 0,
        metric_relabel: serde_norway::from_str(metric_relabel).expect("test relabel config parses"),
        auth: Auth::None,
        target_labels: Labels::from_pairs(&[("instance", "t:1"), ("job", "j")]),
    })
}

/// Scrapes `body` at `ts` and returns the outcome and what was appended:
/// one line per sample, `labels value` with `+ref` when it came by a valid
/// ref; report series are left out (only their count is checked).
fn scrape(
    state: &mut LoopState,
    store: &Arc<RefStore>,
    params: &Arc<LoopParams>,
    body: Option<&str>,
    ts: i64,
) -> (Outcome, Vec<String>) {
    let sinks = Sinks {
        appender: Arc::clone(store) as Arc<dyn SampleAppender>,
        metadata: Arc::new(NoMetadata),
        tenant: TenantId::default(),
    };
    let fetched = body.map(|_| Format::PrometheusText).ok_or_else(|| "down".to_string());
    let bytes = body.unwrap_or("").as_bytes().to_vec();
    let (outcome, _) = state.scrape(fetched, bytes, ts, Duration::from_millis(5), params, &sinks);
    let log = std::mem::take(&mut *store.log.lock());
    let mut lines = Vec::new();
    let mut num_report = 0;
    for (labels, sample, by_ref) in log {
        assert_eq!(sample.t, ts, "{labels}");
        if REPORT_NAMES
            .iter()
            .any(|n| labels.starts_with(&format!("{{__name__=\"{n}\"")))
        {
            num_report += 1;
            continue;
        }
        let v = if is_stale_nan(sample.v) {
            "stale".to_string()
        } else {
            sample.v.to_string()
        };
        lines.push(format!("{labels} {v}{}", if by_ref { " +ref" } else { "" }));
    }
    assert_eq!(num_report, REPORT_NAMES.len());
    (outcome, lines)
}

#[test]
fn steady_scrapes_append_by_ref_and_fall_back_when_refs_go_stale() {
    let store = Arc::new(RefStore::default());
    let p = params("[]");
    let mut st = LoopState::default();
    let body = "a{x=\"1\"} 1\nb 2\n";
    let (o, got) = scrape(&mut st, &store, &p, Some(body), 1000);
    assert!(o.up);
    assert_eq!(o.series_added, 2);
    assert_eq!(
        got,
        [
            r#"{__name__="a", instance="t:1", job="j", x="1"} 1"#,
            r#"{__name__="b", instance="t:1", job="j"} 2"#
        ]
    );
    let (o, got) = scrape(&mut st, &store, &p, Some(body), 2000);
    assert_eq!(o.series_added, 0);
    assert!(got.iter().all(|l| l.ends_with("+ref")), "{got:?}");
    // `b` disappears: a staleness marker, by ref.
    let (_, got) = scrape(&mut st, &store, &p, Some("a{x=\"1\"} 3\n"), 3000);
    assert_eq!(
        got,
        [
            r#"{__name__="a", instance="t:1", job="j", x="1"} 3 +ref"#,
            r#"{__name__="b", instance="t:1", job="j"} stale +ref"#
        ]
    );
    // The storage drops its series: the loop appends by labels again, then by the new refs.
    store.epoch.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (o, got) = scrape(&mut st, &store, &p, Some(body), 4000);
    assert_eq!(o.series_added, 1, "b is back");
    assert!(got.iter().all(|l| !l.ends_with("+ref")), "{got:?}");
    let (_, got) = scrape(&mut st, &store, &p, Some(body), 5000);
    assert!(got.iter().all(|l| l.ends_with("+ref")), "{got:?}");
    // A failed scrape makes everything stale; the next one adds the series again.
    let (o, got) = scrape(&mut st, &store, &p, None, 6000);
    assert!(!o.up);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|l| l.ends_with("stale +ref")), "{got:?}");
    let (o, _) = scrape(&mut st, &store, &p, Some(body), 7000);
    assert_eq!(o.series_added, 2);
}

#[test]
fn texts_with_the_same_labels_share_a_slot_and_dropped_series_stay_dropped() {
    let store = Arc::new(RefStore::default());
    let p = params("[{source_labels: [__name__], regex: drop_me, action: drop}]");
    let mut st = LoopState::default();
    // Same series written twice with its labels in another order: a duplicate.
    let body = "a{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 5\ndrop_me 3\n";
    for ts in [1000, 2000] {
        let (o, got) = scrape(&mut st, &store, &p, Some(body), ts);
        assert!(o.up);
        assert_eq!(o.samples_scraped, 3);
        assert_eq!(o.samples_post_relabel, 2);
        assert!(o.error.contains("1 invalid lines skipped"), "{}", o.error);
        assert!(o.error.contains("duplicate series"), "{}", o.error);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].contains(r#"x="1", y="2"} 1"#), "{got:?}");
    }
    assert_eq!(st.cache.len(), 3, "three texts");
    assert_eq!(st.slots.iter().flatten().count(), 1, "one series");
    // A reload with other target labels: the old series goes stale, the new one is added.
    let mut p2 = params("[]");
    Arc::get_mut(&mut p2).expect("not shared").target_labels = Labels::from_pairs(&[("job", "k")]);
    let (o, got) = scrape(&mut st, &store, &p2, Some("a{x=\"1\",y=\"2\"} 1\n"), 3000);
    assert_eq!(o.series_added, 1);
    assert_eq!(
        got,
        [
            r#"{__name__="a", job="k", x="1", y="2"} 1"#,
            r#"{__name__="a", instance="t:1", job="j", x="1", y="2"} stale +ref"#
        ]
    );
}

#[test]
fn unused_texts_and_slots_are_evicted() {
    let store = Arc::new(RefStore::default());
    let p = params("[]");
    let mut st = LoopState::default();
    scrape(&mut st, &store, &p, Some("old 1\nkept 1\n"), 1000);
    for i in 2..=20 {
        scrape(&mut st, &store, &p, Some("kept 1\nnew 2\n"), i * 1000);
    }
    assert_eq!(st.cache.len(), 2);
    assert_eq!(st.slots.iter().flatten().count(), 2);
    assert_eq!(st.by_hash.len(), 2);
    // The freed slot is reused.
    assert_eq!(st.slots.len(), 3);
    scrape(&mut st, &store, &p, Some("kept 1\nnew 2\nother 3\n"), 21_000);
    assert_eq!(st.slots.len(), 3);
    let (_, got) = scrape(&mut st, &store, &p, Some("kept 1\nnew 2\nother 3\n"), 22_000);
    assert!(got.iter().all(|l| l.ends_with("+ref")), "{got:?}");
}
