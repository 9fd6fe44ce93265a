//! How the demo shows itself: on a terminal, one frame redrawn in place (ANSI), sized for 80x24 whatever the
//! cluster size; otherwise (`--no-tty`, or output to a file or a pipe) plain lines with the elapsed time, for
//! logs and CI. This module only formats: the story decides what happened.

use std::collections::VecDeque;
use std::io::Write;
use std::time::Instant;

use super::watch::Watcher;

/// What an agent is doing, as the story knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Running,
    Crashed,
    Left,
}

/// One frame's content besides the lists, which come from the [`Watcher`].
#[derive(Debug)]
pub struct Frame<'a> {
    pub title: &'a str,
    pub act: &'a str,
    pub agents: &'a [(String, Status)],
    pub timings: &'a [String],
}

/// The terminal width the frame is made for.
const COLUMNS: usize = 80;
/// Screen rows the frame may use; the table and the recent lines fit what is left after the fixed parts.
const ROWS: usize = 23;
/// More agents than this and each row of the table shows a count per state instead of one cell per member.
const CELLS_MAX: usize = 10;
/// More agents than this and agents with the same view share one row.
const ROWS_MAX: usize = 12;

#[derive(Debug)]
pub struct Screen {
    tty: bool,
    color: bool,
    started: Instant,
    recent: VecDeque<String>,
    drawn: bool,
}

impl Screen {
    pub fn new(tty: bool) -> Screen {
        let color = tty && std::env::var_os("NO_COLOR").is_none();
        Screen {
            tty,
            color,
            started: Instant::now(),
            recent: VecDeque::new(),
            drawn: false,
        }
    }

    pub fn is_tty(&self) -> bool {
        self.tty
    }

    /// Seconds since the demo started, as every line shows it.
    pub fn stamp(&self) -> String {
        format!("[{:5.1} s]", self.started.elapsed().as_secs_f64())
    }

    /// Something happened: a plain line now, or a line in the frame's recent list.
    pub fn say(&mut self, text: &str) {
        let line = format!("{} {text}", self.stamp());
        if self.tty {
            self.recent.push_back(line);
            while self.recent.len() > ROWS {
                self.recent.pop_front();
            }
        } else {
            println!("{line}");
        }
    }

    /// Redraws the frame in place (a terminal only).
    pub fn draw(&mut self, frame: &Frame<'_>, watch: &Watcher) {
        if !self.tty {
            return;
        }
        let mut lines = vec![
            self.paint(frame.title, "1"),
            format!("{} {}", self.stamp(), self.paint(frame.act, "1;36")),
            String::new(),
        ];
        lines.extend(self.table(frame, watch));
        lines.push(String::new());
        lines.extend(frame.timings.iter().cloned());
        let room = ROWS.saturating_sub(lines.len() + 1);
        if room > 0 {
            lines.push(self.paint("recent:", "2"));
            let skip = self.recent.len().saturating_sub(room - 1);
            lines.extend(self.recent.iter().skip(skip).cloned());
        }
        let mut out = std::io::stdout().lock();
        let mut text = String::new();
        if !self.drawn {
            // Clear once, hide the cursor; later frames overwrite in place so nothing flickers.
            text.push_str("\x1b[2J\x1b[?25l");
            self.drawn = true;
        }
        text.push_str("\x1b[H");
        for line in lines {
            // A line that wrapped would scroll the frame and leave copies of it above.
            text.push_str(&fit(&line, COLUMNS - 1));
            text.push_str("\x1b[K\n");
        }
        text.push_str("\x1b[J");
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    /// Gives the terminal back: cursor shown, below the last frame.
    pub fn finish(&mut self) {
        if self.tty && self.drawn {
            print!("\x1b[?25h");
            let _ = std::io::stdout().flush();
            self.drawn = false;
        }
    }

    /// One row per agent: what that agent's list says of every member.
    fn table(&self, frame: &Frame<'_>, watch: &Watcher) -> Vec<String> {
        let names: Vec<&str> = frame.agents.iter().map(|(n, _)| n.as_str()).collect();
        let mut rows = Vec::new();
        if names.len() <= CELLS_MAX {
            let mut head = format!("{:<10}", "list of");
            for name in &names {
                head.push_str(&format!(" {name:<6}"));
            }
            rows.push(self.paint(&head, "2"));
            for (name, status) in frame.agents {
                let mut row = format!("{name:<10}");
                match self.down(*status) {
                    Some(down) => row.push_str(&format!(" {down}")),
                    None => {
                        for member in &names {
                            let state = watch.state(name, member).map(|(s, _)| s);
                            row.push(' ');
                            row.push_str(&self.cell(state, 6));
                        }
                    }
                }
                rows.push(row);
            }
            return rows;
        }
        // Many agents: count states per list, and group the agents whose lists agree.
        let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
        for (name, status) in frame.agents {
            let key = match self.down(*status) {
                Some(down) => down,
                None => {
                    let mut counts = [0usize; 5];
                    for member in &names {
                        let slot = match watch.state(name, member).map(|(s, _)| s) {
                            Some("alive") => 0,
                            Some("suspect") => 1,
                            Some("failed") => 2,
                            Some("left") => 3,
                            _ => 4,
                        };
                        counts[slot] += 1;
                    }
                    let labels = ["alive", "suspect", "failed", "left", "unknown"];
                    let parts: Vec<String> = counts
                        .iter()
                        .zip(labels)
                        .filter(|(c, _)| **c > 0)
                        .map(|(c, label)| self.paint(&format!("{c} {label}"), color_of(label)))
                        .collect();
                    parts.join(", ")
                }
            };
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) if names.len() > ROWS_MAX => members.push(name),
                _ => groups.push((key, vec![name])),
            }
        }
        rows.push(self.paint(&format!("{:<18} what its list holds", "list of"), "2"));
        for (key, members) in groups {
            let who = if members.len() == 1 {
                members[0].to_owned()
            } else {
                format!("{} agents ({}..)", members.len(), members[0])
            };
            rows.push(format!("{who:<18} {key}"));
        }
        rows
    }

    fn down(&self, status: Status) -> Option<String> {
        match status {
            Status::Running => None,
            Status::Crashed => Some(self.paint("(crashed: kill -9)", "2;31")),
            Status::Left => Some(self.paint("(left and stopped)", "2;34")),
        }
    }

    fn cell(&self, state: Option<&str>, width: usize) -> String {
        let word = match state {
            None => "-",
            Some("suspect") => "susp.",
            Some(word) => word,
        };
        let padded = format!("{word:<width$}");
        self.paint(&padded, color_of(word))
    }

    fn paint(&self, text: &str, sgr: &str) -> String {
        if self.color && !sgr.is_empty() {
            format!("\x1b[{sgr}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// `line` cut to `width` visible characters; colour sequences are kept and do not count.
fn fit(line: &str, width: usize) -> String {
    let mut out = String::with_capacity(line.len());
    let mut visible = 0;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            out.push(c);
            for c in chars.by_ref() {
                out.push(c);
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        if visible < width {
            out.push(c);
            visible += 1;
        }
    }
    out
}

fn color_of(state: &str) -> &'static str {
    match state {
        "alive" => "32",
        "suspect" | "susp." => "33",
        "failed" => "1;31",
        "left" => "34",
        _ => "2",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_to_the_width_without_breaking_colours() {
        assert_eq!(fit("abcdef", 4), "abcd");
        assert_eq!(fit("\x1b[32malive\x1b[0m", 3), "\x1b[32mali\x1b[0m");
        assert_eq!(fit("ok", 79), "ok");
    }
}
