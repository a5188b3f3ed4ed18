#!/bin/busybox sh
# /init of the test guest's initramfs: load the stock nsm driver, look at what it registered,
# drive /dev/nsm with the project's static client, report on the serial console between
# "@@ name" markers, power off. Everything the host checks comes from these lines.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "@@ booted $(uname -r)"
for m in $(cat /modules.order); do insmod "/lib/modules/$m" || echo "@@ insmod-failed $m"; done
i=0
while [ ! -c /dev/nsm ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
if [ -c /dev/nsm ]; then echo "@@ devnsm $(stat -c '%F %a' /dev/nsm)"; else echo "@@ devnsm missing"; fi
echo "@@ rng_current $(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"
echo "@@ rng_available $(cat /sys/class/misc/hw_random/rng_available 2>/dev/null)"
echo "@@ hwrng $(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | hexdump -v -e '1/1 "%02x"')"
echo "@@ client-begin"
/nsm-client send $(cat /requests)
echo "@@ client-end"
echo "@@ errors-begin"
/nsm-client errors
echo "@@ errors-end"
echo "@@ faults-begin"
/nsm-client faults
echo "@@ faults-end"
n=$(cat /bench-count)
t0=$(cut -d' ' -f1 /proc/uptime)
echo "$n" | /nsm-client bench "$(cat /bench-request)" > /bench.out
t1=$(cut -d' ' -f1 /proc/uptime)
echo "@@ bench $n $t0 $t1 $(cat /bench.out)"
echo "@@ dmesg-begin"
dmesg | grep -i -E 'nsm|virtio|vfio|1af4:1061|hw_random|hwrng'
echo "@@ dmesg-end"
echo "@@ done"
poweroff -f
