// SPDX-License-Identifier: GPL-2.0-only
//! A host harness for a policy's pure arithmetic header (bpf/scheduler/policy/<name>.h, the
//! very file the BPF program includes): tests/c/<name>_harness.c is compiled
//! with clang once per test process and answers one query per line.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The harness binary for `name` (e.g. "ule_arith"), built once per test process.
fn harness_bin(name: &'static str) -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bin = dir.join(format!("{name}_harness"));
        let clang = std::env::var("BPF_CLANG").unwrap_or_else(|_| "clang-19".into());
        let out = Command::new(&clang)
            .args(["-O2", "-Wall", "-Werror", "-I"])
            .arg(repo().join("bpf/scheduler/policy"))
            .arg(repo().join(format!("sched-ext/tests/c/{name}_harness.c")))
            .arg("-o")
            .arg(&bin)
            .output()
            .unwrap_or_else(|e| panic!("running {clang} (install it with scripts/setup): {e}"));
        assert!(
            out.status.success(),
            "{clang} failed on the {name} harness:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        bin
    })
}

pub struct Harness {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Harness {
    /// One test binary uses one harness: `name` is fixed by the first call.
    pub fn new(name: &'static str) -> Self {
        let mut child = Command::new(harness_bin(name))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the {name} harness: {e}"));
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        Harness { child, input, output }
    }

    /// One query; the answer's numbers.
    pub fn q(&mut self, query: &str) -> Vec<u64> {
        writeln!(self.input, "{query}").unwrap();
        self.input.flush().unwrap();
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        line.split_whitespace()
            .map(|w| w.parse().unwrap_or_else(|_| panic!("query {query:?}: answer {line:?}")))
            .collect()
    }

    #[allow(dead_code)] // not every harness answers single numbers
    pub fn one(&mut self, query: &str) -> u64 {
        let v = self.q(query);
        assert_eq!(v.len(), 1, "query {query:?}");
        v[0]
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
