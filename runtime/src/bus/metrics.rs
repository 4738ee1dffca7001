//! Counters served as Prometheus text on `GET /metrics` (AVA served its metrics the same way,
//! ava-spec §8.3). Each counter is a name plus labels; nodes keep an [`Counter`] handle and bump it
//! without locking.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A monotonically increasing count.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counters by (name, rendered labels), with their help text.
type CounterMap = BTreeMap<(String, String), (String, Counter)>;

/// Every counter of the process, by name and label set.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    counters: Arc<Mutex<CounterMap>>,
}

impl Metrics {
    /// The counter `name{labels}`, created on first use; `help` describes the metric.
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Counter {
        let labels = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect::<Vec<_>>()
            .join(",");
        let Ok(mut map) = self.counters.lock() else {
            return Counter::default();
        };
        map.entry((name.to_string(), labels))
            .or_insert_with(|| (help.to_string(), Counter::default()))
            .1
            .clone()
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let Ok(map) = self.counters.lock() else {
            return String::new();
        };
        let mut out = String::new();
        let mut last = "";
        for ((name, labels), (help, counter)) in map.iter() {
            if name != last {
                out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
                last = name;
            }
            if labels.is_empty() {
                out.push_str(&format!("{name} {}\n", counter.get()));
            } else {
                out.push_str(&format!("{name}{{{labels}}} {}\n", counter.get()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_as_prometheus_text() {
        let m = Metrics::default();
        let a = m.counter("vigil_x_total", "Xs.", &[("node", "a\"b")]);
        a.inc();
        a.inc();
        m.counter("vigil_x_total", "Xs.", &[("node", "c")]).inc();
        assert_eq!(
            m.counter("vigil_x_total", "Xs.", &[("node", "a\"b")]).get(),
            2
        );
        assert_eq!(
            m.render(),
            "# HELP vigil_x_total Xs.\n# TYPE vigil_x_total counter\nvigil_x_total{node=\"a\\\"b\"} 2\nvigil_x_total{node=\"c\"} 1\n"
        );
    }
}
