//! The command line's [`Observer`] of library work: lines on stderr, and each task as a progress
//! bar while stderr is a terminal.

use std::io::IsTerminal;
use std::sync::{Mutex, MutexGuard};

use hgn::progress::{Observer, Reporter};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The reporter of a command: every line and (on a terminal) a bar per task, on stderr;
/// nothing with `quiet`.
pub fn stderr_reporter(quiet: bool) -> Reporter {
    if quiet {
        return Reporter::silent();
    }
    Reporter::new(Stderr {
        bars: std::io::stderr().is_terminal(),
        bar: Mutex::new(None),
    })
}

/// A bar counting to `total` with the given indicatif `template`; hidden unless `visible`.
pub fn bar(total: u64, visible: bool, template: &str) -> ProgressBar {
    let target = if visible {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    bar.set_style(
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// Lines on stderr, printed above the current task's bar when there is one.
struct Stderr {
    bars: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Stderr {
    fn current(&self) -> MutexGuard<'_, Option<ProgressBar>> {
        self.bar
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Observer for Stderr {
    fn line(&self, text: &str) {
        match &*self.current() {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn begin(&self, label: &str, unit: &str, total: u64, position: u64) {
        if !self.bars {
            return;
        }
        let template =
            format!("{label} {{bar:25.cyan/blue}} {{pos}}/{{len}} {unit}  {{msg}}  eta {{eta}}");
        let new = bar(total, true, &template);
        new.set_position(position);
        if let Some(old) = self.current().replace(new) {
            old.finish_and_clear();
        }
    }

    fn position(&self, position: u64) {
        if let Some(bar) = &*self.current() {
            bar.set_position(position);
        }
    }

    fn status(&self, text: &str) {
        if let Some(bar) = &*self.current() {
            bar.set_message(text.to_string());
        }
    }

    fn end(&self) {
        if let Some(bar) = self.current().take() {
            bar.finish_and_clear();
        }
    }
}
