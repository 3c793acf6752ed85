//! Log output: colour only on a terminal. The same pre-flight retry is logged three ways: to a
//! pipe (plain text), as JSON, and on a pseudo-terminal (`script`), where colour must appear —
//! which shows the check for escape bytes can fail.

use crate::harness::*;

const ESC: char = '\u{1b}';

/// A manifest whose source refuses connections, retried for five seconds at `info` (one second was too short on a loaded machine to log a retry).
fn unreachable_manifest(dir: &tempfile::TempDir) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let yaml = format!(
        "apiVersion: reindex.dev/v1alpha1\nkind: RemoteReindex\nmetadata: {{name: t}}\nspec:\n  source:\n    remote: {{host: \"http://127.0.0.1:{port}\"}}\n    index: src\n  dest:\n    remote: {{host: \"http://127.0.0.1:{port}\"}}\n    index: dst\n  preflightTimeout: 5s\n"
    );
    manifest(dir, "r.yaml", &yaml).to_str().unwrap().to_string()
}

async fn run_logged(args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::from(cli())
        .args(args)
        .env("RUST_LOG", "info")
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[tokio::test]
async fn logs_to_a_pipe_have_no_colour_and_json_stays_json() {
    let dir = tempfile::tempdir().unwrap();
    let f = unreachable_manifest(&dir);

    let (code, err) = run_logged(&["run", "-f", &f]).await;
    assert_eq!(code, 3, "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("pre-flight check failed; retrying"))
        .unwrap_or_else(|| panic!("no retry log line: {err}"));
    assert!(line.contains("INFO"), "{line}");
    assert!(!err.contains(ESC), "escape bytes in piped logs: {err:?}");
    assert!(err.contains("Pending [Unreachable]: "), "{err}");

    let (code, err) = run_logged(&["--log-format", "json", "run", "-f", &f]).await;
    assert_eq!(code, 3, "{err}");
    assert!(!err.contains(ESC), "escape bytes in JSON logs: {err:?}");
    let logs: Vec<serde_json::Value> = err
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        logs.iter().any(|v| v["level"] == "INFO"
            && v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("pre-flight check failed; retrying"))),
        "{err}"
    );
}

#[tokio::test]
async fn logs_on_a_terminal_are_coloured() {
    let dir = tempfile::tempdir().unwrap();
    let f = unreachable_manifest(&dir);
    // `script` (util-linux) runs the command on a pseudo-terminal and copies what it wrote.
    let cmd = format!("{} run -f {f}", env!("CARGO_BIN_EXE_remote-reindex"));
    let out = tokio::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("RUST_LOG", "info")
        .output()
        .await
        .expect("script (util-linux) runs");
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(
        tty.contains("pre-flight check failed; retrying"),
        "no retry log line on the terminal: {tty}"
    );
    assert!(
        tty.contains(&format!("{ESC}[")),
        "no colour on a terminal: {tty:?}"
    );
}
