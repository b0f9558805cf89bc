//! [`Figures`]: what a scenario measured, as a small Markdown table, written to
//! `$SWITCHYARD_CLUSTER_FIGURES/<scenario>.md` (default `target/cluster-figures/`)
//! and printed. `cargo xtask cluster-test` gathers them (and with `--write-docs`
//! puts them into docs/SCALING.md).

use std::fmt::Display;
use std::path::PathBuf;

/// The directory figures go to.
pub fn dir() -> PathBuf {
    std::env::var_os("SWITCHYARD_CLUSTER_FIGURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/cluster-figures")
        })
}

/// One scenario's figures.
#[derive(Debug, Clone)]
pub struct Figures {
    scenario: String,
    title: String,
    rows: Vec<(String, String)>,
}

impl Figures {
    /// Figures of `scenario` (a file name), shown under `title`.
    pub fn new(scenario: &str, title: &str) -> Self {
        Self {
            scenario: scenario.to_owned(),
            title: title.to_owned(),
            rows: Vec::new(),
        }
    }

    /// Adds one figure.
    pub fn add(&mut self, name: impl Into<String>, value: impl Display) {
        self.rows.push((name.into(), value.to_string()));
    }

    /// The Markdown section.
    pub fn markdown(&self) -> String {
        let mut text = format!("#### {}\n\n| | |\n|---|---|\n", self.title);
        for (name, value) in &self.rows {
            text.push_str(&format!(
                "| {} | {} |\n",
                name.replace('|', "\\|"),
                value.replace('|', "\\|")
            ));
        }
        text
    }

    /// Prints the figures and writes them to [`dir`].
    pub fn write(&self) {
        let text = self.markdown();
        eprintln!("{text}");
        let dir = dir();
        let written = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join(format!("{}.md", self.scenario)), &text));
        if let Err(error) = written {
            eprintln!("could not write the figures to {}: {error}", dir.display());
        }
    }
}

/// Milliseconds of a duration, with one decimal.
pub fn ms(duration: std::time::Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_table() {
        let mut figures = Figures::new("x", "Failover");
        figures.add("gap", ms(std::time::Duration::from_micros(12_340)));
        figures.add("a|b", 3);
        assert_eq!(
            figures.markdown(),
            "#### Failover\n\n| | |\n|---|---|\n| gap | 12.3 ms |\n| a\\|b | 3 |\n"
        );
    }
}
