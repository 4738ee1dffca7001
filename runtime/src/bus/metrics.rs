//! The process's metrics, served on `GET /metrics` in the OpenMetrics text format (which
//! Prometheus scrapes) through `prometheus-client`. AVA served its metrics the same way (ava-spec
//! §8.3); its names are kept (`va_*`) beside ours (`vigil_*`).
//!
//! A metric is a family (a name, its help and type) of series, one per label set. Families are
//! registered on first use; nodes keep the handle of their series ([`Counter`], [`Gauge`],
//! [`FloatGauge`], [`Histogram`]) and update it without locking. A pipeline's series are removed
//! when the pipeline is deleted ([`Metrics::forget_pipeline`]).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter as PromCounter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge as PromGauge;
use prometheus_client::metrics::histogram::Histogram as PromHistogram;
use prometheus_client::registry::Registry;

/// A series' labels, in order.
pub type Labels = Vec<(String, String)>;

/// A monotonically increasing count.
pub type Counter = PromCounter<u64, AtomicU64>;
/// A value that goes up and down.
pub type Gauge = PromGauge<i64, std::sync::atomic::AtomicI64>;
/// A floating-point value that goes up and down.
pub type FloatGauge = PromGauge<f64, AtomicU64>;
/// A distribution of observed values.
pub type Histogram = PromHistogram;

type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// Buckets of the guest call and latency histograms, in seconds: 10 µs to ~42 s.
fn seconds_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.000_01, 4.0, 12,
    ))
}

#[derive(Default)]
struct Families {
    counters: HashMap<String, Family<Labels, Counter>>,
    gauges: HashMap<String, Family<Labels, Gauge>>,
    float_gauges: HashMap<String, Family<Labels, FloatGauge>>,
    histograms: HashMap<String, HistogramFamily>,
}

/// Which map of [`Families`] a series is in.
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    FloatGauge,
    Histogram,
}

#[derive(Default)]
struct Inner {
    registry: Registry,
    families: Families,
    /// The series made with a `pipeline` label, by pipeline: removed with it.
    pipeline_series: HashMap<String, Vec<(Kind, String, Labels)>>,
}

impl Inner {
    fn note(&mut self, kind: Kind, name: &str, labels: &Labels) {
        if let Some((_, pipeline)) = labels.iter().find(|(k, _)| k == "pipeline") {
            let series = self.pipeline_series.entry(pipeline.clone()).or_default();
            if !series.iter().any(|(_, n, l)| n == name && l == labels) {
                series.push((kind, name.to_string(), labels.clone()));
            }
        }
    }
}

/// Every metric of the process; clone to share.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Labels as the exposition writes them. prometheus-client writes label values as given, so
/// `\`, `"` and line feeds are escaped here (as OpenMetrics requires).
fn labels_of(labels: &[(&str, &str)]) -> Labels {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), escape(v)))
        .collect()
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The help without its final full stop: the encoder adds one.
fn help_text(help: &str) -> &str {
    help.strip_suffix('.').unwrap_or(help)
}

/// A counter's family name: the encoder adds `_total`.
fn counter_family(name: &str) -> &str {
    name.strip_suffix("_total").unwrap_or(name)
}

impl Metrics {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The counter `name{labels}` (exposed as `name`, which should end in `_total`), created on
    /// first use; `help` describes the family.
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Counter {
        self.series(
            Kind::Counter,
            name,
            help,
            labels,
            |f| &mut f.counters,
            Family::default,
        )
    }

    /// The gauge `name{labels}`, created on first use.
    pub fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Gauge {
        self.series(
            Kind::Gauge,
            name,
            help,
            labels,
            |f| &mut f.gauges,
            Family::default,
        )
    }

    /// The floating-point gauge `name{labels}`, created on first use.
    pub fn float_gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> FloatGauge {
        self.series(
            Kind::FloatGauge,
            name,
            help,
            labels,
            |f| &mut f.float_gauges,
            Family::default,
        )
    }

    /// The histogram of seconds `name{labels}` (10 µs to ~42 s buckets), created on first use.
    pub fn seconds_histogram(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Histogram {
        self.series(
            Kind::Histogram,
            name,
            help,
            labels,
            |f| &mut f.histograms,
            || HistogramFamily::new_with_constructor(seconds_histogram as fn() -> _),
        )
    }

    /// The series `name{labels}` of the family in `map`, the family made by `new` and
    /// registered on first use.
    fn series<M, C>(
        &self,
        kind: Kind,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        map: impl FnOnce(&mut Families) -> &mut HashMap<String, Family<Labels, M, C>>,
        new: impl FnOnce() -> Family<Labels, M, C>,
    ) -> M
    where
        M: Clone,
        C: MetricConstructor<M>,
        Family<Labels, M, C>: prometheus_client::registry::Metric + Clone,
    {
        let family = self.family(kind, name, help, map, new);
        let labels = labels_of(labels);
        let series = family.get_or_create_owned(&labels);
        self.lock().note(kind, name, &labels);
        series
    }

    /// The family `name` in `map`, made by `new` and registered on first use.
    fn family<M, C>(
        &self,
        kind: Kind,
        name: &str,
        help: &str,
        map: impl FnOnce(&mut Families) -> &mut HashMap<String, Family<Labels, M, C>>,
        new: impl FnOnce() -> Family<Labels, M, C>,
    ) -> Family<Labels, M, C>
    where
        Family<Labels, M, C>: prometheus_client::registry::Metric + Clone,
    {
        let mut inner = self.lock();
        let Inner {
            registry, families, ..
        } = &mut *inner;
        map(families)
            .entry(name.to_string())
            .or_insert_with(|| {
                let family = new();
                let exposed = match kind {
                    Kind::Counter => counter_family(name),
                    _ => name,
                };
                registry.register(exposed, help_text(help), family.clone());
                family
            })
            .clone()
    }

    /// Sets the gauges of family `name` to exactly `series` (others removed): state that is
    /// read when scraped, such as how many pipelines are in each state.
    pub fn set_gauges(&self, name: &str, help: &str, series: &[(Labels, i64)]) {
        let family = self.family(Kind::Gauge, name, help, |f| &mut f.gauges, Family::default);
        family.clear();
        for (labels, value) in series {
            let labels: Labels = labels.iter().map(|(k, v)| (k.clone(), escape(v))).collect();
            family.get_or_create(&labels).set(*value);
        }
    }

    /// Removes every series labelled `pipeline="<name>"` (the pipeline was deleted).
    pub fn forget_pipeline(&self, pipeline: &str) {
        let mut inner = self.lock();
        let series = inner.pipeline_series.remove(pipeline).unwrap_or_default();
        let f = &inner.families;
        for (kind, name, labels) in series {
            match kind {
                Kind::Counter => f.counters.get(&name).map(|x| x.remove(&labels)),
                Kind::Gauge => f.gauges.get(&name).map(|x| x.remove(&labels)),
                Kind::FloatGauge => f.float_gauges.get(&name).map(|x| x.remove(&labels)),
                Kind::Histogram => f.histograms.get(&name).map(|x| x.remove(&labels)),
            };
        }
    }

    /// The OpenMetrics text exposition (ends with `# EOF`).
    pub fn render(&self) -> String {
        let inner = self.lock();
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &inner.registry).is_err() {
            return String::new();
        }
        out
    }
}

/// The average and maximum of values observed over the last minute, kept in two gauges
/// (AVA's `va_cumulative_latency_seconds_average` and `_max`).
pub struct MinuteWindow {
    average: FloatGauge,
    max: FloatGauge,
    started: Instant,
    sum: f64,
    count: u64,
    peak: f64,
}

impl MinuteWindow {
    /// A window reporting into `average` and `max`.
    pub fn new(average: FloatGauge, max: FloatGauge) -> Self {
        Self {
            average,
            max,
            started: Instant::now(),
            sum: 0.0,
            count: 0,
            peak: 0.0,
        }
    }

    /// Adds one observation; the window restarts once a minute has passed.
    pub fn observe(&mut self, value: f64) {
        if self.started.elapsed() >= Duration::from_secs(60) {
            self.started = Instant::now();
            self.sum = 0.0;
            self.count = 0;
            self.peak = 0.0;
        }
        self.sum += value;
        self.count += 1;
        self.peak = self.peak.max(value);
        self.average.set(self.sum / self.count as f64);
        self.max.set(self.peak);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_render_as_openmetrics_text() {
        let m = Metrics::default();
        let a = m.counter("vigil_x_total", "Xs.", &[("node", "a\"b")]);
        a.inc();
        a.inc();
        m.counter("vigil_x_total", "Xs.", &[("node", "c")]).inc();
        assert_eq!(
            m.counter("vigil_x_total", "Xs.", &[("node", "a\"b")]).get(),
            2
        );
        m.seconds_histogram("vigil_call_seconds", "Calls.", &[("node", "f")])
            .observe(0.001);
        let text = m.render();
        assert!(text.contains("# TYPE vigil_x counter\n"), "{text}");
        assert!(text.contains("# HELP vigil_x Xs.\n"), "{text}");
        assert!(text.contains("vigil_x_total{node=\"c\"} 1\n"), "{text}");
        assert!(
            text.contains("vigil_x_total{node=\"a\\\"b\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("vigil_call_seconds_count{node=\"f\"} 1\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn a_deleted_pipeline_takes_its_series_along() {
        let m = Metrics::default();
        m.counter("vigil_f_total", "F.", &[("pipeline", "a"), ("node", "n")])
            .inc();
        m.counter("vigil_f_total", "F.", &[("pipeline", "b"), ("node", "n")])
            .inc();
        m.seconds_histogram("vigil_h_seconds", "H.", &[("pipeline", "a")]);
        m.forget_pipeline("a");
        let text = m.render();
        assert!(!text.contains("pipeline=\"a\""), "{text}");
        assert!(text.contains("pipeline=\"b\""), "{text}");
    }

    #[test]
    fn set_gauges_replaces_the_family() {
        let m = Metrics::default();
        let l = |s: &str| vec![("state".to_string(), s.to_string())];
        m.set_gauges("vigil_p", "P.", &[(l("Active"), 2), (l("Inactive"), 1)]);
        m.set_gauges("vigil_p", "P.", &[(l("Active"), 3)]);
        let text = m.render();
        assert!(text.contains("vigil_p{state=\"Active\"} 3\n"), "{text}");
        assert!(!text.contains("Inactive"), "{text}");
    }

    #[test]
    fn the_window_keeps_average_and_peak() {
        let m = Metrics::default();
        let (avg, max) = (m.float_gauge("a", "A.", &[]), m.float_gauge("b", "B.", &[]));
        let mut w = MinuteWindow::new(avg.clone(), max.clone());
        w.observe(1.0);
        w.observe(3.0);
        assert_eq!((avg.get(), max.get()), (2.0, 3.0));
    }
}
