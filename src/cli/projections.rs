//! `argusctl projections status|rebuild`.
use super::Format;
use crate::log::reader::LogReader;
use anyhow::Result;
use std::path::Path;

pub fn status(dir: &Path, format: Format) -> Result<()> {
    let st = super::state::open(dir)?;
    let rows = st.projections.status(st.size)?;
    let header = format!(
        "{:<14} {:>7} {:>10} {:>8}  state digest",
        "projection", "version", "seq", "lag"
    );
    super::print_rows(format, &rows, &header, super::as_json, |r| {
        format!(
            "{:<14} {:>7} {:>10} {:>8}  {}",
            r.name, r.version, r.seq, r.lag, r.state_digest
        )
    })
}

pub fn rebuild(
    dir: &Path,
    name: Option<&str>,
    threads: Option<usize>,
    format: Format,
) -> Result<()> {
    let reader = LogReader::open(dir)?;
    let mut p = super::state::open_projections(dir)?;
    if let Some(n) = threads {
        p.set_lanes(n);
    }
    p.reset(name)?;
    super::state::catch_up(&reader, &mut p)?;
    drop(p);
    status(dir, format)
}
