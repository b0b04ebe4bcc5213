//! The live feed: every committed entry, once, in order, to every follower.
//!
//! One thread follows the log with `log::follow::Follower` (the reader
//! `tail -f` uses), woken by the writer's commit notification instead of a
//! timer, renders each entry once as `argusctl cat -o json` would, and
//! broadcasts it. Followers subscribe before they read history, so the live
//! part starts where their catch-up ends; a follower that falls more than
//! the buffer behind sees `Lagged` and is disconnected, never buffered
//! without bound.
use crate::cli::{render, Format};
use crate::log::follow::{Filter, Follower};
use crate::log::reader::LogReader;
use crate::Log;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// One committed entry, rendered once for every follower.
#[derive(Debug)]
pub struct Item {
    pub seq: u64,
    pub kind: String,
    pub job: Option<String>,
    pub agent: Option<String>,
    /// The entry as `argusctl cat -o json` prints it (no newline).
    pub json: String,
    /// The entry as `argusctl cat` prints it (no newline).
    pub text: String,
}

/// One entry exactly as `argusctl` prints it in `format`, escaped the same
/// way (`cli::Out`), so a client can print the stream verbatim.
pub fn line(v: &log_format::EntryView<'_>, format: Format) -> String {
    let s = render(v, format);
    match format {
        Format::Json => crate::cli::safe::json(&s).into_owned(),
        Format::Text => crate::cli::safe::line(&s).into_owned(),
    }
}

impl Item {
    pub fn get(&self, format: Format) -> &str {
        match format {
            Format::Json => &self.json,
            Format::Text => &self.text,
        }
    }

    pub fn matches(&self, f: &Filter) -> bool {
        f.matches_fields(self.job.as_deref(), self.agent.as_deref(), &self.kind)
    }
}

#[derive(Clone)]
pub struct Feed {
    pub tx: broadcast::Sender<Arc<Item>>,
    /// Sealed entries so far (the next seq), as the feed has read them.
    pub head: watch::Receiver<u64>,
}

impl Feed {
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Item>> {
        self.tx.subscribe()
    }
}

/// Starts the feed thread; it runs until `stop` is set.
pub fn start(
    dir: &Path,
    log: Arc<Log>,
    capacity: usize,
    stop: Arc<AtomicBool>,
    gate: Arc<super::control::Gate>,
) -> anyhow::Result<(Feed, std::thread::JoinHandle<()>)> {
    let reader = LogReader::open(dir)?;
    let start = log.committed().get();
    let mut follower = Follower::new(&reader, start)?;
    let (tx, _) = broadcast::channel(capacity);
    let (head_tx, head) = watch::channel(start);
    let feed = Feed {
        tx: tx.clone(),
        head,
    };
    let thread = std::thread::Builder::new()
        .name("argusd-feed".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let polled = follower.poll(|v| {
                    gate.observe(v);
                    // Nobody follows: nothing to render. A follower that
                    // subscribes later reads these entries from the log.
                    if tx.receiver_count() == 0 {
                        return;
                    }
                    let item = Item {
                        seq: v.seq,
                        kind: v.kind.to_string(),
                        job: v.job_id.map(str::to_string),
                        agent: v.agent.map(str::to_string),
                        json: line(v, Format::Json),
                        text: line(v, Format::Text),
                    };
                    // No subscriber is not an error: nobody is following.
                    let _ = tx.send(Arc::new(item));
                });
                match polled {
                    Ok(0) => {
                        let next = follower.next_seq();
                        log.committed()
                            .wait_for(next + 1, Duration::from_millis(250));
                    }
                    Ok(_) => {
                        head_tx.send_replace(follower.next_seq());
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the live feed cannot read the log; followers stop receiving");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
        })?;
    Ok((feed, thread))
}
