#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Inspect a kernel image for what scx_battle needs.

  kernel_btf.py extract BZIMAGE OUT_VMLINUX   # unpack the compressed payload of a bzImage
  kernel_btf.py check VMLINUX                 # validate its BTF for sched_ext; exit 0 if usable

`check` fails (exit 1, reason on stderr) when:
  - the BTF has no `struct sched_ext_ops` (CONFIG_SCHED_CLASS_EXT off), or
  - a KF_IMPLICIT_ARGS kfunc such as scx_bpf_create_dsq still shows the hidden
    `struct bpf_prog_aux *` argument in its public prototype. Kernels built with
    a pahole older than 1.26 have that; every sched_ext scheduler then fails to
    load with "func_proto incompatible with vmlinux".
The BTF is read with `bpftool btf dump file VMLINUX format raw`.
"""
import re
import subprocess
import sys

# Compression magics a bzImage payload can use, with the tool that unpacks each.
MAGICS = [
    (b"\x28\xb5\x2f\xfd", ["zstd", "-dc"]),
    (b"\x1f\x8b\x08", ["gzip", "-dc"]),
    (b"\xfd7zXZ\x00", ["xz", "-dc"]),
]

# kfuncs the scheduler calls whose prototype the pahole bug corrupts.
IMPLICIT_ARG_KFUNCS = ["scx_bpf_create_dsq", "scx_bpf_dsq_move_to_local"]


def extract(bzimage: str, out: str) -> None:
    data = open(bzimage, "rb").read()
    for magic, cmd in MAGICS:
        start = data.find(magic)
        while start != -1:
            # Trailing garbage after the payload is normal; keep whatever decompressed.
            proc = subprocess.run(cmd, input=data[start:], capture_output=True)
            if proc.stdout[:4] == b"\x7fELF":
                with open(out, "wb") as f:
                    f.write(proc.stdout)
                return
            start = data.find(magic, start + 1)
    sys.exit(f"{bzimage}: no compressed ELF payload found (tried zstd, gzip, xz)")


def check(vmlinux: str) -> None:
    proc = subprocess.run(
        ["bpftool", "btf", "dump", "file", vmlinux, "format", "raw"],
        capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{vmlinux}: bpftool could not read BTF: {proc.stderr.strip()}")
    lines = proc.stdout.splitlines()

    type_line = re.compile(r"^\[(\d+)\] (\w+) '([^']*)'(.*)$")
    by_id = {}      # id -> (kind, name, rest)
    params = {}     # FUNC_PROTO id -> [(name, type_id)]
    cur = None
    for line in lines:
        m = type_line.match(line)
        if m:
            tid = int(m.group(1))
            by_id[tid] = (m.group(2), m.group(3), m.group(4))
            cur = tid if m.group(2) == "FUNC_PROTO" else None
            if cur is not None:
                params[cur] = []
            continue
        pm = re.match(r"^\s+'([^']*)' type_id=(\d+)", line)
        if pm and cur is not None:
            params[cur].append((pm.group(1), int(pm.group(2))))

    if not any(k == "STRUCT" and n == "sched_ext_ops" for k, n, _ in by_id.values()):
        sys.exit(f"{vmlinux}: no struct sched_ext_ops in BTF: kernel built without CONFIG_SCHED_CLASS_EXT")

    def pointee_name(tid):
        # Follow PTR/CONST/VOLATILE/TYPEDEF to the named type.
        for _ in range(8):
            kind, name, rest = by_id.get(tid, ("?", "", ""))
            m = re.search(r"type_id=(\d+)", rest)
            if kind in ("PTR", "CONST", "VOLATILE", "TYPEDEF", "RESTRICT", "TYPE_TAG") and m:
                tid = int(m.group(1))
                continue
            return name
        return ""

    funcs = {n: rest for k, n, rest in by_id.values() if k == "FUNC"}
    for kf in IMPLICIT_ARG_KFUNCS:
        if kf not in funcs:
            continue
        m = re.search(r"type_id=(\d+)", funcs[kf])
        for pname, ptid in params.get(int(m.group(1)), []):
            if pointee_name(ptid) == "bpf_prog_aux":
                sys.exit(f"{vmlinux}: kfunc {kf} exposes its implicit 'struct bpf_prog_aux *{pname}' "
                         "argument (BTF built with pahole < 1.26); schedulers fail to load on it")
    print(f"{vmlinux}: sched_ext present, kfunc prototypes sane")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "extract":
        extract(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        check(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
