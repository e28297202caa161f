//! Progress bars for long work (generation, training), drawn on stderr or hidden.

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
