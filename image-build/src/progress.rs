//! Step-by-step progress for long pipelines: a spinner on a terminal, plain lines otherwise
//! (CI logs), and the time each step took.
//!
//! It only reports; it never decides whether a step runs.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Reports numbered steps of a pipeline on stderr and records how long each took.
#[derive(Debug)]
pub struct Steps {
    total: usize,
    done: usize,
    quiet: bool,
    timings: Vec<(String, Duration)>,
}

impl Steps {
    /// A pipeline of `total` steps; `quiet` prints nothing (used by tests).
    pub fn new(total: usize, quiet: bool) -> Self {
        Steps {
            total,
            done: 0,
            quiet,
            timings: Vec::new(),
        }
    }

    /// Runs one step, showing its name while it runs and its duration when it ends.
    pub fn step<T>(
        &mut self,
        name: &str,
        f: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.done += 1;
        let label = format!("[{}/{}] {name}", self.done, self.total);
        let spinner = (!self.quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.set_message(label.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        if spinner.is_none() && !self.quiet {
            eprintln!("{label} ...");
        }
        let start = Instant::now();
        let result = f();
        let took = start.elapsed();
        if let Some(bar) = spinner {
            bar.finish_and_clear();
        }
        if !self.quiet {
            let verdict = if result.is_ok() { "done" } else { "FAILED" };
            eprintln!("{label}: {verdict} in {:.1} s", took.as_secs_f64());
        }
        self.timings.push((name.to_string(), took));
        result
    }

    /// Each finished step's name and duration, in order.
    pub fn timings(&self) -> &[(String, Duration)] {
        &self.timings
    }
}
