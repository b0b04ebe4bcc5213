//! argusd under systemd's protocol: READY=1 only once it serves, WATCHDOG=1
//! while the writer is healthy, STOPPING=1 on SIGTERM, and a clean exit 0.
//! systemd itself is not needed: the test plays its part on a datagram
//! socket named by NOTIFY_SOCKET, as systemd does.
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn recv_until(sock: &UnixDatagram, want: &str, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).to_string();
            let done = msg.lines().any(|l| l == want);
            got.push(msg);
            if done {
                break;
            }
        }
    }
    got
}

#[test]
fn ready_after_serving_watchdog_pings_and_stopping_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let notify = tmp.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify).unwrap();
    // systemd names the watched pid; `exec` keeps the shell's pid for argusd.
    let mut child = Command::new("sh")
        .args([
            "-c",
            "WATCHDOG_PID=$$ exec \"$0\" --dir \"$1\" --init --listen 127.0.0.1:0",
        ])
        .arg(env!("CARGO_BIN_EXE_argusd"))
        .arg(&dir)
        .env("NOTIFY_SOCKET", &notify)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let msgs = recv_until(&sock, "READY=1", Duration::from_secs(20));
    assert!(
        msgs.iter().any(|m| m.lines().any(|l| l == "READY=1")),
        "no READY=1: {msgs:?}"
    );
    // READY=1 means it serves: argusd.json names this pid and the URL answers.
    let disc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("argusd.json")).unwrap()).unwrap();
    assert_eq!(disc["pid"].as_u64(), Some(u64::from(child.id())));
    let url = disc["url"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    let mut s = std::net::TcpStream::connect(&url).unwrap();
    use std::io::{Read, Write};
    s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"status\":\"ok\""), "{resp}");
    // Watchdog at half of 400 ms: at least two pings within a second.
    let pings = recv_until(&sock, "never", Duration::from_millis(1100))
        .into_iter()
        .filter(|m| m.lines().any(|l| l == "WATCHDOG=1"))
        .count();
    assert!(pings >= 2, "{pings} watchdog pings in 1.1 s");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let msgs = recv_until(&sock, "STOPPING=1", Duration::from_secs(10));
    assert!(
        msgs.iter().any(|m| m.lines().any(|l| l == "STOPPING=1")),
        "no STOPPING=1: {msgs:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "argusd did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    assert!(!dir.join("argusd.json").exists(), "argusd.json left behind");
    assert!(err.contains("stopped cleanly"), "{err}");
}
