# xen-domu.sh — xen profile, PV guest side: xen-scsifront with two virtual
# SCSI hosts (vscsi-0 = initiator A, vscsi-1 = initiator B), each with
# LUN 0 and LUN 1; then the suites. The second guest (srptgt.guest=guest2
# on its kernel command line, booted when the guests suite is selected)
# has one virtual SCSI host with LUN 0 and runs only that suite.
. /vm/lib.sh
. /vm/env

GUEST=$(sed -n 's/.*srptgt\.guest=\([a-z0-9]*\).*/\1/p' /proc/cmdline)
[ -n "$GUEST" ] || GUEST=guest1

# host_of VHOST: the scsi host number created for device/vscsi/VHOST
host_of() {
  for h in /sys/class/scsi_host/host*; do
    readlink -f $h | grep -q "/vscsi-$1/" && { basename $h | sed 's/host//'; return 0; }
  done
  return 1
}

# devices VHOST LUNS...: wait for the LUNs of a vhost, record their disk and
# sg nodes in /tmp/devs.env (DISK<n>, SG<n>; suffix B for vhost 1)
devices() {
  v=$1; shift
  i=0; h=""; devs=""
  # (up to 2 minutes: a loaded host boots the guests slowly)
  while [ $i -lt 600 ]; do
    if h=$(host_of $v); then
      devs=""
      for l in "$@"; do d=$(scsi_dev "$h:0:0:$l") || { devs=""; break; }; devs="$devs $d"; done
      [ -n "$devs" ] && break
    fi
    h=""; i=$((i+1)); sleep 0.2
  done
  [ -n "$devs" ] || { echo "LUNs of vscsi-$v did not appear"; ls -l /sys/class/scsi_host /sys/class/scsi_device; return 1; }
  sfx=""; [ $v = 1 ] && sfx=B
  set -- $devs; l=0
  while [ $# -ge 2 ]; do
    echo "DISK$l$sfx=/dev/$1 SG$l$sfx=/dev/$2" >>/tmp/devs.env
    shift 2; l=$((l+1))
  done
  echo "vscsi-$v host$h:$devs"
}

main() {
  {
    modprobe sd_mod && modprobe sg && modprobe xen-scsifront || { echo "modprobe failed"; return 1; }
    : >/tmp/devs.env
    if [ "$GUEST" = guest2 ]; then
      devices 0 0 || return 1
    else
      devices 0 0 1 && devices 1 0 1 || return 1
    fi
    cat /tmp/devs.env
  } >/tmp/setup.log 2>&1
}

if main; then
  emit_log setup/xen-$([ "$GUEST" = guest2 ] && echo guest2 || echo domu) /tmp/setup.log
  . /tmp/devs.env
  if [ "$GUEST" = guest2 ]; then
    info guest2-setup OK
    run_suite guests
  else
    echo "SRPTGT-SETUP OK"
    for s in $SUITES; do [ "$s" = guests ] || run_suite $s; done
  fi
else
  dmesg | tail -25 >>/tmp/setup.log
  emit_log setup/xen-$([ "$GUEST" = guest2 ] && echo guest2 || echo domu) /tmp/setup.log
  reason=$(grep -iE 'fail|not|error|did not' /tmp/setup.log | head -1)
  if [ "$GUEST" = guest2 ]; then
    echo "SRPTGT-TEST guests/second_guest_io FAIL guest2 set-up failed: ${reason:-see log}"
  else
    echo "SRPTGT-SETUP FAIL guest: ${reason:-setup failed}"
    fail_all "setup failed: ${reason:-see log}"
  fi
fi
echo "SRPTGT-DOMU-DONE $GUEST"
