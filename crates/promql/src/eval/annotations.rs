//! Soft problems found during evaluation ("annotations"): warnings and infos
//! that do not fail the query, rendered as Prometheus renders them
//! (`PromQL warning: … (line:col)`). Layer 2.

/// Collected warnings and infos, each once, in the order first seen.
#[derive(Debug, Default)]
pub(crate) struct Annotations {
    items: Vec<String>,
}

impl Annotations {
    fn add(&mut self, kind: &str, msg: &str, pos: Option<(usize, usize)>) {
        let text = match pos {
            Some((line, col)) => format!("PromQL {kind}: {msg} ({line}:{col})"),
            None => format!("PromQL {kind}: {msg}"),
        };
        if !self.items.contains(&text) {
            self.items.push(text);
        }
    }

    /// Adds a warning: the result may be wrong or incomplete.
    pub(crate) fn warn(&mut self, msg: &str, pos: Option<(usize, usize)>) {
        self.add("warning", msg, pos);
    }

    /// Adds an info: the result is right but the query may not mean what it says.
    pub(crate) fn info(&mut self, msg: &str, pos: Option<(usize, usize)>) {
        self.add("info", msg, pos);
    }

    pub(crate) fn into_strings(self) -> Vec<String> {
        self.items
    }
}
