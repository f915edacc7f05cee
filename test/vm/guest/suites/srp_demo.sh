# srp_demo — what the kernel initiator sees of srptgt over soft RoCE (run
# by test/demo.sh): the RDMA device, the logins, the disks (lsblk), INQUIRY,
# READ CAPACITY and short fio runs, then srptgt bench from user space.
TESTS="demo:t_demo:400"
. /vm/env # TARGET

# lsblk as util-linux prints it, from sysfs (the image has no util-linux)
lsblk_sysfs() {
  printf '%-6s %-7s %2s %7s %2s %-4s %-8s %-16s %s\n' NAME MAJ:MIN RM SIZE RO TYPE VENDOR MODEL TRAN
  for b in /sys/block/*; do
    n=${b##*/}
    case $n in loop*|ram*) continue ;; esac
    sz=$(cat $b/size); mib=$((sz / 2048))
    tran=""; [ -d $b/device ] && readlink -f $b/device | grep -q '/host[0-9]*/' && tran=srp
    printf '%-6s %-7s %2s %6sM %2s %-4s %-8s %-16s %s\n' "$n" "$(cat $b/dev)" "$(cat $b/removable)" "$mib" \
      "$(cat $b/ro)" disk "$(cat $b/device/vendor 2>/dev/null | tr -d ' ')" "$(cat $b/device/model 2>/dev/null | sed 's/ *$//')" "$tran"
  done
}

t_demo() {
  echo "===== srptgt rdma devices"
  srptgt rdma devices
  echo
  echo "===== srptgt's log: listening, the RDMA target port, the logins"
  grep -E 'RDMA target port|[[:space:]]login[[:space:]]|channel established' /tmp/srptgt.log | cut -c1-300
  echo
  echo "===== kernel log: ib_srp logging in over RDMA CM (dest=169.254.10.1:5000)"
  dmesg | grep -iE 'ib_srp|scsi host[0-9]|Attached SCSI|sd [0-9]+:' | sed 's/^\[[^]]*\] *//' | head -30
  echo
  echo "===== lsblk"
  lsblk_sysfs
  echo
  echo "===== sg_inq $SG0 (LUN 0)"
  sg_inq "$SG0"
  echo
  echo "===== sg_readcap -l $SG0"
  sg_readcap -l "$SG0"
  echo
  echo "===== sg_readcap -l $SG1 (LUN 1)"
  sg_readcap -l "$SG1"
  echo
  echo "===== fio: 4 KiB random reads, queue depth 32, 5 s, on $DISK0"
  fio --name=randread --filename="$DISK0" --direct=1 --ioengine=libaio --rw=randread --bs=4k \
      --iodepth=32 --time_based --runtime=5 --group_reporting >/tmp/fio_rr 2>&1 || { cat /tmp/fio_rr; fail "fio randread failed"; }
  grep -vE '^ *$' /tmp/fio_rr
  echo
  echo "===== fio: 64 KiB random writes + verify, 16 MiB, on $DISK1"
  fio --name=verify --filename="$DISK1" --direct=1 --ioengine=libaio --rw=randwrite --bs=64k \
      --iodepth=8 --size=16m --verify=crc32c --do_verify=1 --verify_fatal=1 >/tmp/fio_v 2>&1 || { cat /tmp/fio_v; fail "fio verify failed"; }
  grep -E 'err=|IOPS|READ:|WRITE:' /tmp/fio_v
  echo
  echo "===== srptgt bench --rdma 169.254.10.1:5000 --lun disk0 --rw randread --iodepth 32 --time 5s"
  srptgt bench --rdma 169.254.10.1:5000 --lun disk0 --rw randread --bs 4k --iodepth 32 --time 5s 2>/dev/null
  detail "demo complete"
}
