//! What of a command line may be stored: arguments that look like secrets
//! are replaced by `[REDACTED]` before `tool.call_started` records them.
//!
//! Three rules, all textual (no rule can know what a program does with an
//! argument, so they err towards hiding):
//! - an option or `NAME=value` whose name says it holds a secret
//!   (`--password=x`, `token=x`, `GITHUB_TOKEN=x`) keeps its name and loses
//!   its value; such an option without `=` (`--token x`) hides the next
//!   argument whole;
//! - known credential shapes anywhere in an argument: `sk-…`, `ghp_…` (and
//!   the other GitHub prefixes), `AKIA…`/`ASIA…`, `xox?-…`, `glpat-…`,
//!   `Bearer …`, `Authorization: …`, the password of `scheme://user:pw@`;
//! - a run of 32 or more base64/hex characters that looks random (hex, or
//!   upper, lower and digits with high per-character entropy).
//!
//! The real argument vector is still pinned by `args_blake3`, so someone who
//! holds it can prove it was this call without the log holding the secret.

pub const REDACTED: &str = "[REDACTED]";

/// Longest argument text kept (bytes); the rest is counted, not stored.
const ARG_KEEP: usize = 4096;
/// Arguments kept; the rest are counted.
const ARGS_KEEP: usize = 1024;

/// Words that make an option or variable name a secret's.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "passphrase",
    "token",
    "secret",
    "credential",
    "credentials",
    "apikey",
    "cookie",
    "authorization",
];

/// Word pairs that do the same (`--api-key`, `AWS_SECRET_ACCESS_KEY` is
/// caught by `secret` already).
const SECRET_PAIRS: &[(&str, &str)] = &[
    ("api", "key"),
    ("access", "key"),
    ("private", "key"),
    ("auth", "key"),
    ("client", "secret"),
];

/// A last word that makes the value a reference to the secret, not the
/// secret itself (`--password-file PATH`).
const REFERENCE_WORDS: &[&str] = &["file", "path", "dir", "env", "fd", "cmd", "command"];

/// Prefixes of credentials, each with the least number of characters that
/// must follow for a run to count as one.
const PREFIXES: &[(&str, usize)] = &[
    ("sk-", 8),
    ("ghp_", 16),
    ("gho_", 16),
    ("ghu_", 16),
    ("ghs_", 16),
    ("ghr_", 16),
    ("github_pat_", 16),
    ("glpat-", 16),
    ("xoxb-", 10),
    ("xoxa-", 10),
    ("xoxp-", 10),
    ("xoxr-", 10),
    ("xoxs-", 10),
    ("AKIA", 16),
    ("ASIA", 16),
];

/// The arguments as stored, and how many redactions were made.
pub struct Sanitized {
    pub args: Vec<String>,
    pub redactions: usize,
    /// Arguments not stored at all (past `ARGS_KEEP`).
    pub args_dropped: usize,
}

/// Sanitizes `args` (the command's arguments, without the program).
pub fn sanitize<S: AsRef<str>>(args: &[S]) -> Sanitized {
    let mut out = Vec::with_capacity(args.len().min(ARGS_KEEP));
    let mut redactions = 0;
    let mut hide_next = false;
    for a in args.iter().take(ARGS_KEEP) {
        let a = a.as_ref();
        if hide_next {
            hide_next = false;
            out.push(REDACTED.to_string());
            redactions += 1;
            continue;
        }
        let (text, n, next) = one(a);
        hide_next = next;
        redactions += n;
        out.push(cap(text));
    }
    Sanitized {
        args: out,
        redactions,
        args_dropped: args.len().saturating_sub(ARGS_KEEP),
    }
}

/// One argument: its stored text, redactions made, and whether the next
/// argument is this option's secret value.
fn one(a: &str) -> (String, usize, bool) {
    let dashed = a.starts_with('-') && a.len() > 1;
    match a.split_once('=') {
        Some((name, value)) if (dashed || is_identifier(name)) && is_secret_name(name) => {
            let n = usize::from(!value.is_empty());
            (
                format!("{name}={}", if n > 0 { REDACTED } else { "" }),
                n,
                false,
            )
        }
        Some((name, value)) if dashed => {
            let (v, n) = scrub(value);
            (format!("{name}={v}"), n, false)
        }
        None if dashed && is_secret_name(a) => (a.to_string(), 0, true),
        _ => {
            let (v, n) = scrub(a);
            (v, n, false)
        }
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `--api-key`, `GITHUB_TOKEN`, `db.password`: a name whose words say secret.
fn is_secret_name(name: &str) -> bool {
    let lower = name.trim_start_matches('-').to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    if words
        .last()
        .is_some_and(|w| REFERENCE_WORDS.contains(w) && words.len() > 1)
    {
        return false;
    }
    words.iter().any(|w| SECRET_WORDS.contains(w))
        || words
            .windows(2)
            .any(|p| SECRET_PAIRS.iter().any(|(a, b)| p[0] == *a && p[1] == *b))
}

/// Credential shapes anywhere in `s`, replaced; returns the text and the
/// number of replacements.
pub fn scrub(s: &str) -> (String, usize) {
    let mut n = 0;
    let s = after_marker(s, "authorization:", &mut n);
    let s = bearer(&s, &mut n);
    let s = url_password(&s, &mut n);
    let s = runs(&s, &mut n);
    (s, n)
}

/// Everything after `marker` (case-insensitive) up to the end of the line.
fn after_marker(s: &str, marker: &str, n: &mut usize) -> String {
    let lower = s.to_ascii_lowercase();
    let Some(at) = lower.find(marker) else {
        return s.to_string();
    };
    let start = at + marker.len();
    let rest = &s[start..];
    let end = rest.find('\n').map_or(s.len(), |e| start + e);
    if s[start..end].trim().is_empty() {
        return s.to_string();
    }
    *n += 1;
    format!("{} {REDACTED}{}", &s[..start], &s[end..])
}

/// `Bearer TOKEN` → `Bearer [REDACTED]`.
fn bearer(s: &str, n: &mut usize) -> String {
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(off) = lower[i..].find("bearer") {
        let at = i + off;
        let boundary = lower[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        let after = at + "bearer".len();
        let ws = s[after..]
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(s.len() - after);
        if !boundary || ws == 0 || after + ws >= s.len() {
            out.push_str(&s[i..after]);
            i = after;
            continue;
        }
        let tok_start = after + ws;
        let tok_end = s[tok_start..]
            .find(char::is_whitespace)
            .map_or(s.len(), |e| tok_start + e);
        out.push_str(&s[i..tok_start]);
        if &s[tok_start..tok_end] == REDACTED {
            out.push_str(REDACTED);
        } else {
            out.push_str(REDACTED);
            *n += 1;
        }
        i = tok_end;
    }
    out.push_str(&s[i..]);
    out
}

/// `https://user:pw@host` → `https://user:[REDACTED]@host`.
fn url_password(s: &str, n: &mut usize) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(off) = s[i..].find("://") {
        let start = i + off + 3;
        let auth_end = s[start..]
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .map_or(s.len(), |e| start + e);
        let userinfo_end = s[start..auth_end].rfind('@').map(|e| start + e);
        match userinfo_end.and_then(|e| s[start..e].find(':').map(|c| (start + c, e))) {
            Some((colon, at)) if at > colon + 1 => {
                out.push_str(&s[i..=colon]);
                out.push_str(REDACTED);
                *n += 1;
                i = at;
            }
            _ => {
                out.push_str(&s[i..start]);
                i = start;
            }
        }
    }
    out.push_str(&s[i..]);
    out
}

fn run_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-')
}

/// Maximal runs of base64/hex-like characters, judged whole.
fn runs(s: &str, n: &mut usize) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run_start: Option<usize> = None;
    let flush = |out: &mut String, run: &str, n: &mut usize| {
        if looks_secret(run) {
            out.push_str(REDACTED);
            *n += 1;
        } else {
            out.push_str(run);
        }
    };
    for (i, c) in s.char_indices() {
        match (run_char(c), run_start) {
            (true, None) => run_start = Some(i),
            (true, Some(_)) => {}
            (false, Some(st)) => {
                flush(&mut out, &s[st..i], n);
                run_start = None;
                out.push(c);
            }
            (false, None) => out.push(c),
        }
    }
    if let Some(st) = run_start {
        flush(&mut out, &s[st..], n);
    }
    out
}

fn looks_secret(run: &str) -> bool {
    // A run may begin with option dashes or a path's slash; judge the rest.
    let body = run.trim_start_matches(['-', '/']);
    for (p, min) in PREFIXES {
        if let Some(rest) = body.strip_prefix(p) {
            if rest.len() >= *min {
                return true;
            }
        }
    }
    high_entropy(body)
}

/// 32+ characters that look random: hex, or a base64 alphabet mix with
/// upper case, lower case and digits and ≥ 4 bits of entropy per character.
fn high_entropy(run: &str) -> bool {
    let core = run.trim_end_matches('=');
    if core.len() < 32 {
        return false;
    }
    let entropy = shannon(core);
    if core.chars().all(|c| c.is_ascii_hexdigit()) {
        return entropy >= 3.0;
    }
    let upper = core.chars().any(|c| c.is_ascii_uppercase());
    let lower = core.chars().any(|c| c.is_ascii_lowercase());
    let digit = core.chars().any(|c| c.is_ascii_digit());
    upper && lower && digit && entropy >= 4.0
}

fn shannon(s: &str) -> f64 {
    let mut counts = [0u32; 128];
    let mut total = 0u32;
    for b in s.bytes() {
        if let Some(c) = counts.get_mut(usize::from(b)) {
            *c += 1;
            total += 1;
        }
    }
    if total == 0 {
        return 0.0;
    }
    let t = f64::from(total);
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / t;
            -p * p.log2()
        })
        .sum()
}

/// At most `ARG_KEEP` bytes, cut at a character boundary, with the cut said.
fn cap(s: String) -> String {
    if s.len() <= ARG_KEEP {
        return s;
    }
    let mut end = ARG_KEEP;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[{} more bytes]", &s[..end], s.len() - end)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn s(args: &[&str]) -> Vec<String> {
        sanitize(args).args
    }

    #[test]
    fn named_secrets_keep_their_name() {
        assert_eq!(
            s(&[
                "--password=hunter2",
                "token=abc",
                "GITHUB_TOKEN=x",
                "--api-key",
                "k1"
            ]),
            [
                "--password=[REDACTED]",
                "token=[REDACTED]",
                "GITHUB_TOKEN=[REDACTED]",
                "--api-key",
                "[REDACTED]"
            ]
        );
        assert_eq!(
            s(&["--token", "abc", "next"]),
            ["--token", "[REDACTED]", "next"]
        );
        assert_eq!(
            s(&["--password-file", "/etc/pw"]),
            ["--password-file", "/etc/pw"]
        );
        assert_eq!(
            s(&["--author=Bob", "--tokens-file=t"]),
            ["--author=Bob", "--tokens-file=t"]
        );
    }

    #[test]
    fn credential_shapes_anywhere() {
        let r = s(&[
            "--header=x sk-abc123def456ghi789 y",
            "ghp_0123456789abcdefABCDEF",
            "AKIAIOSFODNN7EXAMPLE",
            "Authorization: Bearer abc.def",
            "bearer tok",
            "https://me:pw@example.com/x",
            "sk-learn",
            "task-manager",
        ]);
        assert_eq!(r[0], "--header=x [REDACTED] y");
        assert_eq!(r[1], "[REDACTED]");
        assert_eq!(r[2], "[REDACTED]");
        assert_eq!(r[3], "Authorization: [REDACTED]");
        assert_eq!(r[4], "bearer [REDACTED]");
        assert_eq!(r[5], "https://me:[REDACTED]@example.com/x");
        assert_eq!(r[6], "sk-learn");
        assert_eq!(r[7], "task-manager");
    }

    #[test]
    fn random_looking_runs_but_not_words_or_paths() {
        let r = s(&[
            "0123456789abcdef0123456789abcdef",
            "q8ZL3nR7vK2pX9wT4yB6mH1cJ5dF0gA+",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "some-long-option-name-without-digits-at-all",
            "00000000000000000000000000000000",
        ]);
        assert_eq!(r[0], "[REDACTED]");
        assert_eq!(r[1], "[REDACTED]");
        assert_eq!(r[2], "/usr/lib/x86_64-linux-gnu/libc.so.6");
        assert_eq!(r[3], "some-long-option-name-without-digits-at-all");
        assert_eq!(r[4], "00000000000000000000000000000000");
    }

    #[test]
    fn counts_and_caps() {
        let z = sanitize(&["--token=a", "b"]);
        assert_eq!(z.redactions, 1);
        let long = "x ".repeat(5000);
        let c = sanitize(&[long.as_str()]);
        assert!(c.args[0].len() < 4200 && c.args[0].ends_with("more bytes]"));
    }
}
