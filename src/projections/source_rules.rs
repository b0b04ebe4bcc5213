//! Rules about the source itself, checked as tests so they hold for the
//! next engineer too: the store dependency stays behind one file, and no
//! projection function grows past what a reader can hold.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::path::{Path, PathBuf};

/// Longest function (signature to closing brace, as rustfmt lays it out)
/// allowed without a `// long:` comment above it saying why.
const FN_LINES_MAX: usize = 120;

fn rust_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Swapping the store for another (redb) must change `store.rs` and
/// nothing else: no other file in the crate may name the database, not
/// even in a comment, or the next engineer will follow it there.
#[test]
fn the_store_database_is_named_only_in_store_rs() {
    // Assembled, so that this file does not name it either.
    let needle = ["sl", "ed"].concat();
    let seam = src().join("projections").join("store.rs");
    let files = rust_files(&src());
    assert!(files.contains(&seam), "walk missed {}", seam.display());
    let seam_text = std::fs::read_to_string(&seam).unwrap();
    assert!(seam_text.contains(&needle), "the seam no longer names it");
    let mut offenders = Vec::new();
    for f in files.iter().filter(|f| **f != seam) {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.to_ascii_lowercase().contains(&needle) {
                offenders.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "{needle} is named outside {} ({} files walked):\n{}",
        seam.display(),
        files.len(),
        offenders.join("\n")
    );
}

/// Functions longer than `FN_LINES_MAX` in `text`, as (first line, length),
/// except those under a `// long:` comment. Relies on rustfmt's layout: a
/// body closes with `}` at the indentation its `fn` line opened at.
fn long_functions(text: &str) -> Vec<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        let is_fn = [
            "fn ",
            "pub fn ",
            "pub(crate) fn ",
            "pub(super) fn ",
            "const fn ",
        ]
        .iter()
        .any(|p| t.starts_with(p));
        if !is_fn || t.ends_with(';') {
            continue;
        }
        let close = " ".repeat(indent(l)) + "}";
        let Some(end) = (i + 1..lines.len()).find(|&j| lines[j] == close) else {
            continue;
        };
        let excused = lines[..i]
            .iter()
            .rev()
            .take_while(|p| p.trim_start().starts_with("//") || p.trim_start().starts_with("#["))
            .any(|p| p.trim_start().starts_with("// long:"));
        if end - i + 1 > FN_LINES_MAX && !excused {
            out.push((i + 1, end - i + 1));
        }
    }
    out
}

#[test]
fn no_projection_function_is_over_120_lines_without_a_reason() {
    let mut offenders = Vec::new();
    for f in rust_files(&src().join("projections")) {
        let text = std::fs::read_to_string(&f).unwrap();
        for (line, len) in long_functions(&text) {
            offenders.push(format!("{}:{line}: {len} lines", f.display()));
        }
    }
    assert!(
        offenders.is_empty(),
        "split these along their natural steps, or put a `// long: why` comment above:\n{}",
        offenders.join("\n")
    );
}

/// The checker itself must be able to fail.
#[test]
fn long_function_check_finds_long_bodies_and_honours_the_excuse() {
    let body = "    x();\n".repeat(FN_LINES_MAX);
    let long = format!("fn a() {{\n{body}}}\n");
    assert_eq!(long_functions(&long), vec![(1, FN_LINES_MAX + 2)]);
    let nested = format!("impl A {{\n    pub fn b(&self) {{\n    {body}    }}\n}}\n");
    assert_eq!(long_functions(&nested), vec![(2, FN_LINES_MAX + 2)]);
    let excused = format!("// long: one match over every kind\n#[inline]\n{long}");
    assert!(long_functions(&excused).is_empty());
    let short = "fn c() {\n    x();\n}\n";
    assert!(long_functions(short).is_empty());
}
