#!/bin/bash
# The cloud kernel has no overlayfs, so vng leaves /tmp read-only. Give it a
# tmpfs, unless that would hide the repository or the results (a checkout
# under /tmp): then temporary files go to the results directory instead.
case "/work/main/:/work/main/results/tmp/quick-ref/" in
    /tmp/*|*:/tmp/*) mkdir -p /work/main/results/tmp/quick-ref/.tmp; export TMPDIR=/work/main/results/tmp/quick-ref/.tmp ;;
    *) mount -t tmpfs -o mode=1777 tmpfs /tmp ;;
esac
# libbpf reads the kernel's configuration from /boot (the host's, read-only
# here): show it the guest kernel's, for schedulers with Kconfig externs.
if [[ -n /root/.cache/scx-battle/kernels/7.3.4+deb13/config && ! -e /boot/config-$(uname -r) ]]; then
    mount -t tmpfs tmpfs /boot && cp /root/.cache/scx-battle/kernels/7.3.4+deb13/config /boot/config-$(uname -r)
fi
cut -d' ' -f1 /proc/uptime > /work/main/results/tmp/quick-ref/started
bash /work/main/results/tmp/quick-ref/command.sh > /work/main/results/tmp/quick-ref/guest.out 2>&1 < /dev/null
rc=$?
dmesg > /work/main/results/tmp/quick-ref/dmesg.txt 2>&1
echo $rc > /work/main/results/tmp/quick-ref/rc
sync
