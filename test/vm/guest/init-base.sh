#!/usr/bin/busybox sh
# /init of every base image (rdma VM, Xen dom0, Xen domU). Mounts the
# pseudo file systems and hands over to /vm/run.sh, which comes from the
# per-run overlay cpio (test scripts, target binary, config).
export PATH=/usr/sbin:/usr/bin:/usr/libexec/bb
export HOME=/root
/usr/bin/busybox mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o size=512m tmpfs /tmp
ln -sf /proc/self/fd /dev/fd 2>/dev/null
ln -sf /proc/mounts /etc/mtab
ip link set lo up 2>/dev/null || true
if [ -x /vm/run.sh ]; then
  sh /vm/run.sh
  echo "SRPTGT-VM-EXIT rc=$?"
else
  echo "SRPTGT-VM-ERROR no /vm/run.sh in the initramfs"
fi
echo "SRPTGT-VM-DONE"
sync
poweroff -f
