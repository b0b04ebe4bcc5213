//! Unix-socket peers (issue 10 §3): the kernel's word on a peer's uid
//! (SO_PEERCRED) makes it the principal the config maps it to, in that role;
//! an unmapped uid of another user needs a token. The client runs as another
//! user (`nobody`, through setpriv), so this needs root; it says so and
//! passes vacuously otherwise.
use super::harness::Daemon;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

/// The system's Python: a user's (pyenv under /root) is not reachable by
/// another user.
const PYTHON: &str = "/usr/bin/python3";

const CLIENT: &str = r#"
import http.client, json, socket, sys
class C(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path_ = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path_)
c = C(sys.argv[1])
c.request("POST", sys.argv[2], body=sys.argv[3], headers={"Content-Type": "application/json"})
r = c.getresponse()
print(json.dumps({"status": r.status, "body": r.read().decode()}))
"#;

fn as_uid(uid: u32, sock: &str, path: &str, body: &str) -> serde_json::Value {
    let out = Command::new("setpriv")
        .args([
            format!("--reuid={uid}"),
            format!("--regid={uid}"),
            "--clear-groups".into(),
        ])
        .args([PYTHON, "-c", CLIENT, sock, path, body])
        .output()
        .expect("setpriv python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("client output")
}

#[test]
fn a_mapped_peer_is_its_principal_in_its_role_and_others_need_a_token() {
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let tools = Command::new("setpriv").arg("--version").output().is_ok()
        && std::path::Path::new(PYTHON).is_file();
    if !root || !tools {
        eprintln!("skipped: needs root, setpriv and {PYTHON} to connect as another uid");
        return;
    }
    // A socket directory other users may pass through.
    let sock_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(sock_dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let sock = sock_dir.path().join("argusd.sock");
    let sock_s = sock.to_str().unwrap().to_string();
    let config = serde_json::json!({
        "socket_mode": 0o666,
        "peers": {"65534": {"name": "nightly", "role": "agent"}}
    });
    let d = Daemon::with(Some(config), &["--socket", &sock_s]);
    let entry =
        r#"{"kind":"job.received","job_id":"j-peer","payload":{"job_type":"x","title":"t"}}"#;
    let r = as_uid(65534, &sock_s, "/v1/entries", entry);
    assert_eq!(r["status"], 200, "{r}");
    // Its decision is refused: a peer mapped as an agent is an agent.
    let r = as_uid(65534, &sock_s, "/v1/approvals/sweep", "{}");
    assert_eq!(r["status"], 403, "{r}");
    // Another user, not in the config: 401.
    let r = as_uid(65533, &sock_s, "/v1/entries", entry);
    assert_eq!(r["status"], 401, "{r}");
    assert!(r["body"].as_str().unwrap().contains("uid 65533"), "{r}");
    let log = d.cat();
    let e = log
        .iter()
        .find(|e| e["job_id"] == "j-peer")
        .expect("the peer's entry");
    assert_eq!(e["actor"], "agent:peer:uid:65534:nightly");
    assert_eq!(
        e["agent"], "nightly",
        "an agent peer writes under its own name"
    );
    assert_eq!(log.iter().filter(|e| e["job_id"] == "j-peer").count(), 1);
}
