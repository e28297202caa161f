//! Progress bars for long work (generation, training), drawn on stderr or hidden, and the
//! [`Reporter`] that carries library code's progress lines to the binary.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

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
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// Where library code sends the lines it has to say about long work (an evaluation's result, a
/// dataset being generated, a run being rewound); the binary decides how to show them. The
/// default says nothing.
#[derive(Clone, Default)]
pub struct Reporter(Option<std::sync::Arc<ShowLine>>);

/// What a [`Reporter`] does with a line.
type ShowLine = dyn Fn(&str) + Send + Sync;

impl Reporter {
    /// A reporter that hands every line to `show`.
    pub fn new(show: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self(Some(std::sync::Arc::new(show)))
    }

    /// A reporter that says nothing.
    pub fn silent() -> Self {
        Self(None)
    }

    /// Reports one line.
    pub fn line(&self, text: &str) {
        if let Some(show) = &self.0 {
            show(text);
        }
    }
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Reporter"
        } else {
            "Reporter(silent)"
        })
    }
}
