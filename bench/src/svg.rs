//! Two small SVG charts: grouped bars with min–max whiskers, and lines over a
//! logarithmic x axis. Plain text output, no dependencies.

use std::fmt::Write as _;

use crate::stats::Summary;

const WIDTH: f64 = 820.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 90.0;

/// One named, coloured series of values.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Fill or stroke colour.
    pub colour: String,
    /// One value per group (bars) or per x value (lines).
    pub values: Vec<Summary>,
}

/// Grouped bars: one group per category, one bar per series, whiskers at min–max.
#[derive(Debug, Clone)]
pub struct BarChart {
    /// Title above the plot.
    pub title: String,
    /// Y axis label.
    pub y_label: String,
    /// Category names along x.
    pub groups: Vec<String>,
    /// The series.
    pub series: Vec<Series>,
}

/// Lines over a logarithmic x axis, whiskers at min–max.
#[derive(Debug, Clone)]
pub struct LineChart {
    /// Title above the plot.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// The x values (positive), shared by every series.
    pub xs: Vec<f64>,
    /// The series.
    pub series: Vec<Series>,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Ticks from 0 to at least `max`, at 1, 2 or 5 × a power of ten.
fn ticks(max: f64) -> Vec<f64> {
    let max = if max > 0.0 && max.is_finite() {
        max
    } else {
        1.0
    };
    let rough = max / 5.0;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * power);
    let count = (max / step).ceil() as usize;
    (0..=count).map(|i| i as f64 * step).collect()
}

fn tick_label(value: f64) -> String {
    if value >= 1e6 {
        format!("{}M", trim(value / 1e6))
    } else if value >= 1e3 {
        format!("{}k", trim(value / 1e3))
    } else {
        trim(value)
    }
}

fn trim(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

struct Frame {
    out: String,
    y_max: f64,
}

impl Frame {
    fn new(title: &str, y_label: &str, x_label: &str, y_data_max: f64) -> Self {
        let ticks = ticks(y_data_max);
        let y_max = *ticks.last().expect("at least one tick");
        let mut out = String::new();
        let _ = writeln!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
             viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">"
        );
        let _ = writeln!(
            out,
            "<rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"white\"/>"
        );
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{}</text>",
            WIDTH / 2.0,
            escape(title)
        );
        for tick in &ticks {
            let y = frame_y(*tick, y_max);
            let _ = writeln!(
                out,
                "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
                 <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                WIDTH - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                tick_label(*tick)
            );
        }
        let _ = writeln!(
            out,
            "<text transform=\"translate(18 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
            TOP + (HEIGHT - TOP - BOTTOM) / 2.0,
            escape(y_label)
        );
        if !x_label.is_empty() {
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
                HEIGHT - BOTTOM + 38.0,
                escape(x_label)
            );
        }
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{}\" stroke=\"#333\"/>\
             <line x1=\"{LEFT}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#333\"/>",
            HEIGHT - BOTTOM,
            WIDTH - RIGHT,
            HEIGHT - BOTTOM,
            HEIGHT - BOTTOM
        );
        Self { out, y_max }
    }

    fn y(&self, value: f64) -> f64 {
        frame_y(value, self.y_max)
    }

    fn legend(&mut self, series: &[Series]) {
        let mut x = LEFT;
        let y = HEIGHT - 22.0;
        for s in series {
            let _ = writeln!(
                self.out,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                y - 10.0,
                s.colour,
                x + 16.0,
                y,
                escape(&s.name)
            );
            x += 30.0 + 7.5 * s.name.chars().count() as f64;
        }
    }

    fn whisker(&mut self, x: f64, summary: &Summary) {
        if summary.runs <= 1 {
            return;
        }
        let (lo, hi) = (self.y(summary.min), self.y(summary.max));
        let _ = writeln!(
            self.out,
            "<path d=\"M{x:.1} {lo:.1}V{hi:.1}M{:.1} {lo:.1}h6M{:.1} {hi:.1}h6\" stroke=\"#222\" fill=\"none\"/>",
            x - 3.0,
            x - 3.0
        );
    }

    fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }
}

fn frame_y(value: f64, y_max: f64) -> f64 {
    let plot = HEIGHT - TOP - BOTTOM;
    HEIGHT - BOTTOM - (value / y_max).clamp(0.0, 1.0) * plot
}

fn data_max(series: &[Series]) -> f64 {
    series
        .iter()
        .flat_map(|s| s.values.iter().map(|v| v.max.max(v.median)))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
}

impl BarChart {
    /// The chart as an SVG document.
    pub fn render(&self) -> String {
        let mut frame = Frame::new(&self.title, &self.y_label, "", data_max(&self.series));
        let groups = self.groups.len().max(1) as f64;
        let group_width = (WIDTH - LEFT - RIGHT) / groups;
        let bar = group_width * 0.8 / self.series.len().max(1) as f64;
        for (g, name) in self.groups.iter().enumerate() {
            let x0 = LEFT + g as f64 * group_width + group_width * 0.1;
            for (s, series) in self.series.iter().enumerate() {
                let Some(value) = series.values.get(g) else {
                    continue;
                };
                let x = x0 + s as f64 * bar;
                let y = frame.y(value.median);
                let _ = writeln!(
                    frame.out,
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\">\
                     <title>{}: {}</title></rect>",
                    (bar - 2.0).max(1.0),
                    (HEIGHT - BOTTOM - y).max(0.0),
                    series.colour,
                    escape(&series.name),
                    value.show(2)
                );
                frame.whisker(x + bar / 2.0 - 1.0, value);
            }
            let _ = writeln!(
                frame.out,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x0 + group_width * 0.4,
                HEIGHT - BOTTOM + 18.0,
                escape(name)
            );
        }
        frame.legend(&self.series);
        frame.finish()
    }
}

impl LineChart {
    /// The chart as an SVG document.
    pub fn render(&self) -> String {
        let mut frame = Frame::new(
            &self.title,
            &self.y_label,
            &self.x_label,
            data_max(&self.series),
        );
        let logs: Vec<f64> = self.xs.iter().map(|x| x.max(1e-9).log10()).collect();
        let (lo, hi) = logs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        let span = if hi > lo { hi - lo } else { 1.0 };
        let plot = WIDTH - LEFT - RIGHT - 60.0;
        let x_of = |i: usize| LEFT + 30.0 + (logs[i] - lo) / span * plot;
        for (i, x) in self.xs.iter().enumerate() {
            let _ = writeln!(
                frame.out,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x_of(i),
                HEIGHT - BOTTOM + 18.0,
                tick_label(*x)
            );
        }
        for series in &self.series {
            let points: Vec<String> = series
                .values
                .iter()
                .enumerate()
                .take(self.xs.len())
                .map(|(i, v)| format!("{:.1},{:.1}", x_of(i), frame.y(v.median)))
                .collect();
            let _ = writeln!(
                frame.out,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>",
                points.join(" "),
                series.colour
            );
            for (i, value) in series.values.iter().enumerate().take(self.xs.len()) {
                let (x, y) = (x_of(i), frame.y(value.median));
                let _ = writeln!(
                    frame.out,
                    "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"{}\">\
                     <title>{}: {}</title></circle>",
                    series.colour,
                    escape(&series.name),
                    value.show(2)
                );
                frame.whisker(x, value);
            }
        }
        frame.legend(&self.series);
        frame.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_steps() {
        assert_eq!(ticks(10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(*ticks(47_000.0).last().unwrap(), 50_000.0);
        assert_eq!(ticks(0.0).len(), 6);
        assert_eq!(tick_label(25_000.0), "25k");
        assert_eq!(tick_label(1_500_000.0), "1.5M");
        assert_eq!(tick_label(0.5), "0.5");
    }

    #[test]
    fn renders_well_formed_documents() {
        let s = Summary::of(&[1.0, 2.0, 3.0]);
        let bars = BarChart {
            title: "a < b".into(),
            y_label: "req/s".into(),
            groups: vec!["x".into(), "y".into()],
            series: vec![Series {
                name: "direct".into(),
                colour: "#000".into(),
                values: vec![s, s],
            }],
        }
        .render();
        assert!(bars.starts_with("<svg") && bars.trim_end().ends_with("</svg>"));
        assert!(bars.contains("a &lt; b"));
        let lines = LineChart {
            title: "t".into(),
            x_label: "viewers".into(),
            y_label: "events/s".into(),
            xs: vec![1.0, 100.0, 1000.0],
            series: vec![Series {
                name: "backend".into(),
                colour: "#000".into(),
                values: vec![s, s, s],
            }],
        }
        .render();
        assert_eq!(lines.matches("<circle").count(), 3);
    }
}
