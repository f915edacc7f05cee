# xen-domu.sh — xen profile, PV guest side: xen-scsifront with two virtual
# SCSI hosts (vscsi-0 = initiator A, vscsi-1 = initiator B), each with
# LUN 0 and LUN 1; then the suites.
. /vm/lib.sh
. /vm/env

# host_of VHOST: the scsi host number created for device/vscsi/VHOST
host_of() {
  for h in /sys/class/scsi_host/host*; do
    readlink -f $h | grep -q "/vscsi-$1/" && { basename $h | sed 's/host//'; return 0; }
  done
  return 1
}

main() {
  {
    modprobe sd_mod && modprobe sg && modprobe xen-scsifront || { echo "modprobe failed"; return 1; }
    : >/tmp/devs.env
    for v in 0 1; do
      i=0; h=""
      while [ $i -lt 150 ]; do
        h=$(host_of $v) && a=$(scsi_dev "$h:0:0:0") && b=$(scsi_dev "$h:0:0:1") && break
        h=""; i=$((i+1)); sleep 0.2
      done
      [ -n "$h" ] || { echo "LUNs of vscsi-$v did not appear"; ls -l /sys/class/scsi_host /sys/class/scsi_device; return 1; }
      set -- $a $b
      sfx=""; [ $v = 1 ] && sfx=B
      echo "DISK0$sfx=/dev/$1 SG0$sfx=/dev/$2 DISK1$sfx=/dev/$3 SG1$sfx=/dev/$4" >>/tmp/devs.env
      echo "vscsi-$v host$h: LUN0 $1 $2, LUN1 $3 $4"
    done
    cat /tmp/devs.env
  } >/tmp/setup.log 2>&1
}

if main; then
  emit_log setup/xen-domu /tmp/setup.log
  echo "SRPTGT-SETUP OK"
  . /tmp/devs.env
  for s in $SUITES; do run_suite $s; done
else
  dmesg | tail -25 >>/tmp/setup.log
  emit_log setup/xen-domu /tmp/setup.log
  reason=$(grep -iE 'fail|not|error|did not' /tmp/setup.log | head -1)
  echo "SRPTGT-SETUP FAIL guest: ${reason:-setup failed}"
  fail_all "setup failed: ${reason:-see log}"
fi
echo "SRPTGT-DOMU-DONE"
