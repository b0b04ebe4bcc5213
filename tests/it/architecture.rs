//! The module boundaries of docs/ARCHITECTURE.md ("Rules of the house"),
//! checked on the source: every `crate::<module>` a file names is an edge,
//! and an edge the rules forbid fails this test, naming the file and line.
//! Test modules (`#[cfg(test)]` to the end of the file) are not counted:
//! a test may reach wherever it needs to.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which top-level modules each one must not use. `cli` is the top of the
/// library: nothing but the binaries may depend on it.
const FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "error",
        &["projections", "cli", "time", "json", "authority"],
    ),
    (
        "authority",
        &["log", "projections", "cli", "registry", "time", "json"],
    ),
    (
        "json",
        &["log", "projections", "cli", "registry", "time", "authority"],
    ),
    ("registry", &["log", "projections", "cli", "time", "server"]),
    (
        "time",
        &["projections", "cli", "registry", "authority", "server"],
    ),
    ("log", &["projections", "cli", "server", "tokens"]),
    ("projections", &["cli", "server", "tokens"]),
    ("auditor", &["cli", "server", "tokens"]),
    ("search", &["cli", "server", "tokens"]),
    ("tokens", &["projections", "cli", "registry", "server"]),
];

/// Narrower rules: a module may use another only through these paths.
const ONLY_THROUGH: &[(&str, &str, &[&str])] = &[
    // Time keeps its anchor file through the log's storage (so the fault
    // simulator sees it), and knows nothing else of the log.
    (
        "time",
        "log",
        &["crate::log::safe_fs", "crate::log::storage"],
    ),
    // The token file is read and written with the log's file-safety rules;
    // tokens know nothing else of the log.
    ("tokens", "log", &["crate::log::safe_fs"]),
    // The daemon sits above the CLI (it runs its commands); the CLI needs
    // of it only how to find a running daemon, and the demo starts one.
    (
        "cli",
        "server",
        &[
            "crate::server::Discovery",
            "crate::server::serve",
            "crate::server::Config",
            "crate::server::config",
        ],
    ),
];

/// Names the crate root re-exports, and the module that defines them.
const ROOT_ITEMS: &[(&str, &str)] = &[
    ("Error", "error"),
    ("Result", "error"),
    ("Log", "log"),
    ("Ack", "log"),
    ("NewEntry", "log"),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file under src/ belongs to (`None` for the crate
/// root and the binaries).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_string();
    (name != "lib" && name != "bin").then_some(name)
}

/// `crate::x` references per line, outside comments and test modules.
fn references(text: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("#[cfg(test)]") {
            break;
        }
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let tail = &rest[at + "crate::".len()..];
            if let Some(group) = tail.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        out.push((i + 1, name.clone(), format!("crate::{name}")));
                    }
                }
            } else {
                let path: String = tail
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let name = path.split("::").next().unwrap_or("").to_string();
                if !name.is_empty() {
                    out.push((i + 1, name, format!("crate::{path}")));
                }
            }
            rest = &tail[1.min(tail.len())..];
        }
    }
    out
}

#[test]
fn no_module_reaches_across_a_forbidden_boundary() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let root: BTreeMap<&str, &str> = ROOT_ITEMS.iter().copied().collect();
    let mut violations = Vec::new();
    let mut edges = 0;
    for f in &files {
        let Some(from) = module_of(&src, f) else {
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        for (line, name, path) in references(&text) {
            let to = root.get(name.as_str()).copied().unwrap_or(name.as_str());
            if to == from {
                continue;
            }
            edges += 1;
            let forbidden = FORBIDDEN
                .iter()
                .any(|(m, no)| *m == from && no.contains(&to));
            let narrowed = ONLY_THROUGH.iter().any(|(m, t, ok)| {
                *m == from && *t == to && !ok.iter().any(|p| path.starts_with(p))
            });
            if forbidden || narrowed {
                violations.push(format!(
                    "{}:{line}: `{from}` uses `{path}`, which docs/ARCHITECTURE.md forbids",
                    f.strip_prefix(&src).unwrap().display()
                ));
            }
        }
    }
    assert!(
        edges > 20,
        "the scan found only {edges} edges: is it reading src/?"
    );
    assert!(
        violations.is_empty(),
        "forbidden module edges:\n  {}",
        violations.join("\n  ")
    );
}

#[test]
fn the_scanner_sees_grouped_and_plain_paths_and_skips_tests() {
    let text = "use crate::{cli::Out, log::reader};\nlet x = crate::time::wall_now_ns();\n// crate::cli::no\n#[cfg(test)]\nmod tests { use crate::cli::Format; }\n";
    let names: Vec<String> = references(text).into_iter().map(|r| r.1).collect();
    assert_eq!(names, ["cli", "log", "time"]);
}

/// Invariant 24: the writer, recovery, key rotation, compaction (erase and
/// archive) and the control-flag mirrors do their file I/O only through
/// `log::storage::Storage`, so the fault simulator (tests/it/fault_sim)
/// sees every operation they make. A direct call named here would escape
/// it. Test modules are not counted.
#[test]
fn the_write_paths_touch_files_only_through_storage() {
    const DIRECT: &[&str] = &[
        "std::fs",
        "File::",
        "FileExt",
        "safe_fs::open",
        "safe_fs::create",
        "safe_fs::read",
        "safe_fs::write",
        "dir::sync_dir",
        "{sync_dir",
        "index::read(",
        "index::write(",
        "reader::load_path",
        "reader::load_segment",
        "reader::load_compressed",
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/log");
    let mut bad = Vec::new();
    for rel in [
        "writer/mod.rs",
        "writer/invariants.rs",
        "recovery.rs",
        "rotate.rs",
        "keys.rs",
        "erase.rs",
        "archive.rs",
        "control_flags.rs",
        "lock.rs",
    ] {
        let text = std::fs::read_to_string(root.join(rel)).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or_default();
            for d in DIRECT.iter().filter(|d| line.contains(*d)) {
                bad.push(format!("src/log/{rel}:{}: {d}", n + 1));
            }
            // A bare `sync_dir(...)` is `dir::sync_dir`; `x.sync_dir(...)`
            // is the storage's.
            if line
                .match_indices("sync_dir(")
                .any(|(i, _)| !line[..i].ends_with('.'))
            {
                bad.push(format!("src/log/{rel}:{}: sync_dir", n + 1));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "file I/O outside log::storage (docs/ARCHITECTURE.md invariant 24):\n{}",
        bad.join("\n")
    );
}

/// Invariant 24, the read side: the readers (`reader`, `follow`, the
/// sparse `index`, `readahead`, the key `epochs` scan, `redactions`) and
/// `verify` read files only through `Storage` (`open_read`, `ReadFile`,
/// `SegmentMap`), so the fault simulator reads and verifies its own state
/// and a bit it flips is judged by the code that judges real disks. What
/// stays on the real file system on purpose (the writer `LOCK`, the clock
/// anchor, `init`) is none of these files. The maps themselves are
/// `mmap`'s, RealFs's backend: its `map_*` are called from `storage.rs`
/// only, so no reader can map a file behind the trait.
#[test]
fn the_read_paths_touch_files_only_through_storage() {
    const DIRECT: &[&str] = &[
        "std::fs",
        "File::",
        "FileExt",
        "memmap2",
        "mmap::map",
        "posix_fadvise",
        "symlink_metadata",
        "safe_fs::open",
        "safe_fs::read",
        "safe_fs::create",
        "safe_fs::write",
        "safe_fs::real_dir",
        "safe_fs::check_regular",
        "index::read(",
        "index::write(",
        "reader::load_path(",
        "reader::load_segment(",
        "reader::load_compressed(",
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/log");
    let mut files = vec![
        "reader.rs".to_string(),
        "follow.rs".into(),
        "index.rs".into(),
        "readahead.rs".into(),
        "epochs.rs".into(),
        "redactions.rs".into(),
    ];
    for e in std::fs::read_dir(root.join("verify")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        files.push(format!("verify/{name}"));
    }
    assert!(files.len() > 8, "verify/ has no files? {files:?}");
    let mut bad = Vec::new();
    for rel in &files {
        let text = std::fs::read_to_string(root.join(rel)).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or_default();
            for d in DIRECT.iter().filter(|d| line.contains(*d)) {
                bad.push(format!("src/log/{rel}:{}: {d}", n + 1));
            }
        }
    }
    // The maps: only RealFs (storage.rs) asks `mmap` for one.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    rust_files(&src, &mut all);
    for f in all {
        let rel = f.strip_prefix(&src).unwrap().display().to_string();
        if rel == "log/storage.rs" || rel == "log/mmap.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or_default();
            if line.contains("mmap::map") || line.contains("memmap2::Mmap") {
                bad.push(format!("src/{rel}:{}: maps a file itself", n + 1));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "file reads outside log::storage (docs/ARCHITECTURE.md invariant 24):\n{}",
        bad.join("\n")
    );
}

/// `anyhow` is for the edges that report to a person (docs/ARCHITECTURE.md
/// "Other rules"); the library below them keeps typed errors a caller can
/// act on.
#[test]
fn anyhow_stays_in_the_command_line_the_daemon_and_the_binaries() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut bad = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        if ["cli", "server", "bin"].contains(&top.as_ref()) {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or_default();
            if line.contains("anyhow") {
                bad.push(format!("src/{}:{}", rel.display(), n + 1));
            }
        }
    }
    assert!(files.len() > 50, "too few files seen: {}", files.len());
    assert!(bad.is_empty(), "anyhow outside cli/server/bin: {bad:?}");
}
