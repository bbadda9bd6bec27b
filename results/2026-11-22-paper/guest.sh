#!/bin/bash
# The cloud kernel has no overlayfs, so vng leaves /tmp read-only. Give it a
# tmpfs, unless that would hide the repository or the results (a checkout
# under /tmp): then temporary files go to the results directory instead.
case "/work/main/:/work/main/results/tmp/ref-paper/" in
    /tmp/*|*:/tmp/*) mkdir -p /work/main/results/tmp/ref-paper/.tmp; export TMPDIR=/work/main/results/tmp/ref-paper/.tmp ;;
    *) mount -t tmpfs -o mode=1777 tmpfs /tmp ;;
esac
cut -d' ' -f1 /proc/uptime > /work/main/results/tmp/ref-paper/started
bash /work/main/results/tmp/ref-paper/command.sh > /work/main/results/tmp/ref-paper/guest.out 2>&1 < /dev/null
rc=$?
dmesg > /work/main/results/tmp/ref-paper/dmesg.txt 2>&1
echo $rc > /work/main/results/tmp/ref-paper/rc
sync
