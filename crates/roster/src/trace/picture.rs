//! The spread as a picture: an SVG timeline (one row per list, in the order of the tree, an arrow from each sender to
//! each receiver) and an HTML page that holds it with the summary, the tree and the timeline as a table. Both
//! are self-contained: no script, no font, no asset from anywhere.

use std::fmt::Write as _;

use super::spread::Spread;
use super::text::{clock, clock_notes, headline, how, since, summary};

const ROW: f64 = 22.0;
const TOP: f64 = 70.0;
const LEFT: f64 = 150.0;
const PLOT: f64 = 720.0;
/// Room right of the plot for the label of the last dot.
const RIGHT: f64 = 250.0;

/// Escapes text for XML and HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A tick step (ms) that gives 4 to 10 ticks over `span_ms`.
fn tick_step(span_ms: u64) -> u64 {
    let mut step = 1;
    for s in [
        1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 60_000,
    ] {
        step = s;
        if span_ms / s <= 10 {
            break;
        }
    }
    step
}

fn color(via: Option<&str>, first_hand: bool) -> &'static str {
    if first_hand {
        return "#c0392b";
    }
    match via {
        Some("sync") => "#27ae60",
        _ => "#2c6fbb",
    }
}

/// The timeline as one SVG document.
pub fn svg(spread: &Spread) -> String {
    let rows = spread.hops.len().max(1);
    let width = LEFT + PLOT + RIGHT;
    let height = TOP + rows as f64 * ROW + 92.0;
    let start = spread.start_ms();
    let span = spread
        .hops
        .iter()
        .map(|h| h.causal_ms)
        .max()
        .unwrap_or(start)
        .saturating_sub(start)
        .max(50);
    let step = tick_step(span);
    let span = span.div_ceil(step) * step;
    let x = |ms: u64| LEFT + (ms.saturating_sub(start) as f64 / span as f64) * PLOT;
    // Rows follow the tree, depth first, so that every arrow runs down from a sender to its receivers.
    let mut row_of = vec![0usize; spread.hops.len()];
    let mut next = 0;
    let mut stack: Vec<usize> = spread.children(None).collect::<Vec<_>>();
    stack.reverse();
    while let Some(at) = stack.pop() {
        row_of[at] = next;
        next += 1;
        let mut children: Vec<usize> = spread.children(Some(at)).collect();
        children.reverse();
        stack.extend(children);
    }
    let y = |hop: usize| TOP + row_of[hop] as f64 * ROW + ROW / 2.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#777"/></marker></defs>"##
    );
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#fff"/><text x="16" y="24" font-size="15" font-weight="bold">{}</text>"##,
        escape(&format!("How the news spread: {}", headline(spread)))
    );
    let detector = spread
        .first_detector()
        .map(|h| h.node.as_str())
        .unwrap_or("?");
    let last = spread
        .last_to_hear()
        .map(|h| h.node.as_str())
        .unwrap_or("?");
    let _ = writeln!(
        out,
        r##"<text x="16" y="44" fill="#444">{}</text>"##,
        escape(&format!(
            "first detector {detector}, last to hear {last}; {} of {} lists. x is time since the first, corrected for causality.",
            spread.hops.len(),
            spread.hops.len() + spread.unheard.len()
        ))
    );
    // Alternate rows shaded, under everything else.
    for row in (0..spread.hops.len()).step_by(2) {
        let _ = writeln!(
            out,
            r##"<rect x="8" y="{:.1}" width="{:.1}" height="{ROW}" fill="#f6f7f9"/>"##,
            TOP + row as f64 * ROW,
            width - 16.0
        );
    }
    // The time axis.
    let axis_y = TOP + rows as f64 * ROW + 8.0;
    let _ = writeln!(
        out,
        r##"<line x1="{LEFT}" y1="{axis_y}" x2="{}" y2="{axis_y}" stroke="#999"/>"##,
        LEFT + PLOT
    );
    let mut t = 0;
    while t <= span {
        let tx = LEFT + t as f64 / span as f64 * PLOT;
        let label = if step >= 1000 {
            format!("{} s", t / 1000)
        } else if step >= 100 {
            format!("{:.1} s", t as f64 / 1000.0)
        } else {
            format!("{:.3} s", t as f64 / 1000.0)
        };
        let _ = writeln!(
            out,
            r##"<line x1="{tx:.1}" y1="{TOP}" x2="{tx:.1}" y2="{axis_y}" stroke="#eee"/><text x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="#666">+{label}</text>"##,
            axis_y + 16.0
        );
        t += step;
    }
    // Arrows first, so that the dots sit on top of them: into the receiver's dot from the left when it is
    // well to the right of its sender, from above when the two are close in time.
    // Where a list's news first arrived: its suspicion, for a failure that came as one, or the change.
    for (row, hop) in spread.hops.iter().enumerate() {
        if let Some(s) = &hop.suspected {
            let _ = writeln!(
                out,
                r##"<line x1="{:.1}" y1="{cy:.1}" x2="{:.1}" y2="{cy:.1}" stroke="#e0b34a" stroke-width="2"/>"##,
                x(s.causal_ms),
                x(hop.causal_ms),
                cy = y(row)
            );
        }
    }
    for (row, hop) in spread.hops.iter().enumerate() {
        if let Some(p) = hop.parent {
            let (x1, y1) = (x(spread.hops[p].arrival_ms()), y(p));
            let (x2, y2) = (x(hop.arrival_ms()), y(row));
            let (down, y1) = if y2 > y1 {
                (1.0, y1 + 6.0)
            } else {
                (-1.0, y1 - 6.0)
            };
            let d = if x2 - x1 > 16.0 {
                format!(
                    "M {x1:.1} {y1:.1} C {x1:.1} {y2:.1}, {x1:.1} {y2:.1}, {:.1} {y2:.1}",
                    x2 - 7.0
                )
            } else {
                let y2 = y2 - down * 7.0;
                let bow = x1.min(x2) - 14.0;
                format!("M {x1:.1} {y1:.1} C {bow:.1} {y1:.1}, {bow:.1} {y2:.1}, {x2:.1} {y2:.1}")
            };
            let _ = writeln!(
                out,
                r##"<path d="{d}" fill="none" stroke="#999" stroke-width="1.2" marker-end="url(#arrow)"/>"##
            );
        }
    }
    for (row, hop) in spread.hops.iter().enumerate() {
        let cy = y(row);
        let fill = color(hop.via.as_deref(), hop.first_hand());
        let title = escape(&format!(
            "{}: {} at {} ({}), stamped {}{}",
            hop.node,
            spread.kind,
            since(spread, hop.causal_ms),
            how(hop),
            clock(hop.time_ms),
            hop.before_sender_ms.map_or(String::new(), |g| format!(
                ", {g} ms before its sender's line"
            ))
        ));
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT - 12.0,
            cy + 4.0,
            escape(&hop.node)
        );
        if let Some(gap) = hop.before_sender_ms {
            // Where its own clock put the line compared with its sender's (the suspicion's, for a failure that
            // came as one): a hollow ring, joined to where causality puts it.
            let (stamp, moved) = match &hop.suspected {
                Some(s) => (s.time_ms, s.causal_ms),
                None => (hop.time_ms, hop.causal_ms),
            };
            let own = LEFT + (stamp as f64 - start as f64) / span as f64 * PLOT;
            let own = own.max(LEFT - 6.0);
            let _ = writeln!(
                out,
                r##"<line x1="{own:.1}" y1="{cy:.1}" x2="{:.1}" y2="{cy:.1}" stroke="#e67e22" stroke-dasharray="3 2"/><circle cx="{own:.1}" cy="{cy:.1}" r="4" fill="none" stroke="#e67e22"><title>stamped {gap} ms before its sender's line: its clock is behind by at least that</title></circle>"##,
                x(moved)
            );
        }
        if let Some(s) = &hop.suspected {
            let _ = writeln!(
                out,
                r##"<circle cx="{:.1}" cy="{cy:.1}" r="4" fill="#fff" stroke="#b7791f" stroke-width="2"><title>{}</title></circle>"##,
                x(s.causal_ms),
                escape(&format!(
                    "{}: suspected at {}, stamped {}",
                    hop.node,
                    since(spread, s.causal_ms),
                    clock(s.time_ms)
                ))
            );
        }
        let (label_x, anchor) = (x(hop.causal_ms) + 9.0, "start");
        let _ = writeln!(
            out,
            r##"<circle cx="{:.1}" cy="{cy:.1}" r="5.5" fill="{fill}"><title>{title}</title></circle><text x="{label_x:.1}" y="{:.1}" fill="#555" font-size="11" text-anchor="{anchor}">{}</text>"##,
            x(hop.causal_ms),
            cy + 4.0,
            escape(&match (&hop.from, hop.told_by()) {
                (Some(from), Some(first)) if hop.suspected.is_some() => format!(
                    "{} from {from}, suspected on {first}'s word",
                    since(spread, hop.causal_ms)
                ),
                (Some(from), _) => format!("{} from {from}", since(spread, hop.causal_ms)),
                (None, Some(from)) => format!(
                    "{}, suspected on {from}'s word",
                    since(spread, hop.causal_ms)
                ),
                (None, None) if hop.first_hand() =>
                    format!("{} first-hand", since(spread, hop.causal_ms)),
                (None, None) => format!("{} {}", since(spread, hop.causal_ms), how(hop)),
            })
        );
    }
    let legend_y = axis_y + 40.0;
    let _ = writeln!(
        out,
        r##"<g fill="#444"><circle cx="24" cy="{ly:.1}" r="5" fill="#c0392b"/><text x="34" y="{ty:.1}">first-hand</text><circle cx="124" cy="{ly:.1}" r="5" fill="#2c6fbb"/><text x="134" y="{ty:.1}">told by gossip</text><circle cx="254" cy="{ly:.1}" r="5" fill="#27ae60"/><text x="264" y="{ty:.1}">told in a sync</text><circle cx="374" cy="{ly:.1}" r="4" fill="#fff" stroke="#b7791f" stroke-width="2"/><text x="384" y="{ty:.1}">suspected</text><circle cx="464" cy="{ly:.1}" r="4" fill="none" stroke="#e67e22"/><text x="474" y="{ty:.1}">own stamp, earlier than its sender's (clock behind)</text></g>"##,
        ly = legend_y,
        ty = legend_y + 4.0
    );
    let _ = writeln!(
        out,
        r##"<text x="16" y="{:.1}" fill="#666" font-size="11">Each machine stamps by its own clock; times are corrected so that no list learns before the member that told it.</text>"##,
        legend_y + 22.0
    );
    out.push_str("</svg>\n");
    out
}

/// The HTML page: the summary, the picture, the tree and the timeline table, all inline.
pub fn html(spread: &Spread) -> String {
    let mut out = String::new();
    let title = escape(&format!("roster trace: {}", headline(spread)));
    let _ = writeln!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\n<style>\n\
         body{{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}}\n\
         h1{{font-size:20px}} h2{{font-size:16px;margin-top:28px}}\n\
         table{{border-collapse:collapse}} td,th{{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}}\n\
         td.num{{text-align:right;font-variant-numeric:tabular-nums}} .flag{{color:#b9770e}}\n\
         ul.tree,ul.tree ul{{list-style:none;padding-left:18px;margin:0}} ul.tree{{padding-left:0}}\n\
         .muted{{color:#666}} svg{{max-width:100%;height:auto;border:1px solid #eee}}\n\
         </style></head><body>"
    );
    let _ = writeln!(out, "<h1>{title}</h1><ul>");
    for line in summary(spread) {
        let _ = writeln!(out, "<li>{}</li>", escape(&line));
    }
    let _ = writeln!(out, "</ul>");
    out.push_str(&svg(spread));
    let _ = writeln!(out, "<h2>Who told whom</h2><ul class=\"tree\">");
    for root in spread.children(None) {
        tree(spread, root, &mut out);
    }
    let _ = writeln!(out, "</ul>");
    let _ = writeln!(
        out,
        "<h2>Timeline</h2><table><thead><tr><th>since first</th><th>own stamp</th><th>list</th><th>how</th><th>hops</th><th>note</th></tr></thead><tbody>"
    );
    for hop in &spread.hops {
        let _ = writeln!(
            out,
            "<tr data-node=\"{}\"><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"flag\">{}</td></tr>",
            escape(&hop.node),
            escape(&since(spread, hop.causal_ms)),
            escape(&clock(hop.time_ms)),
            escape(&hop.node),
            escape(&how(hop)),
            hop.depth,
            hop.before_sender_ms.map_or(String::new(), |g| format!(
                "stamped {g} ms before its sender's line"
            ))
        );
    }
    let _ = writeln!(out, "</tbody></table><h2>Clocks</h2>");
    for line in clock_notes(spread) {
        let _ = writeln!(out, "<p class=\"muted\">{}</p>", escape(&line));
    }
    out.push_str("</body></html>\n");
    out
}

fn tree(spread: &Spread, at: usize, out: &mut String) {
    let hop = &spread.hops[at];
    let _ = write!(
        out,
        "<li>{} <span class=\"muted\">{} &middot; {}</span>",
        escape(&hop.node),
        escape(&since(spread, hop.arrival_ms())),
        escape(&how(hop))
    );
    let children: Vec<usize> = spread.children(Some(at)).collect();
    if !children.is_empty() {
        out.push_str("<ul>");
        for child in children {
            tree(spread, child, out);
        }
        out.push_str("</ul>");
    }
    out.push_str("</li>\n");
}
