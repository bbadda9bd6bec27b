#!/bin/bash
# The cloud kernel has no overlayfs, so vng leaves /tmp read-only. Give it a
# tmpfs, unless that would hide the repository or the results (a checkout
# under /tmp): then temporary files go to the results directory instead.
case "/work/wt/:/work/main/results/tmp/ref-small/" in
    /tmp/*|*:/tmp/*) mkdir -p /work/main/results/tmp/ref-small/.tmp; export TMPDIR=/work/main/results/tmp/ref-small/.tmp ;;
    *) mount -t tmpfs -o mode=1777 tmpfs /tmp ;;
esac
cut -d' ' -f1 /proc/uptime > /work/main/results/tmp/ref-small/started
bash /work/main/results/tmp/ref-small/command.sh > /work/main/results/tmp/ref-small/guest.out 2>&1 < /dev/null
rc=$?
dmesg > /work/main/results/tmp/ref-small/dmesg.txt 2>&1
echo $rc > /work/main/results/tmp/ref-small/rc
sync
