//! Reading a Prometheus text-format scrape (the shop's `/metrics`, or a
//! recorder's rendering in a crate's tests) and the metric table of
//! `docs/observability.md`, for the tests that check metrics.

use std::collections::{BTreeMap, BTreeSet};

/// One scrape: every sample as its metric name, its labels and value.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    /// Fetches `url` (an admin listener's `/metrics`) and parses it.
    ///
    /// # Panics
    ///
    /// If the listener does not answer `200` with text.
    pub async fn fetch(url: &str) -> Scrape {
        let res = reqwest::get(url).await.expect("scrape /metrics");
        assert_eq!(res.status(), 200, "GET {url}");
        Scrape::parse(&res.text().await.expect("the scrape's text"))
    }

    /// Parses the text format (comments skipped).
    ///
    /// # Panics
    ///
    /// On a sample line it cannot read.
    pub fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| sample(l).unwrap_or_else(|| panic!("unreadable sample line {l:?}")))
            .collect();
        Scrape { samples }
    }

    /// The sum of the samples of `name` whose labels include `labels`
    /// (0 when there is none).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).is_some_and(|have| have == v))
            })
            .map(|(_, _, v)| v)
            .sum()
    }

    /// `self.get(…) - before.get(…)`: how much a counter moved.
    pub fn delta(&self, before: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels) - before.get(name, labels)
    }

    /// The values of `label` among the samples of `name`.
    pub fn label_values(&self, name: &str, label: &str) -> BTreeSet<String> {
        self.samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .filter_map(|(_, l, _)| l.get(label).cloned())
            .collect()
    }

    /// The metric names in the scrape, histogram series (`_bucket`, `_sum`,
    /// `_count`) under their histogram's name.
    pub fn names(&self) -> BTreeSet<String> {
        let histograms: BTreeSet<&str> = self
            .samples
            .iter()
            .filter_map(|(n, _, _)| n.strip_suffix("_bucket"))
            .collect();
        self.samples
            .iter()
            .map(|(n, _, _)| {
                ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| n.strip_suffix(s).filter(|h| histograms.contains(h)))
                    .unwrap_or(n)
                    .to_owned()
            })
            .collect()
    }
}

/// `name{k="v",…} value`, or `name value`.
fn sample(line: &str) -> Option<(String, BTreeMap<String, String>, f64)> {
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let Some((name, rest)) = series.split_once('{') else {
        return Some((series.to_owned(), BTreeMap::new(), value));
    };
    let mut labels = BTreeMap::new();
    let mut rest = rest.strip_suffix('}')?;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut val = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => val.push(chars.next()?.1),
                (i, '"') => break i,
                (_, c) => val.push(c),
            }
        };
        labels.insert(key.trim_start_matches(',').to_owned(), val);
        rest = &after[end + 1..];
    }
    Some((name.to_owned(), labels, value))
}

/// The metric names of the table in `docs/observability.md`: the first
/// column of rows whose second column is a metric type.
///
/// # Panics
///
/// If the file cannot be read.
pub fn documented_names() -> BTreeSet<String> {
    let path = crate::paths::workspace_dir().join("docs/observability.md");
    let doc = std::fs::read_to_string(&path).expect("read docs/observability.md");
    doc.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let (name, kind) = (cells.get(1)?, cells.get(2)?);
            let name = name.strip_prefix('`')?.strip_suffix('`')?;
            ["counter", "gauge", "histogram"]
                .contains(kind)
                .then(|| name.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_with_braces_commas_and_quotes() {
        let s = Scrape::parse(
            "# TYPE x counter\n\
             x{route=\"/api/products/{sku}\",status=\"200\"} 2\n\
             x{route=\"/a,b\",status=\"5\\\"03\"} 1\n\
             y 3.5\n\
             h_bucket{le=\"0.1\"} 1\nh_sum 0.05\nh_count 1\n",
        );
        assert_eq!(s.get("x", &[("route", "/api/products/{sku}")]), 2.0);
        assert_eq!(s.get("x", &[("status", "5\"03")]), 1.0);
        assert_eq!(s.get("x", &[]), 3.0);
        assert_eq!(s.get("y", &[]), 3.5);
        assert_eq!(s.names().into_iter().collect::<Vec<_>>(), ["h", "x", "y"]);
    }
}
