# SPDX-License-Identifier: GPL-2.0-only
# Starting, waiting for and stopping a sched_ext scheduler, and the trap that
# makes sure a script never leaves one attached. Every script that loads
# scx_battle (or any scheduler) uses this; source it after common.sh.
#
#   sched_install_trap             on INT/TERM/HUP and at any exit (set -e
#                                  failures, die): stop the workload, unload
#   sched_start LOG CMD [ARGS...]  start the scheduler, wait until enabled
#   sched_stop                     SIGINT it, wait until sched_ext is disabled;
#                                  returns the scheduler's exit status
#   sched_load_error LOG           one line: why a scheduler did not load
#   run_step CMD [ARGS...]         run a workload step so that a signal can
#                                  interrupt it (bash runs traps only between
#                                  commands: a foreground child would delay it)
#
# The workload gets SIGINT first (loadgen then writes what it recorded), then
# the scheduler. Natively this is what keeps a real machine clean.

SCHED_SYSFS=/sys/kernel/sched_ext
SCHED_PID=""
STEP_PID=""

# step TEXT: say "== TEXT", and leave an empty .mark-<TEXT> in the results
# directory: its creation time is the host's clock (the guest's runs on
# icount), which says where a VM job's wall time went.
step() {
    echo "== $*"
    [[ -z ${SCX_BATTLE_OUT:-} ]] || : > "$SCX_BATTLE_OUT/.mark-$(printf '%s' "$*" | tr -c 'a-zA-Z0-9' '-' | cut -c1-48)"
}
sched_state() { cat "$SCHED_SYSFS/state" 2>/dev/null || echo missing; }

# sched_wait_state WANT SECS: poll until the state is WANT.
sched_wait_state() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do [[ $(sched_state) == "$1" ]] && return 0; sleep 0.1; done
    return 1
}

sched_start() {
    local log=$1
    shift
    [[ $(sched_state) == disabled ]] \
        || { echo "a sched_ext scheduler is already loaded ($(cat "$SCHED_SYSFS/root/ops" 2>/dev/null))" >&2; return 1; }
    "$@" >> "$log" 2>&1 &
    SCHED_PID=$!
    local i
    for ((i = 0; i < 600; i++)); do
        [[ $(sched_state) == enabled ]] && return 0
        # A scheduler that exited (bad options, a verifier rejection) will not load.
        kill -0 "$SCHED_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [[ $(sched_state) != enabled ]]; then
        echo "$(basename "$1") did not load (state $(sched_state)$(kill -0 "$SCHED_PID" 2>/dev/null && echo " after 60 s" || echo ", it exited")); its log:" >&2
        tail -20 "$log" >&2
        sched_stop || true
        return 1
    fi
}

sched_stop() {
    [[ -n $SCHED_PID ]] || return 0
    local pid=$SCHED_PID rc i
    SCHED_PID=""
    kill -INT "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true  # closing its link fd detaches it
    wait "$pid" 2>/dev/null
    rc=$?
    sched_wait_state disabled 30 || echo "sched_ext still $(sched_state) after the scheduler exited" >&2
    return "$rc"
}

# A Rust scheduler ends with "Error: X / Caused by: Y" after its libbpf
# warnings, and the first libbpf warning is often the root cause (a missing
# Kconfig, an unknown kfunc): name both, without terminal colours.
sched_load_error() {
    local plain err cause warn
    plain=$(sed 's/\x1b\[[0-9;]*m//g' "$1" 2>/dev/null)
    err=$(grep -m1 '^Error:' <<< "$plain")
    cause=$(sed -n '/^Caused by:/,$p' <<< "$plain" | sed -n '2,$p' | grep -m1 -v '^\s*$' | sed 's/^ *[0-9]*:* *//')
    warn=$(grep -m1 -oE 'libbpf: [a-z].*' <<< "$plain" | sed 's/^libbpf: //')
    if [[ -n $err ]]; then
        printf '%s%s%s' "$err" "${cause:+: $cause}" "${warn:+ (first libbpf warning: $warn)}"
    else
        { grep -m1 -iE 'error|fail' <<< "$plain" || tail -1 <<< "$plain"; } | tr -d '\n'
    fi
}

run_step() {
    "$@" &
    STEP_PID=$!
    local rc=0
    wait "$STEP_PID" || rc=$?
    # A trapped signal ends `wait` early with 128+n: wait for the step itself.
    while kill -0 "$STEP_PID" 2>/dev/null; do wait "$STEP_PID" || rc=$?; done
    STEP_PID=""
    return "$rc"
}

sched_cleanup() {
    local i
    if [[ -n $STEP_PID ]] && kill -0 "$STEP_PID" 2>/dev/null; then
        pkill -INT -P "$STEP_PID" 2>/dev/null || true
        kill -INT "$STEP_PID" 2>/dev/null || true
        for ((i = 0; i < 200; i++)); do kill -0 "$STEP_PID" 2>/dev/null || break; sleep 0.1; done
        pkill -KILL -P "$STEP_PID" 2>/dev/null || true
        kill -KILL "$STEP_PID" 2>/dev/null || true
    fi
    STEP_PID=""
    sched_stop || true
}

sched_on_signal() {
    trap '' INT TERM HUP
    echo "[$(basename "$0")] interrupted (SIG$1): stopping the workload and unloading the scheduler" >&2
    sched_cleanup
    [[ $1 == INT ]] && exit 130
    exit 143
}

sched_install_trap() {
    trap 'sched_on_signal INT' INT
    trap 'sched_on_signal TERM' TERM
    trap 'sched_on_signal HUP' HUP
    trap 'sched_cleanup' EXIT
}
