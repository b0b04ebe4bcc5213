//! `argusctl search DIR QUERY`: full-text search over the log through the
//! retrieval index (`crate::search`), caught up with the log first.
//!
//! Every hit is re-read from the log and its payload hash compared with the
//! one the index recorded; what is printed comes from the log, and a hit
//! whose hashes differ is reported as stale rather than trusted. While it
//! indexes, the injection scan flags entries, and this command appends the
//! `research.injection_flagged` records the log does not hold yet.
use super::safe::esc;
use super::{eprint, rfc3339_ns, Format, Out, EXIT_USAGE};
use crate::log::reader::LogReader;
use crate::search::index::Rebuild;
use crate::search::{self, Backing, Filters, Scanner, SearchError, SearchIndex};
use anyhow::{Context, Result};
use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const AFTER_HELP: &str = "QUERY is tantivy's query language over the payload's words (keys, string values, numbers; see\ndocs/SEARCH.md): words are ANDed, \"quoted phrases\" match in order, OR / NOT / -word / ( ) combine,\nword* is a prefix, and kind:, job:, agent:, actor: match a field exactly. QUERY may be left out\nwhen a filter is given. Hits are newest first; each is re-read from the log, and one whose payload\nno longer matches the index is marked stale (and --rebuild fixes the index).\n\nThe index is DIR/search/ (a cache: delete it any time); each run first indexes what the log\ngained since. research.evidence_stored and tool.call_completed payloads are scanned for prompt\ninjection while indexed; each match is flagged and recorded once as research.injection_flagged\n(an Argus entry; when the log cannot be written it is only flagged, and stderr says so).\n\nExit codes: 0 ran (no hits is not an error), 2 bad QUERY, option or pattern file, 1 could not run.\n\nExamples:\n  argusctl search ./audit 'ignore previous instructions'\n  argusctl search ./audit '\"rate limit\" AND -retry' --kind 'tool.*' --since 2026-11-23\n  argusctl search ./audit bash --job job-7f3a --agent coder -n 5 -o json | jq -c '{seq,kind,snippet}'\n  argusctl search ./audit --flagged                  # entries the injection scan flagged\n  argusctl search ./audit --flagged --patterns extra-patterns.txt\n  argusctl search ./audit timeout --since 2026-11-23T09:00:00Z --until 2026-11-23T17:00:00Z\n  argusctl search ./audit 'timeout OR \"rate limit\"' --rebuild   # rebuild the index from the log first\n  argusctl inspect ./audit 4412                      # a hit's seq, whole";

/// `-n` range.
pub const HITS: std::ops::RangeInclusive<u64> = 1..=100_000;
/// How long to wait for another process writing the index.
const BUSY_WAIT: Duration = Duration::from_secs(30);
/// Characters of payload shown per hit.
const SNIPPET_CHARS: usize = 120;

#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    pub dir: PathBuf,
    /// Words, "phrases", field:value, AND/OR/NOT. Example: 'ignore previous instructions'
    pub query: Option<String>,
    /// Only this kind, or a family with a trailing .* (--kind 'tool.*').
    #[arg(long)]
    pub kind: Option<String>,
    /// Only entries of this job_id.
    #[arg(long)]
    pub job: Option<String>,
    /// Only entries with this agent field.
    #[arg(long)]
    pub agent: Option<String>,
    /// Entries stored at or after TIME: RFC 3339 UTC (2026-11-23T09:00:00Z) or a UTC day (2026-11-23).
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub since: Option<u64>,
    /// Entries stored at or before TIME: RFC 3339 UTC, or a UTC day (up to its end).
    #[arg(long, value_name = "TIME", value_parser = parse_until)]
    pub until: Option<u64>,
    /// Hits to show, newest first (1..=100000).
    #[arg(short = 'n', long = "limit", value_name = "N", default_value_t = 20,
          value_parser = super::args::usize_in(HITS))]
    pub n: usize,
    /// Only entries the prompt-injection scan flagged.
    #[arg(long)]
    pub flagged: bool,
    /// More injection patterns: one regex per line (NAME=REGEX names it), # comments.
    /// A different set rebuilds the index. Example: --patterns ./patterns.txt
    #[arg(long, value_name = "FILE")]
    pub patterns: Option<PathBuf>,
    /// Throw the index away and rebuild it from the log first.
    #[arg(long)]
    pub rebuild: bool,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

const DAY_NS: u64 = 86_400 * crate::time::NS_PER_S;

/// RFC 3339 UTC, or `YYYY-MM-DD` (that day's first nanosecond).
fn parse_time(s: &str, day_end: bool) -> Result<u64, String> {
    if let Some(ns) = crate::time::parse_rfc3339_ns(s) {
        return Ok(ns);
    }
    if s.len() == 10 {
        if let Some(ns) = crate::time::parse_rfc3339_ns(&format!("{s}T00:00:00Z")) {
            return Ok(if day_end { ns + DAY_NS - 1 } else { ns });
        }
    }
    Err(format!(
        "{s:?} is not a time: use RFC 3339 UTC (2026-11-23T09:00:00Z, 2026-11-23T09:00:00.5Z) or a UTC day (2026-11-23)"
    ))
}

fn parse_since(s: &str) -> Result<u64, String> {
    parse_time(s, false)
}

fn parse_until(s: &str) -> Result<u64, String> {
    parse_time(s, true)
}

/// One hit as printed: the log's entry, never the index's copy.
#[derive(serde::Serialize)]
struct Shown {
    seq: u64,
    ts: Option<String>,
    kind: Option<String>,
    job_id: Option<String>,
    agent: Option<String>,
    actor: Option<String>,
    flagged: bool,
    patterns: Vec<String>,
    snippet: String,
    /// The index's payload hash for this seq differs from the log's (or
    /// the log has no such seq): the index is stale or was altered.
    stale: bool,
}

pub fn run(a: &SearchArgs) -> Result<i32> {
    let query = a.query.clone().unwrap_or_default();
    let filters = Filters {
        kind: a.kind.clone(),
        job: a.job.clone(),
        agent: a.agent.clone(),
        since_ns: a.since,
        until_ns: a.until,
        flagged: a.flagged,
    };
    let filtered = filters.kind.is_some()
        || filters.job.is_some()
        || filters.agent.is_some()
        || filters.since_ns.is_some()
        || filters.until_ns.is_some()
        || filters.flagged;
    if query.trim().is_empty() && !filtered {
        eprint("argusctl: search: give a QUERY, or a filter (--kind, --job, --agent, --since, --until, --flagged)");
        return Ok(EXIT_USAGE);
    }
    let scanner = match scanner(a.patterns.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprint(&format!(
                "argusctl: search: {}",
                crate::cli::error::chain_text(&e)
            ));
            return Ok(EXIT_USAGE);
        }
    };
    let reader = LogReader::open(&a.dir).with_context(|| format!("opening {}", a.dir.display()))?;
    let mut index = SearchIndex::open(&a.dir, BUSY_WAIT).context("opening the search index")?;
    if let Backing::Memory { reason } = index.backing() {
        eprint(&format!(
            "argusctl: {} is read-only ({reason}); search index built in memory for this run",
            a.dir.display()
        ));
    }
    // A bad query is refused before any indexing work.
    if let Err(e) = index.check_query(&query) {
        return match e {
            SearchError::Query(_) => {
                eprint(&format!("argusctl: search: {e} (in {query:?})"));
                Ok(EXIT_USAGE)
            }
            e => Err(e).context("searching"),
        };
    }
    catch_up(&reader, &mut index, &scanner, a.rebuild)?;
    let owed = index.unrecorded_flags().context("reading flags")?;
    if !owed.is_empty() && record_flags(&a.dir, &reader, &scanner, &owed)? > 0 {
        // The records are entries too: index them before answering.
        let reader = LogReader::open(&a.dir)?;
        catch_up(&reader, &mut index, &scanner, false)?;
    }
    let answer = index.search(&query, &filters, a.n).context("searching")?;
    let words = search::text::query_words(&query);
    let mut out = Out::default();
    if a.format == Format::Text {
        out.line(&format!(
            "{} of {} matching entries, newest first (argusctl inspect DIR SEQ shows one whole)",
            answer.hits.len(),
            answer.total
        ));
    }
    let mut stale = 0;
    for hit in &answer.hits {
        let shown = show(&reader, &scanner, hit, &words)?;
        if shown.stale {
            stale += 1;
        }
        match a.format {
            Format::Json => out.json(&serde_json::to_string(&shown)?),
            Format::Text => out.line(&text_line(&shown)),
        }
    }
    out.flush();
    if stale > 0 {
        eprint(&format!(
            "argusctl: search: warning: {stale} hit(s) do not match the log (payload hash differs): the index in {} is stale or was altered; what is shown is the log's. Rebuild it: argusctl search {} --rebuild ...",
            index.path().display(),
            a.dir.display()
        ));
    }
    index.close().context("closing the search index")?;
    Ok(0)
}

fn scanner(patterns: Option<&Path>) -> Result<Scanner> {
    let configured = match patterns {
        None => Vec::new(),
        Some(p) => {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| anyhow::anyhow!("{} is not UTF-8", p.display()))?;
            Scanner::parse_file(&text).with_context(|| format!("in {}", p.display()))?
        }
    };
    Ok(Scanner::new(&configured)?)
}

fn catch_up(
    reader: &LogReader,
    index: &mut SearchIndex,
    scanner: &Scanner,
    rebuild: bool,
) -> Result<()> {
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "search index {bar:40} {pos}/{len} entries {per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let done = index
        .catch_up(reader, scanner, rebuild, |done, total| {
            if let Some(b) = &bar {
                b.set_length(total);
                b.set_position(done);
            }
        })
        .context("indexing the log")?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let why = match done.rebuilt {
        Some(Rebuild::LogMismatch) => {
            "it does not match the log (the log was replaced or rewritten under it)"
        }
        Some(Rebuild::Patterns) => "the injection patterns changed",
        _ => "",
    };
    if !why.is_empty() {
        eprint(&format!(
            "argusctl: search: rebuilt the index from seq 0: {why}"
        ));
    }
    Ok(())
}

/// Appends a `research.injection_flagged` record for each seq in `owed`
/// (flagged in the index, recorded nowhere in the log). When the log
/// cannot be written (read-only, argusd or another writer holds it), says
/// so and writes nothing: the entries stay flagged in the index. Returns
/// how many records were appended.
fn record_flags(dir: &Path, reader: &LogReader, scanner: &Scanner, owed: &[u64]) -> Result<usize> {
    let mut entries = Vec::new();
    for &seq in owed {
        reader.for_each(seq, seq, |v| {
            if let Some(f) = scanner.scan(&search::text::payload_text(v.payload)) {
                entries.push(search::flags::record(v, &f));
            }
            ControlFlow::Break(())
        })?;
    }
    if entries.is_empty() {
        return Ok(0);
    }
    let seqs: Vec<String> = owed.iter().take(10).map(u64::to_string).collect();
    let more = if owed.len() > 10 { ", ..." } else { "" };
    let not_written = |why: String| {
        eprint(&format!(
            "argusctl: search: {} flagged entr{} (seq {}{more}) have no research.injection_flagged record, and none was written: {why}. They are flagged in the index (search --flagged lists them); run search again where the log can be written.",
            entries.len(),
            if entries.len() == 1 { "y" } else { "ies" },
            seqs.join(", ")
        ))
    };
    if crate::server::Discovery::read_live(dir).is_some() {
        not_written("argusd is serving this log and holds its writer".into());
        return Ok(0);
    }
    let log = match super::state::open_writer(dir, "search (record injection flags)") {
        Ok(log) => log,
        Err(e) => {
            not_written(crate::cli::error::chain_text(&e));
            return Ok(0);
        }
    };
    let n = entries.len();
    log.append(entries)
        .context("appending research.injection_flagged records")?;
    Ok(n)
}

/// A hit as the log has it, checked against the index's payload hash.
fn show(
    reader: &LogReader,
    scanner: &Scanner,
    hit: &search::Hit,
    words: &[String],
) -> Result<Shown> {
    let mut shown = Shown {
        seq: hit.seq,
        ts: None,
        kind: None,
        job_id: None,
        agent: None,
        actor: None,
        flagged: false,
        patterns: Vec::new(),
        snippet: String::new(),
        stale: true,
    };
    reader.for_each(hit.seq, hit.seq, |v| {
        let text = search::text::payload_text(v.payload);
        let finding = Scanner::scans(v.kind)
            .then(|| scanner.scan(&text))
            .flatten();
        shown = Shown {
            seq: v.seq,
            ts: Some(rfc3339_ns(v.ts_ns)),
            kind: Some(v.kind.to_string()),
            job_id: v.job_id.map(str::to_string),
            agent: v.agent.map(str::to_string),
            actor: Some(v.actor.to_string()),
            flagged: finding.is_some(),
            patterns: finding.map(|f| f.patterns).unwrap_or_default(),
            snippet: search::text::snippet(&text, words, SNIPPET_CHARS),
            stale: hex::encode(v.payload_hash) != hit.stored_payload_hash,
        };
        ControlFlow::Break(())
    })?;
    if shown.stale {
        eprint(&format!(
            "argusctl: search: seq {}: the index's payload hash {} is not the log's{}",
            hit.seq,
            esc(&hit.stored_payload_hash),
            if shown.kind.is_none() {
                " (the log has no such seq)"
            } else {
                ""
            }
        ));
    }
    Ok(shown)
}

fn text_line(s: &Shown) -> String {
    let opt = |v: &Option<String>| v.as_deref().map(esc).map(|c| c.to_string());
    let mut line = format!(
        "{:>8} {} {:<26}",
        s.seq,
        s.ts.as_deref().unwrap_or("-"),
        opt(&s.kind).unwrap_or_else(|| "-".into())
    );
    if let Some(j) = opt(&s.job_id) {
        line.push_str(&format!(" job={j}"));
    }
    if let Some(a) = opt(&s.agent) {
        line.push_str(&format!(" agent={a}"));
    }
    if s.stale {
        line.push_str(" STALE");
    }
    if s.flagged {
        line.push_str(&format!(" FLAGGED[{}]", esc(&s.patterns.join(","))));
    }
    line.push_str("  ");
    line.push_str(&esc(&s.snippet).to_string());
    line
}
