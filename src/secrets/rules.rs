//! The default redaction rules, documented in docs/REDACTION.md. Each is a
//! shape that real credentials have and ordinary text rarely does; a false
//! positive costs a few characters of an agent's record, a miss costs a
//! leaked credential in a log that cannot be edited.

/// `(name, regex)`; the name is what `[REDACTED:<name>]` shows.
pub const DEFAULT_RULES: &[(&str, &str)] = &[
    (
        "private_key_block",
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----",
    ),
    (
        "aws_access_key_id",
        r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b",
    ),
    (
        "aws_secret_access_key",
        r"(?i)aws_?secret_?(?:access_?)?key\W{0,4}[A-Za-z0-9/+=]{40}",
    ),
    (
        "github_token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{40,255})\b",
    ),
    ("slack_token", r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    (
        "openai_anthropic_key",
        r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}",
    ),
    (
        "stripe_key",
        r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}\b",
    ),
    ("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    ),
    ("bearer_token", r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{16,}=*"),
    (
        "url_credentials",
        r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:[^\s/@]+@",
    ),
];

/// Object keys whose string values are secrets whatever they look like.
pub const SECRET_KEYS: &str = r"^(?:.*[_-])?(?:password|passwd|pwd|secret|api_?key|apikey|access_?token|auth_?token|refresh_?token|private_?key|client_?secret|authorization|credentials?)$";

/// The rule name a value under a secret key is redacted as.
pub const SECRET_FIELD: &str = "secret_field";

/// Literals at least one of which every rule's match contains, compared
/// without case: a string with none of them cannot match any rule, and
/// skips the regexes (most strings agents write). A configured rule has no
/// anchor here, so configuring one turns the prefilter off.
pub const ANCHORS: &[&str] = &[
    "private key-----",
    "akia",
    "asia",
    "agpa",
    "aida",
    "aroa",
    "secret",
    "gh",
    "xox",
    "sk-",
    "sk_",
    "rk_",
    "aiza",
    "eyj",
    "bearer",
    "://",
];

/// Substrings, without case, one of which every secret-named key holds.
pub const KEY_ANCHORS: &[&str] = &[
    "pass",
    "pwd",
    "secret",
    "key",
    "token",
    "auth",
    "credential",
];
