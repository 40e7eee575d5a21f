//! What the browser tests share: Debian's Chromium, and a Playwright
//! script under `tests/clients/js` run by node, which asks the harness on
//! its standard output ("ASK ..." lines) for what a browser cannot do and
//! reads the answer, one line, on its standard input. Every other line it
//! prints is kept, to be shown when it fails.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// The browser, where .ci/run installs it (or `CHROMIUM`).
pub fn chromium() -> String {
    let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&path).exists(),
        "no browser at {path}: install Debian's chromium (apt-get install chromium), as .ci/run does, or set CHROMIUM"
    );
    path
}

pub fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/js")
}

/// Where a test's screenshots go: `env` when set (to refresh docs/), else
/// beside the test's data.
pub fn shots_dir(env: &str, fallback: PathBuf) -> PathBuf {
    let dir = std::env::var(env).map(PathBuf::from).unwrap_or(fallback);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub struct Script {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    pub said: Vec<String>,
    started: Instant,
}

/// How long a script may stay silent before the test gives up on it.
const SILENCE: Duration = Duration::from_secs(600);

impl Script {
    /// Runs `node <file>` in tests/clients/js with `env` set.
    pub fn start(file: &str, env: &[(&str, String)]) -> Script {
        let mut command = tokio::process::Command::new("node");
        command
            .arg(file)
            .current_dir(js_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .expect("node runs (tests/clients/js has its packages: scripts/test installs them)");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Script {
            child,
            stdin,
            lines,
            said: Vec::new(),
            started: Instant::now(),
        }
    }

    /// The script's next question (without "ASK "), or None once it has
    /// ended (or fallen silent for too long).
    pub async fn next_ask(&mut self) -> Option<String> {
        while let Ok(Ok(Some(line))) = tokio::time::timeout(SILENCE, self.lines.next_line()).await {
            match line.strip_prefix("ASK ") {
                Some(ask) => return Some(ask.to_string()),
                None => self.said.push(line),
            }
        }
        None
    }

    pub async fn answer(&mut self, answer: &str) {
        assert!(!answer.contains('\n'), "an answer is one line");
        self.stdin
            .write_all(format!("{answer}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Waits for the script to end and checks that it succeeded, having
    /// printed DONE last.
    pub async fn finish(mut self, what: &str) -> Vec<String> {
        if let Some(ask) = self.next_ask().await {
            panic!("{what}: the script asked {ask:?} after the harness stopped answering");
        }
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the script ends")
            .unwrap();
        eprintln!(
            "{what} took {:.1} s:\n{}",
            self.started.elapsed().as_secs_f64(),
            self.said.join("\n")
        );
        assert!(
            status.success(),
            "{what}: the browser script failed:\n{}",
            self.said.join("\n")
        );
        assert_eq!(
            self.said.last().map(String::as_str),
            Some("DONE"),
            "{:?}",
            self.said
        );
        self.said
    }
}
