#!/bin/bash
# The cloud kernel has no overlayfs, so vng leaves /tmp read-only. Give it a
# tmpfs, unless that would hide the repository or the results (a checkout
# under /tmp): then temporary files go to the results directory instead.
case "/work/wt/:/work/wt/results/2026-11-22-small-repeat/" in
    /tmp/*|*:/tmp/*) mkdir -p /work/wt/results/2026-11-22-small-repeat/.tmp; export TMPDIR=/work/wt/results/2026-11-22-small-repeat/.tmp ;;
    *) mount -t tmpfs -o mode=1777 tmpfs /tmp ;;
esac
cut -d' ' -f1 /proc/uptime > /work/wt/results/2026-11-22-small-repeat/started
bash /work/wt/results/2026-11-22-small-repeat/command.sh > /work/wt/results/2026-11-22-small-repeat/guest.out 2>&1 < /dev/null
rc=$?
dmesg > /work/wt/results/2026-11-22-small-repeat/dmesg.txt 2>&1
echo $rc > /work/wt/results/2026-11-22-small-repeat/rc
sync
