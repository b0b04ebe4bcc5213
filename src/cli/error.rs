//! Why a command refused, by type: argusd answers 404, 409 or 400 from
//! these, never from a message's text. The message is what the user reads.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// No such job, proposal, DLQ item, agent or route.
    #[error("{0}")]
    NotFound(String),
    /// A decision lost to another, or the state changed since it was read.
    #[error("{0}")]
    Conflict(String),
    /// An option's value is wrong.
    #[error("{0}")]
    Invalid(String),
}

/// An error and its causes as one line, `context: cause: cause`. Our
/// typed errors already spell their source in their own message (a reader
/// of the bare error needs it), so anyhow's `{:#}` would print it twice
/// ("Not a directory (os error 20): Not a directory (os error 20)"); a
/// cause whose text ends the line so far is left out.
pub fn chain_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for link in e.chain() {
        let text = link.to_string();
        if text.is_empty() || out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod chain_tests {
    use super::chain_text;
    use anyhow::Context;

    #[test]
    fn a_cause_already_in_its_parents_text_is_printed_once() {
        let io = std::io::Error::from_raw_os_error(20);
        let typed = crate::Error::Io {
            path: "/x/y".into(),
            source: io,
        };
        let e = Err::<(), _>(typed)
            .context("creating log in /x/y")
            .unwrap_err();
        let text = chain_text(&e);
        assert_eq!(text.matches("os error 20").count(), 1, "{text}");
        assert!(text.starts_with("creating log in /x/y: "), "{text}");
    }

    #[test]
    fn a_cause_not_in_its_parent_is_kept() {
        let e = anyhow::anyhow!("disk gone").context("writing seg 3");
        assert_eq!(chain_text(&e), "writing seg 3: disk gone");
    }
}
