//! Opening the projections for a view: every view catches them up to the
//! log's sealed head before answering, with a progress bar on a terminal.
use crate::log::reader::LogReader;
use crate::projections::{self, Projections};
use anyhow::{Context, Result};
use std::io::IsTerminal;
use std::path::Path;

pub struct State {
    pub reader: LogReader,
    pub projections: Projections,
    /// Sealed entries the projections now reflect.
    pub size: u64,
}

pub fn open(dir: &Path) -> Result<State> {
    let reader = LogReader::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let mut projections = Projections::open(dir, projections::all())?;
    let size = catch_up(&reader, &mut projections)?;
    Ok(State {
        reader,
        projections,
        size,
    })
}

pub fn catch_up(reader: &LogReader, p: &mut Projections) -> Result<u64> {
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "projections {bar:40} {pos}/{len} entries {per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let size = p
        .catch_up(reader, |done, total| {
            if let Some(b) = &bar {
                b.set_length(total);
                b.set_position(done);
            }
        })
        .context("catching up projections")?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(size)
}
