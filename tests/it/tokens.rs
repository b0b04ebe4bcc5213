//! API tokens (issue 10, §3): `argusctl token add|list|revoke` against real
//! logs and real token files. The token is shown once and stored nowhere;
//! the file is private and strict; every change is an operator's entry,
//! written before the file.
use crate::common::*;
use argus::tokens::{Role, TokenStore};
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn run(args: &[&str]) -> Run {
    argus(args.iter().map(OsStr::new).collect::<Vec<_>>())
}

fn tokens_file(dir: &Path) -> PathBuf {
    dir.join("tokens.json")
}

/// `token add ... -o json`, parsed.
fn add(dir: &Path, name: &str, role: &str) -> Value {
    let r = run(&[
        "token",
        "add",
        dir.to_str().unwrap(),
        "--name",
        name,
        "--role",
        role,
        "-o",
        "json",
    ]);
    r.assert_ok();
    r.json()
}

/// How the token file stores a token: BLAKE3 derive-key, context
/// "argus token v1", over the token's text (computed here independently).
fn expected_hash(token: &str) -> String {
    hex::encode(blake3::derive_key("argus token v1", token.as_bytes()))
}

/// Every byte of every file under `dir`.
fn all_bytes(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            all_bytes(&path, out);
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn add_prints_the_token_once_and_only_its_hash_is_stored() {
    let (tmp, key) = init_log(None);
    let dir = tmp.path();
    let out = add(dir, "researcher", "agent");
    let token = out["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("argus_") && token.len() >= 40, "{out}");
    assert_eq!(out["name"], "researcher");
    assert_eq!(out["role"], "agent");
    let hash = expected_hash(&token);
    assert_eq!(out["id"], &hash[..12]);

    // The text form prints the token on a line of its own, with the warning.
    let r = run(&[
        "token",
        "add",
        dir.to_str().unwrap(),
        "--name",
        "alice",
        "--role",
        "operator",
    ]);
    r.assert_ok();
    let text_token = r
        .stdout
        .lines()
        .find(|l| l.starts_with("argus_"))
        .unwrap_or_else(|| panic!("no token line{}", r.ctx()))
        .to_string();
    assert!(r.stdout.contains("not shown again"), "{}", r.ctx());

    let file = tokens_file(dir);
    assert_eq!(mode_of(&file), 0o600);
    let stored: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(stored["version"], 1);
    let rows = stored["tokens"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{stored}");
    let row = rows.iter().find(|t| t["name"] == "researcher").unwrap();
    assert_eq!(row["hash"], hash.as_str());
    assert_eq!(row["role"], "agent");

    // No byte of the log directory holds either token, whole or without
    // its prefix: not the file, not a segment, not a projection.
    let mut files = Vec::new();
    all_bytes(dir, &mut files);
    assert!(files.len() > 3, "walked {} files", files.len());
    for t in [&token, &text_token] {
        for (path, bytes) in &files {
            assert!(
                !contains(bytes, &t["argus_".len()..]),
                "{} holds the token",
                path.display()
            );
        }
    }

    // The log records the hash, by the operator; the daemon's store knows
    // the holder by the token alone.
    let added: Vec<Value> = cat_json(dir, &[])
        .into_iter()
        .filter(|e| e["kind"] == "token.added")
        .collect();
    assert_eq!(added.len(), 2);
    assert_eq!(added[0]["payload"]["hash"], hash.as_str());
    assert_eq!(added[0]["actor"], actor_of("operator").as_str());
    let store = TokenStore::load(&file).unwrap();
    let holder = store.authenticate(&token).unwrap();
    assert_eq!(holder.role, Role::Agent);
    assert_eq!(holder.actor().to_string(), "agent:token:researcher");
    assert_eq!(
        store.authenticate(&text_token).unwrap().actor().to_string(),
        "operator:token:alice"
    );
    assert!(store.authenticate(&hash).is_none());
    verify(dir, &key, &[]).assert_ok();
}

#[test]
fn list_shows_names_roles_and_ids_never_hashes_or_tokens() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let a = add(dir, "researcher", "agent");
    let b = add(dir, "watcher", "auditor");
    let d = dir.to_str().unwrap();
    let json_run = run(&["token", "list", d, "-o", "json"]);
    json_run.assert_ok();
    let rows = json_run.json_lines();
    assert_eq!(rows.len(), 2, "{}", json_run.ctx());
    for r in &rows {
        let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["created", "id", "name", "role"], "{r}");
    }
    assert_eq!(rows[0]["name"], "researcher");
    assert_eq!(rows[1]["role"], "auditor");
    let text_run = run(&["token", "list", d]);
    text_run.assert_ok();
    assert!(text_run.stdout.contains("watcher"), "{}", text_run.ctx());
    for t in [&a, &b] {
        let token = t["token"].as_str().unwrap();
        let hash = expected_hash(token);
        for out in [&json_run.stdout, &text_run.stdout] {
            assert!(
                !out.contains(&token["argus_".len()..]),
                "token listed: {out}"
            );
            assert!(!out.contains(&hash[12..]), "hash listed: {out}");
        }
    }
}

#[test]
fn a_token_file_readable_by_others_is_refused_naming_its_mode() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    add(dir, "researcher", "agent");
    let file = tokens_file(dir);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = run(&["token", "list", d]);
    r.assert_code(1);
    assert!(
        r.stderr.contains("0644")
            && r.stderr.contains("chmod 600")
            && r.stderr.contains(file.to_str().unwrap()),
        "the refusal names the file, its mode and the fix{}",
        r.ctx()
    );
    // add and revoke refuse it too, and write nothing.
    let before = stats(dir);
    run(&["token", "add", d, "--name", "x", "--role", "agent"]).assert_code(1);
    run(&["token", "revoke", d, "researcher"]).assert_code(1);
    assert_eq!(stats(dir), before);

    // A link in the file's place is refused, not followed.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let real = dir.join("elsewhere.json");
    std::fs::rename(&file, &real).unwrap();
    std::os::unix::fs::symlink(&real, &file).unwrap();
    let r = run(&["token", "list", d]);
    r.assert_code(1);
    assert!(r.stderr.contains("symbolic link"), "{}", r.ctx());
}

#[test]
fn revoke_records_then_removes_and_the_token_stops_working() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    let a = add(dir, "researcher", "agent");
    let token = a["token"].as_str().unwrap();
    add(dir, "alice", "operator");
    let r = run(&[
        "token",
        "revoke",
        d,
        "researcher",
        "--reason",
        "laptop lost",
        "-o",
        "json",
    ]);
    r.assert_ok();
    assert_eq!(r.json()["id"], a["id"]);

    let entries = cat_json(dir, &[]);
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["token.added", "token.added", "token.revoked"]);
    let revoked = &entries[2];
    assert_eq!(
        revoked["payload"],
        json!({"name": "researcher", "id": a["id"], "reason": "laptop lost"})
    );
    for e in &entries {
        assert!(e["actor"].as_str().unwrap().starts_with("operator:"), "{e}");
    }
    let store = TokenStore::load(&tokens_file(dir)).unwrap();
    assert!(store.authenticate(token).is_none());
    assert!(store.get("researcher").is_none());
    assert!(store.get("alice").is_some());

    // An unknown name is refused and writes nothing.
    let before = stats(dir);
    let r = run(&["token", "revoke", d, "researcher"]);
    r.assert_code(1);
    assert!(r.stderr.contains("researcher"), "{}", r.ctx());
    assert_eq!(stats(dir), before);
}

#[test]
fn a_duplicate_name_is_refused_and_writes_nothing() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    add(dir, "alice", "operator");
    let before = stats(dir);
    let file_before = std::fs::read(tokens_file(dir)).unwrap();
    let r = run(&[
        "token",
        "add",
        dir.to_str().unwrap(),
        "--name",
        "alice",
        "--role",
        "agent",
    ]);
    r.assert_code(1);
    assert!(r.stderr.contains("already named"), "{}", r.ctx());
    assert!(!r.stdout.contains("argus_"), "no token printed{}", r.ctx());
    assert_eq!(stats(dir), before, "the log is unchanged");
    assert_eq!(std::fs::read(tokens_file(dir)).unwrap(), file_before);
}

#[test]
fn a_bad_role_or_name_is_a_usage_error_and_writes_nothing() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    let before = stats(dir);
    for (name, role) in [
        ("bot", "root"),
        ("bot", "argus"),
        ("a:b", "agent"),
        ("", "agent"),
        ("x\u{1b}[2J", "agent"),
    ] {
        let r = run(&["token", "add", d, "--name", name, "--role", role]);
        r.assert_code(2);
        assert!(!r.stderr.contains('\u{1b}'), "escaped{}", r.ctx());
    }
    assert_eq!(stats(dir), before);
    assert!(!tokens_file(dir).exists());
}

#[test]
fn tokens_file_option_keeps_the_list_elsewhere() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    let other = tempfile::tempdir().unwrap();
    let file = other.path().join("argusd-tokens.json");
    let f = file.to_str().unwrap();
    let r = run(&[
        "token", "add", d, "--name", "ci", "--role", "agent", "--tokens", f, "-o", "json",
    ]);
    r.assert_ok();
    assert_eq!(mode_of(&file), 0o600);
    assert!(!tokens_file(dir).exists());
    let listed = run(&["token", "list", d, "--tokens", f, "-o", "json"]);
    listed.assert_ok();
    assert_eq!(listed.json_lines()[0]["name"], "ci");
    run(&["token", "revoke", d, "ci", "--tokens", f]).assert_ok();
    assert!(TokenStore::load(&file).unwrap().is_empty());
}

#[test]
fn token_entries_come_only_from_the_token_commands() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let forged = json!({"kind": "token.added", "payload": {"name": "me", "role": "operator",
        "id": "0123456789ab"}});
    let r = argus_stdin(
        [OsStr::new("append"), p(dir)],
        &to_lines(std::slice::from_ref(&forged)),
    );
    r.assert_code(2);
    assert!(r.stderr.contains("argusctl token add"), "{}", r.ctx());
    let r = argus_stdin(
        [OsStr::new("config"), OsStr::new("apply"), p(dir)],
        &to_lines(&[forged]),
    );
    r.assert_code(2);
    assert!(r.stderr.contains("argusctl token add"), "{}", r.ctx());
    assert_eq!(stats(dir)["entries"], 0);
}
