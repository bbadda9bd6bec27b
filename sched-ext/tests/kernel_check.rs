// SPDX-License-Identifier: GPL-2.0-only
//! scripts/lib/kernel_btf.py, the check scripts/setup runs on each candidate
//! kernel, on real BTF: small BPF objects built with clang that look like a
//! good kernel, a kernel without sched_ext, and a kernel with the pahole < 1.26
//! kfunc prototypes.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Compile C to a BPF object with BTF; returns its path.
fn btf_object(name: &str, src: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kernel-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = dir.join(format!("{name}.c"));
    let o = dir.join(format!("{name}.o"));
    std::fs::write(&c, src).unwrap();
    let clang = std::env::var("BPF_CLANG").unwrap_or_else(|_| "clang-19".into());
    let st = Command::new(&clang)
        .args(["-target", "bpf", "-g", "-O2", "-c"])
        .arg(&c)
        .arg("-o")
        .arg(&o)
        .status()
        .unwrap_or_else(|e| panic!("running {clang} (install it with scripts/setup): {e}"));
    assert!(st.success(), "{clang} failed on {name}");
    o
}

fn check(obj: &Path) -> (bool, String) {
    let out = Command::new("python3")
        .arg(repo().join("scripts/lib/kernel_btf.py"))
        .arg("check")
        .arg(obj)
        .output()
        .expect("running python3");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

const OPS: &str = "struct sched_ext_ops { void (*dump)(void); int flags; };\n\
                   struct sched_ext_ops ops_instance __attribute__((used));\n";

#[test]
fn accepts_sane_prototypes() {
    let o = btf_object(
        "good",
        &format!("{OPS}int scx_bpf_create_dsq(unsigned long long dsq_id, int node) {{ return node; }}\n"),
    );
    let (ok, text) = check(&o);
    assert!(ok, "{text}");
    assert!(text.contains("sched_ext present"), "{text}");
}

#[test]
fn rejects_kernel_without_sched_ext() {
    let o = btf_object("nosched", "int scx_bpf_create_dsq(unsigned long long id, int node) { return node; }\n");
    let (ok, text) = check(&o);
    assert!(!ok, "{text}");
    assert!(text.contains("no struct sched_ext_ops"), "{text}");
}

#[test]
fn rejects_implicit_aux_argument() {
    let o = btf_object(
        "trap",
        &format!(
            "{OPS}struct bpf_prog_aux {{ int id; }};\n\
             int scx_bpf_create_dsq(unsigned long long dsq_id, int node, struct bpf_prog_aux *aux) \
             {{ return node + (aux ? aux->id : 0); }}\n"
        ),
    );
    let (ok, text) = check(&o);
    assert!(!ok, "{text}");
    assert!(text.contains("pahole < 1.26") && text.contains("scx_bpf_create_dsq"), "{text}");
}
