#!/bin/bash
# The cloud kernel has no overlayfs, so vng leaves /tmp read-only. Give it a
# tmpfs, unless that would hide the repository or the results (a checkout
# under /tmp): then temporary files go to the results directory instead.
case "/work/bench/:/tmp/repro-small/" in
    /tmp/*|*:/tmp/*) mkdir -p /tmp/repro-small/.tmp; export TMPDIR=/tmp/repro-small/.tmp ;;
    *) mount -t tmpfs -o mode=1777 tmpfs /tmp ;;
esac
cut -d' ' -f1 /proc/uptime > /tmp/repro-small/started
bash /tmp/repro-small/command.sh > /tmp/repro-small/guest.out 2>&1 < /dev/null
rc=$?
dmesg > /tmp/repro-small/dmesg.txt 2>&1
echo $rc > /tmp/repro-small/rc
sync
