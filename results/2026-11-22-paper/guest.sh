#!/bin/bash
# The cloud kernel has no overlayfs, so vng leaves /tmp read-only. Give it a
# tmpfs, unless that would hide the repository or the results (a checkout
# under /tmp): then temporary files go to the results directory instead.
case "/work/bench/:/tmp/repro-ule/" in
    /tmp/*|*:/tmp/*) mkdir -p /tmp/repro-ule/.tmp; export TMPDIR=/tmp/repro-ule/.tmp ;;
    *) mount -t tmpfs -o mode=1777 tmpfs /tmp ;;
esac
cut -d' ' -f1 /proc/uptime > /tmp/repro-ule/started
bash /tmp/repro-ule/command.sh > /tmp/repro-ule/guest.out 2>&1 < /dev/null
rc=$?
dmesg > /tmp/repro-ule/dmesg.txt 2>&1
echo $rc > /tmp/repro-ule/rc
sync
