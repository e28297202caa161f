//! How library code tells the binary about long work. A [`Reporter`] carries lines to say and
//! the progress of one task at a time to an [`Observer`] that the binary provides (the command
//! line prints the lines and draws a bar on stderr); the library itself never prints or draws.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the binary does with the library's reports; every method ignores its report unless
/// overridden. A closure `Fn(&str)` is an observer of lines only.
pub trait Observer: Send + Sync {
    /// A line about the work: an evaluation's result, a dataset or run being started, a run
    /// rewound to its checkpoint.
    fn line(&self, _text: &str) {}
    /// A task of `total` `unit`s (`"steps"`, `"sequences"`) named `label` begins at `position`.
    fn begin(&self, _label: &str, _unit: &str, _total: u64, _position: u64) {}
    /// The current task has reached `position`.
    fn position(&self, _position: u64) {}
    /// The current task's latest figures (loss, steps/s), shown beside its progress.
    fn status(&self, _text: &str) {}
    /// The current task ended, completed or not.
    fn end(&self) {}
}

impl<F: Fn(&str) + Send + Sync> Observer for F {
    fn line(&self, text: &str) {
        self(text)
    }
}

/// Where library code sends what it has to say about long work. The default says nothing.
#[derive(Clone, Default)]
pub struct Reporter(Option<Arc<dyn Observer>>);

impl Reporter {
    /// A reporter that hands every report to `observer`.
    pub fn new(observer: impl Observer + 'static) -> Self {
        Self(Some(Arc::new(observer)))
    }

    /// A reporter that says nothing.
    pub fn silent() -> Self {
        Self(None)
    }

    /// Reports one line.
    pub fn line(&self, text: &str) {
        if let Some(observer) = &self.0 {
            observer.line(text);
        }
    }

    /// Begins a task of `total` `unit`s named `label`, already at `position`; it ends when the
    /// returned [`Task`] is dropped.
    pub fn task(&self, label: &str, unit: &str, total: u64, position: u64) -> Task {
        if let Some(observer) = &self.0 {
            observer.begin(label, unit, total, position);
        }
        Task {
            observer: self.0.clone(),
            position: AtomicU64::new(position),
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

/// One task's progress (see [`Reporter::task`]); shared by the threads that advance it.
pub struct Task {
    observer: Option<Arc<dyn Observer>>,
    position: AtomicU64,
}

impl Task {
    /// The task has reached `position`.
    pub fn set_position(&self, position: u64) {
        self.position.store(position, Ordering::Relaxed);
        if let Some(observer) = &self.observer {
            observer.position(position);
        }
    }

    /// The task has advanced by `units`.
    pub fn inc(&self, units: u64) {
        let position = self.position.fetch_add(units, Ordering::Relaxed) + units;
        if let Some(observer) = &self.observer {
            observer.position(position);
        }
    }

    /// The task's latest figures.
    pub fn status(&self, text: &str) {
        if let Some(observer) = &self.observer {
            observer.status(text);
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if let Some(observer) = &self.observer {
            observer.end();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records every report as one string.
    #[derive(Default)]
    struct Log(Arc<Mutex<Vec<String>>>);

    impl Observer for Log {
        fn line(&self, text: &str) {
            self.0.lock().unwrap().push(format!("line {text}"));
        }
        fn begin(&self, label: &str, unit: &str, total: u64, position: u64) {
            self.0
                .lock()
                .unwrap()
                .push(format!("begin {label} {position}/{total} {unit}"));
        }
        fn position(&self, position: u64) {
            self.0.lock().unwrap().push(format!("at {position}"));
        }
        fn status(&self, text: &str) {
            self.0.lock().unwrap().push(format!("status {text}"));
        }
        fn end(&self) {
            self.0.lock().unwrap().push("end".into());
        }
    }

    #[test]
    fn a_task_reports_its_positions_and_ends_when_dropped() {
        let log = Log::default();
        let record = log.0.clone();
        let reporter = Reporter::new(log);
        {
            let task = reporter.task("training", "steps", 10, 4);
            task.inc(2);
            task.set_position(9);
            task.status("mse 1e-3");
            reporter.line("step 9");
        }
        assert_eq!(
            *record.lock().unwrap(),
            [
                "begin training 4/10 steps",
                "at 6",
                "at 9",
                "status mse 1e-3",
                "line step 9",
                "end"
            ]
        );
        // A silent reporter's task does nothing, and a closure hears lines only.
        Reporter::silent().task("x", "steps", 1, 0).inc(1);
        let heard = Arc::new(Mutex::new(vec![]));
        let sink = heard.clone();
        let lines = Reporter::new(move |t: &str| sink.lock().unwrap().push(t.to_string()));
        lines.task("x", "steps", 2, 0).inc(1);
        lines.line("hello");
        assert_eq!(*heard.lock().unwrap(), ["hello"]);
    }
}
