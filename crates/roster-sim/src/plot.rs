//! SVG charts, written by hand: a line chart with axes, ticks, a legend and labelled vertical lines is all the
//! simulator needs, and plain SVG keeps the dependency tree small.
//!
//! - `deadlines.svg`: the distribution (CDF) of detection and dissemination times against the 10 s and 15 s lines.
//! - `spread.svg`: the spread of one failure over time, as the fraction of live lists that mark it failed.
//! - `load.svg`: messages and bytes per member per second against the cluster size.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::report::Summary;

const W: f64 = 720.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLORS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f",
];

type Points = Vec<(f64, f64)>;

/// One line of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Draw as a step function (a CDF), not straight segments.
    pub steps: bool,
    /// Draw dashed: the second line of a pair that shares a colour.
    pub dashed: bool,
    /// Index into the palette; by default the series' own position.
    pub color: Option<usize>,
}

/// A line chart.
#[derive(Clone, Debug, Default)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Vertical reference lines: x and label.
    pub marks: Vec<(f64, String)>,
    pub log_x: bool,
    pub x_min: Option<f64>,
    pub x_max: Option<f64>,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-9);
    let raw = span / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 8.0)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut ticks = Vec::new();
    while t <= hi + step * 1e-6 {
        ticks.push(t);
        t += step;
    }
    ticks
}

impl Chart {
    /// The chart as an SVG document.
    pub fn svg(&self) -> String {
        let tx = |x: f64| if self.log_x { x.max(1e-9).log10() } else { x };
        let xs = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .chain(self.marks.iter().map(|m| m.0));
        let (mut x0, mut x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(tx(x)), b.max(tx(x)))
        });
        if let Some(x) = self.x_min {
            x0 = tx(x);
        }
        if let Some(x) = self.x_max {
            x1 = tx(x);
        }
        if !x0.is_finite() || !x1.is_finite() {
            (x0, x1) = (0.0, 1.0);
        }
        x1 += (x1 - x0) * 0.03;
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        let y1 = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0_f64, f64::max);
        let y1 = if y1 <= 0.0 { 1.0 } else { y1 * 1.05 };
        let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
        let px = |x: f64| LEFT + (tx(x) - x0) / (x1 - x0) * pw;
        let py = |y: f64| TOP + ph - y / y1 * ph;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
            LEFT + pw / 2.0,
            escape(&self.title)
        );
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##
        );
        for t in nice_ticks(0.0, y1) {
            let y = py(t);
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/>"##,
                LEFT + pw
            );
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                y + 4.0,
                fmt_tick(t)
            );
        }
        let xticks: Vec<f64> = if self.log_x {
            (x0.floor() as i32..=x1.ceil() as i32)
                .map(|e| 10f64.powi(e))
                .filter(|&v| tx(v) >= x0 - 1e-9 && tx(v) <= x1 + 1e-9)
                .collect()
        } else {
            nice_ticks(x0, x1)
        };
        for t in xticks {
            let x = px(t);
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{}" stroke="#eee"/>"##,
                TOP + ph
            );
            let _ = writeln!(
                s,
                r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
                TOP + ph + 16.0,
                fmt_tick(t)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            LEFT + pw / 2.0,
            H - 12.0,
            escape(&self.x_label)
        );
        let _ = writeln!(
            s,
            r#"<text transform="translate(18,{}) rotate(-90)" text-anchor="middle">{}</text>"#,
            TOP + ph / 2.0,
            escape(&self.y_label)
        );
        for (k, (x, label)) in self.marks.iter().enumerate() {
            let xp = px(*x);
            let _ = writeln!(
                s,
                r##"<line x1="{xp:.1}" x2="{xp:.1}" y1="{TOP}" y2="{}" stroke="#000" stroke-dasharray="6,4"/>"##,
                TOP + ph
            );
            // Near the right edge the label goes left of its line, clear of the legend.
            let (tx, anchor) = if xp > LEFT + pw * 0.75 {
                (xp - 3.0, "end")
            } else {
                (xp + 3.0, "start")
            };
            let _ = writeln!(
                s,
                r#"<text x="{tx:.1}" y="{}" font-size="11" text-anchor="{anchor}">{}</text>"#,
                TOP + 12.0 + 14.0 * k as f64,
                escape(label)
            );
        }
        for (k, series) in self.series.iter().enumerate() {
            let color = COLORS[series.color.unwrap_or(k) % COLORS.len()];
            let dash = if series.dashed {
                r#" stroke-dasharray="5,3""#
            } else {
                ""
            };
            let mut path = String::new();
            let mut prev: Option<(f64, f64)> = None;
            for &(x, y) in &series.points {
                let (xp, yp) = (px(x), py(y));
                match prev {
                    None => {
                        let _ = write!(path, "M{xp:.1},{yp:.1}");
                    }
                    Some((_, py_prev)) if series.steps => {
                        let _ = write!(path, " L{xp:.1},{py_prev:.1} L{xp:.1},{yp:.1}");
                    }
                    Some(_) => {
                        let _ = write!(path, " L{xp:.1},{yp:.1}");
                    }
                }
                prev = Some((xp, yp));
            }
            let _ = writeln!(
                s,
                r#"<path d="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>"#
            );
            if series.points.len() <= 12 {
                for &(x, y) in &series.points {
                    let _ = writeln!(
                        s,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                        px(x),
                        py(y)
                    );
                }
            }
            let ly = TOP + 10.0 + 18.0 * k as f64;
            let lx = W - RIGHT + 12.0;
            let _ = writeln!(
                s,
                r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/>"#,
                lx + 20.0
            );
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}">{}</text>"#,
                lx + 26.0,
                ly + 4.0,
                escape(&series.name)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

fn fmt_tick(t: f64) -> String {
    if t.abs() >= 1000.0 || (t.fract() == 0.0) {
        format!("{t:.0}")
    } else {
        let s = format!("{t:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// At most `max` points of a step curve, evenly spaced along it, the last kept: a 5,000-member spread stays a
/// small file and looks the same.
fn thin(points: Vec<(f64, f64)>, max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max {
        return points;
    }
    let step = points.len().div_ceil(max);
    let last = points[points.len() - 1];
    let mut out: Vec<(f64, f64)> = points.into_iter().step_by(step).collect();
    if out.last() != Some(&last) {
        out.push(last);
    }
    out
}

fn cdf(samples: &[f64]) -> Vec<(f64, f64)> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let mut points = vec![(0.0, 0.0)];
    points.extend(
        sorted
            .iter()
            .enumerate()
            .map(|(i, &x)| (x, (i + 1) as f64 / n)),
    );
    points
}

/// The three charts of `--plot`, for these summaries.
pub fn charts(summaries: &[Summary]) -> Vec<(&'static str, Chart)> {
    let mut out = Vec::new();
    let mut deadlines = Chart {
        title:
            "Time from crash to failed: first list (detection) and every live list (dissemination)"
                .into(),
        x_label: "seconds after the crash".into(),
        y_label: "fraction of crashes".into(),
        marks: vec![
            (10.0, "10 s: one list".into()),
            (15.0, "15 s: every list".into()),
        ],
        x_min: Some(0.0),
        ..Chart::default()
    };
    for (cell, s) in summaries
        .iter()
        .filter(|s| !s.detection_samples.is_empty())
        .enumerate()
    {
        // "spec n=50 loss=5%" becomes "n=50 5%": the legend has little room.
        let tag = if summaries.len() > 1 {
            s.label.trim_start_matches("spec ").replace("loss=", "")
        } else {
            "crash to failed:".to_string()
        };
        deadlines.series.push(Series {
            name: format!("{tag} first"),
            points: cdf(&s.detection_samples),
            steps: true,
            dashed: false,
            color: Some(cell),
        });
        if !s.dissemination_samples.is_empty() {
            deadlines.series.push(Series {
                name: format!("{tag} all"),
                points: cdf(&s.dissemination_samples),
                steps: true,
                dashed: true,
                color: Some(cell),
            });
        }
    }
    if !deadlines.series.is_empty() {
        deadlines.title =
            "Crash to failed: in the first list (solid) and in every list (dashed)".into();
        out.push(("deadlines.svg", deadlines));
    }
    let mut spread = Chart {
        title: "Spread of one failure".into(),
        x_label: "seconds after the crash".into(),
        y_label: "fraction of live lists that mark it failed".into(),
        marks: vec![(10.0, "10 s".into()), (15.0, "15 s".into())],
        x_min: Some(0.0),
        ..Chart::default()
    };
    for s in summaries {
        if let Some((times, observers)) = &s.spread
            && *observers > 0
        {
            let mut points = vec![(0.0, 0.0)];
            points.extend(
                times
                    .iter()
                    .enumerate()
                    .map(|(i, &t)| (t, (i + 1) as f64 / *observers as f64)),
            );
            spread.series.push(Series {
                name: s.label.clone(),
                points: thin(points, 400),
                steps: true,
                dashed: false,
                color: None,
            });
        }
    }
    if !spread.series.is_empty() {
        out.push(("spread.svg", spread));
    }
    let mut by_loss: Vec<(f64, Points, Points)> = Vec::new();
    for s in summaries {
        let key = s.loss;
        let at = match by_loss.iter().position(|(l, _, _)| *l == key) {
            Some(at) => at,
            None => {
                by_loss.push((key, Vec::new(), Vec::new()));
                by_loss.len() - 1
            }
        };
        by_loss[at].1.push((s.nodes as f64, s.msgs_per_member_s));
        by_loss[at]
            .2
            .push((s.nodes as f64, s.bytes_per_member_s / 100.0));
    }
    let mut load = Chart {
        title: "Load per member against cluster size".into(),
        x_label: "members (log scale)".into(),
        y_label: "per member per second".into(),
        log_x: true,
        ..Chart::default()
    };
    for (loss, msgs, bytes) in by_loss {
        let mut msgs = msgs;
        let mut bytes = bytes;
        msgs.sort_by(|a, b| a.0.total_cmp(&b.0));
        bytes.sort_by(|a, b| a.0.total_cmp(&b.0));
        load.series.push(Series {
            name: format!("msgs, loss {:.0}%", loss * 100.0),
            points: msgs,
            steps: false,
            dashed: false,
            color: None,
        });
        load.series.push(Series {
            name: format!("bytes/100, loss {:.0}%", loss * 100.0),
            points: bytes,
            steps: false,
            dashed: false,
            color: None,
        });
    }
    if summaries.len() == 1 {
        let n = summaries[0].nodes as f64;
        load.x_min = Some(n / 10.0);
        load.x_max = Some(n * 10.0);
    }
    out.push(("load.svg", load));
    out
}

/// Writes the charts into `dir`, creating it; returns the files written.
pub fn write(dir: &Path, summaries: &[Summary]) -> anyhow::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for (file, chart) in charts(summaries) {
        let path = dir.join(file);
        std::fs::write(&path, chart.svg())
            .with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_well_formed_svg_with_its_marks() {
        let chart = Chart {
            title: "t <1>".into(),
            series: vec![Series {
                name: "a".into(),
                points: cdf(&[1.0, 2.0, 3.5]),
                steps: true,
                dashed: false,
                color: None,
            }],
            marks: vec![(10.0, "10 s".into())],
            ..Chart::default()
        };
        let svg = chart.svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("t &lt;1&gt;") && svg.contains("10 s") && svg.contains("<path"));
    }
}
