# xenctl — Xen PV SCSI lifecycle, srptgt only (dom0 acts on the
# SRPTGT-XENCTL requests this suite prints: target_control in
# target-srptgt-xen.sh). Devices: DISK0/DISK1 (vhost 0), DISK0B/DISK1B.
#   hotplug: hot-remove LUN 1 (srptgt xen detach) and hot-add it back
#     (srptgt xen attach) while fio --verify runs on LUN 0 of the same vhost.
#   sigterm: SIGTERM srptgt while fio runs on LUN 0: the guest must survive,
#     its disks go away cleanly; srptgt serve again re-attaches the guest
#     and fio --verify passes on the new disks.
# Both rewrite /tmp/devs.env with the devices they end with.
TESTS="hotplug:t_hotplug:400 sigterm:t_sigterm:500"


host_of() {
  for h in /sys/class/scsi_host/host*; do
    readlink -f $h | grep -q "/vscsi-$1/" && { basename $h | sed 's/host//'; return 0; }
  done
  return 1
}

# wait_dev VHOST LUN present|absent SECONDS: echo "sdX sgN" when present
wait_dev() {
  i=0
  while [ $i -lt $(($4 * 2)) ]; do
    h=$(host_of $1); d=""
    [ -n "$h" ] && d=$(scsi_dev "$h:0:0:$2")
    if [ "$3" = present ] && [ -n "$d" ]; then echo "$d"; return 0; fi
    if [ "$3" = absent ] && [ -z "$d" ]; then return 0; fi
    sleep 0.5; i=$((i+1))
  done
  return 1
}

rewrite_devs() {
  : >/tmp/devs.env.new
  for v in 0 1; do
    a=$(wait_dev $v 0 present 60) && b=$(wait_dev $v 1 present 60) || return 1
    set -- $a $b
    sfx=""; [ $v = 1 ] && sfx=B
    echo "DISK0$sfx=/dev/$1 SG0$sfx=/dev/$2 DISK1$sfx=/dev/$3 SG1$sfx=/dev/$4" >>/tmp/devs.env.new
  done
  mv /tmp/devs.env.new /tmp/devs.env
  cat /tmp/devs.env
}

t_hotplug() {
  na_unless_srptgt "srptgt only (dom0 acts through srptgt xen)"
  fio --name=bg --filename="$DISK0" --direct=1 --ioengine=libaio --rw=randwrite --bs=4k --iodepth=8 \
      --size=16m --time_based --runtime=60 --verify=crc32c --verify_backlog=64 --verify_fatal=1 >/tmp/fio_hp 2>&1 &
  fp=$!
  sleep 3
  xenctl detach --domain guest1 --vhost 0 --lun disk1
  wait_dev 0 1 absent 60 || { kill $fp; fail "LUN 1 not removed from the guest"; }
  echo "LUN 1 removed: $(ls /sys/class/scsi_device)"
  sleep 2
  xenctl attach --domain guest1 --lun disk1 --vdev 0:0:0:1
  nd=$(wait_dev 0 1 present 60) || { kill $fp; fail "LUN 1 not added back"; }
  set -- $nd
  echo "LUN 1 back as $1 $2"
  fio --name=new --filename=/dev/$1 --direct=1 --ioengine=libaio --rw=randwrite --bs=64k --iodepth=4 \
      --size=8m --verify=crc32c --do_verify=1 --verify_fatal=1 >/tmp/fio_new 2>&1 || { cat /tmp/fio_new; kill $fp; fail "fio verify on the re-added LUN failed"; }
  wait $fp; frc=$?
  cat /tmp/fio_hp | tail -15
  dmesg | tail -25
  [ $frc -eq 0 ] || fail "fio verify on LUN 0 failed during the hot-plug (rc=$frc)"
  rewrite_devs
  detail "LUN 1 hot-removed and hot-added (as $1) during fio --verify on LUN 0: verified"
}

# io_started DISK SECONDS: wait until the disk's completed I/O count moves
io_started() {
  d=${1#/dev/}; a=$(awk -v d=$d '$3==d{print $4+$8}' /proc/diskstats); i=0
  while [ $i -lt $(($2 * 2)) ]; do
    sleep 0.5; i=$((i+1))
    b=$(awk -v d=$d '$3==d{print $4+$8}' /proc/diskstats)
    [ -n "$b" ] && [ "$b" != "$a" ] && return 0
  done
  return 1
}

t_sigterm() {
  na_unless_srptgt "srptgt only (dom0 acts through srptgt xen)"
  fio --name=bg --filename="$DISK0" --direct=1 --ioengine=libaio --rw=randrw --bs=4k --iodepth=16 \
      --size=16m --time_based --runtime=120 >/tmp/fio_st 2>&1 &
  fp=$!
  io_started "$DISK0" 60 || { kill $fp; cat /tmp/fio_st; fail "fio did not start I/O"; }
  sleep 2
  xenctl stop
  wait_dev 0 0 absent 90 || { kill $fp; fail "disks still present 90s after SIGTERM"; }
  echo "disks gone: $(ls /sys/class/scsi_device 2>/dev/null)"
  wait $fp; frc=$?
  tail -8 /tmp/fio_st
  dmesg | tail -30
  xenctl start
  rewrite_devs || { ls -l /sys/class/scsi_host /sys/class/scsi_device; dmesg | tail -30; fail "the guest's disks did not come back after serve started again"; }
  dmesg | tail -12
  . /tmp/devs.env
  fio --name=after --filename="$DISK0" --direct=1 --ioengine=libaio --rw=randwrite --bs=4k --iodepth=16 \
      --size=8m --verify=crc32c --do_verify=1 --verify_fatal=1 >/tmp/fio_after 2>&1 || { cat /tmp/fio_after; fail "fio verify after the restart failed"; }
  detail "SIGTERM under I/O: guest alive, disks removed cleanly (fio rc=$frc), re-attached as $DISK0 after restart, verified"
}
