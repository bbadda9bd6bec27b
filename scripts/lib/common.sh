# SPDX-License-Identifier: GPL-2.0-only
# Shared by the scripts in scripts/: paths and small helpers.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${SCX_BATTLE_CACHE:-${HOME:-/root}/.cache/scx-battle}
TOOLS="$CACHE/tools"
KERNEL_ENV="$CACHE/kernel.env"
export PATH="$TOOLS/bin:$TOOLS/venv/bin:$HOME/.cargo/bin:$PATH"

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# The Debian archive this machine already uses (deb822 or one-line sources),
# unless SCX_BATTLE_DEBIAN_MIRROR names one.
debian_mirror() {
    if [[ -n "${SCX_BATTLE_DEBIAN_MIRROR:-}" ]]; then
        echo "$SCX_BATTLE_DEBIAN_MIRROR"
        return
    fi
    local uri
    uri=$(grep -hs -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
          | awk '{print $2}' | grep -v -- '-security' | grep '/debian/\?$' | head -1)
    [[ -n "$uri" ]] || uri=$(grep -hs -E '^deb ' /etc/apt/sources.list 2>/dev/null \
          | awk '{print $2}' | grep -v -- '-security' | grep '/debian/\?$' | head -1)
    [[ -n "$uri" ]] || die "cannot find a Debian archive in the apt sources; set SCX_BATTLE_DEBIAN_MIRROR"
    echo "$uri"
}

# True where this machine can run sched_ext schedulers without a VM.
native_sched_ext() {
    [[ -d /sys/kernel/sched_ext && $(id -u) -eq 0 ]]
}
