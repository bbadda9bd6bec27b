# SPDX-License-Identifier: GPL-2.0-only
# Shared by the scripts in scripts/: paths and small helpers.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${SCX_BATTLE_CACHE:-${HOME:-/root}/.cache/scx-battle}
TOOLS="$CACHE/tools"
KERNEL_ENV="$CACHE/kernel.env"            # the newest sched_ext kernel setup validated
KERNEL_ENV_OLDEST="$CACHE/kernel-oldest.env"  # the oldest sched_ext series setup validated
export PATH="$TOOLS/bin:$TOOLS/venv/bin:$HOME/.cargo/bin:$PATH"

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }
# Bad usage (an unknown option, a malformed value): exit status 2 (docs/cli.md).
die_usage() { printf '[%s] error: %s\n' "$(basename "$0")" "$*" >&2; exit 2; }

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

# kernel_env_file newest|oldest|VERSION: the env file scripts/setup wrote for
# that kernel (KERNEL_VERSION, KERNEL_RELEASE, KERNEL_IMAGE; KERNEL_CONFIG: its
# build configuration, empty when setup found none).
kernel_env_file() {
    local f
    case "$1" in
        newest|"") f=$KERNEL_ENV ;;
        oldest) f=$KERNEL_ENV_OLDEST ;;
        *) f=$(grep -lx "KERNEL_VERSION=$1" "$KERNEL_ENV" "$KERNEL_ENV_OLDEST" 2>/dev/null | head -1) ;;
    esac
    if [[ -z "$f" || ! -f "$f" ]]; then
        printf '[%s] error: no VM kernel "%s": run scripts/setup (it fetches the newest and the oldest sched_ext series)\n' \
            "$(basename "$0")" "$1" >&2
        return 1
    fi
    echo "$f"
}
