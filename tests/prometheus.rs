//! Reading a `/metrics` answer with a real Prometheus text parser: the Prometheus
//! project's Python client (`prometheus_client.parser`), run by
//! `tests/python/prometheus_parse.py`.
//!
//! The Python comes from `$SWITCHYARD_PYTHON`, else `target/pyenv/bin/python` (the
//! virtual environment `.ci/run` makes), else `python3`. Where none of them has
//! `prometheus_client`, [`parse`] says so and returns `None` (the test passes without
//! checking), except when `SWITCHYARD_REQUIRE_PROMETHEUS_CLIENT` is set, as CI does:
//! then it fails. To run these checks locally:
//! `python3 -m venv target/pyenv && target/pyenv/bin/pip install prometheus_client==0.26.0`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::Deserialize;

/// One sample as the parser read it.
#[derive(Debug, Clone, Deserialize)]
pub struct Sample {
    /// The sample's name (`..._total`, `..._bucket`, ...).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// A parsed exposition.
#[derive(Debug, Clone, Deserialize)]
pub struct Scrape {
    /// Family name → type (`counter`, `gauge`, `histogram`, `info`, ...).
    pub families: BTreeMap<String, String>,
    /// Every sample, in order.
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// The samples named `name` whose labels include every pair of `labels`.
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// The value of the one sample named `name` with exactly these `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && s.labels.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }

    /// The sum of the samples [`Scrape::matching`] `name` and `labels` (0 when none).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    /// Every value the label `label` takes in the exposition.
    pub fn label_values(&self, label: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .samples
            .iter()
            .filter_map(|s| s.labels.get(label).cloned())
            .collect();
        values.sort();
        values.dedup();
        values
    }
}

fn candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(python) = std::env::var_os("SWITCHYARD_PYTHON") {
        out.push(PathBuf::from(python));
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    out.push(workspace.join("target/pyenv/bin/python"));
    out.push(PathBuf::from("python3"));
    out
}

fn has_parser(python: &PathBuf) -> bool {
    Command::new(python)
        .args(["-c", "import prometheus_client.parser"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A Python with `prometheus_client`, or `None` (see the module's documentation).
pub fn python() -> Option<PathBuf> {
    if let Some(python) = candidates().into_iter().find(has_parser) {
        return Some(python);
    }
    assert!(
        std::env::var_os("SWITCHYARD_REQUIRE_PROMETHEUS_CLIENT").is_none(),
        "SWITCHYARD_REQUIRE_PROMETHEUS_CLIENT is set but no Python has prometheus_client; see tests/prometheus.rs"
    );
    eprintln!(
        "prometheus_client is not installed: the exposition is not parsed (python3 -m venv target/pyenv && target/pyenv/bin/pip install prometheus_client==0.26.0)"
    );
    None
}

/// Parses `text` with the Prometheus client's parser; panics when it is not a valid
/// exposition; `None` when no parser is installed (see the module's documentation).
pub fn parse(text: &str) -> Option<Scrape> {
    let python = python()?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/prometheus_parse.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(text.as_bytes())
        .expect("the exposition written to the parser");
    let output = child.wait_with_output().expect("the parser ends");
    assert!(
        output.status.success(),
        "the Prometheus parser refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).expect("the parser's JSON"))
}
