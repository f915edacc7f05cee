# xen-dom0.sh — xen profile, dom0 side: start the Xen toolstack daemons,
# configure the target (LIO + xen-scsiback, or srptgt), boot the PV guest
# "guest1" with two virtual SCSI hosts (two initiator ports) and relay its
# console (where the suites print their markers) to dom0's console.
. /vm/lib.sh
. /vm/env
GUEST=guest1
GUEST2=guest2

start_xen() {
  for m in xen_evtchn xen_gntdev xen_gntalloc xen_privcmd xenfs; do modprobe $m || return 1; done
  mkdir -p /proc/xen && mount -t xenfs xenfs /proc/xen || return 1
  modprobe configfs && mount -t configfs none /sys/kernel/config
  mkdir -p /var/run/xenstored /var/lib/xenstored /var/log/xen/console /var/lib/xen /run/xen
  xenstored --pid-file=/run/xenstored.pid || return 1
  i=0; while [ ! -S /run/xenstored/socket ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  xen-init-dom0 || return 1
  xenconsoled --log=guest --log-dir=/var/log/xen/console || return 1
  xl info >/tmp/xlinfo 2>&1 || { cat /tmp/xlinfo; return 1; }
  sed -n 's/^xen_version *: *//p' /tmp/xlinfo >/tmp/xenversion
}

# the guest's ramdisk: the test scripts and env (uncompressed cpio) followed
# by its base image (gzip). The uncompressed part goes first: libxc tries
# to inflate a ramdisk that starts with the gzip magic, and fails on
# concatenated members.
make_domu_initrd() {
  rm -rf /tmp/ov && mkdir -p /tmp/ov
  cp -a /vm /tmp/ov/vm
  (cd /tmp/ov && find . -mindepth 1 | cpio -o -H newc 2>/dev/null) >/tmp/ov.cpio
  cat /tmp/ov.cpio /domu/base.cpio.gz >/tmp/domu.img
}

# create_guest NAME MEMORY: a paused PV guest on pCPU 1; prints its domid.
# srptgt.guest=NAME on its command line tells xen-domu.sh which guest it is.
create_guest() {
  cat >/tmp/$1.cfg <<CFG
name="$1"
type="pv"
kernel="/domu/vmlinuz"
ramdisk="/tmp/domu.img"
extra="console=hvc0 quiet loglevel=4 panic=-1 srptgt.guest=$1"
memory=$2
vcpus=1
cpus="1"
on_crash="preserve"
CFG
  xl create -p /tmp/$1.cfg >&2 || return 1
  xl domid $1
}

# the second guest boots only when the guests suite is selected
want_guest2() { case " $SUITES " in *" guests "*) return 0 ;; esac; return 1; }

main() {
  {
    start_xen || { echo "xen start failed"; return 1; }
    make_domu_initrd || { echo "guest image failed"; return 1; }
    DOMID=$(create_guest $GUEST 512) || { echo "xl create failed"; return 1; }
    echo "guest $GUEST is domain $DOMID (paused)"
    DOMID2=""
    if want_guest2; then
      DOMID2=$(create_guest $GUEST2 256) || { echo "xl create $GUEST2 failed"; return 1; }
      echo "guest $GUEST2 is domain $DOMID2 (paused)"
    fi
    . /vm/target-$TARGET-xen.sh
    target_start || { echo "target start failed"; return 1; }
    xenstore-ls -f /local/domain/0/backend 2>/dev/null | head -40
    xenstore-ls -f /local/domain/$DOMID/device 2>/dev/null | head -20
  } >/tmp/setup.log 2>&1
}

if main; then
  emit_log setup/xen-dom0 /tmp/setup.log
  info xen "$(cat /tmp/xenversion)"
  echo "SRPTGT-INFO dom0-setup OK"
  log=/var/log/xen/console/guest-$GUEST.log
  xl unpause $GUEST
  touch $log
  tail -F $log 2>/dev/null &
  tailpid=$!
  # the second guest runs beside the first; its console is relayed too
  log2=/var/log/xen/console/guest-$GUEST2.log
  if [ -n "$DOMID2" ]; then
    xl unpause $GUEST2
    touch $log2
    # (prefixed: the Go driver keeps each guest's log blocks apart)
    tail -F $log2 2>/dev/null | sed 's/^/[guest2] /' &
    tailpid="$tailpid $!"
  fi
  # a target may act on requests the guest's suites print (SRPTGT-XENCTL)
  ctlpid=""
  type target_control >/dev/null 2>&1 && { target_control $log & ctlpid=$!; }
  # wait for the guest to finish (it powers off) or to crash
  lim=${GUEST_TIMEOUT:-1500}; t=0
  # stall: seconds the guest's console has not grown; at 240 s the target
  # and both kernels are asked once for their state (the test that hangs
  # is killed by the guest's own watchdog later, if it can be)
  size=0; stall=0; dumped=""
  # (poll slowly: every fork costs in a PV dom0 under emulation)
  while [ $t -lt $lim ]; do
    grep -q 'SRPTGT-DOMU-DONE' $log 2>/dev/null && break
    n=$(wc -c <$log 2>/dev/null)
    if [ "$n" = "$size" ]; then stall=$((stall+4)); else size=$n; stall=0; fi
    if [ $stall -ge 240 ] && [ -z "$dumped" ]; then
      dumped=1
      echo "SRPTGT-INFO stall guest console silent for ${stall}s; dumping state"
      # (sysrq 8 first: the blocked-task list is printed at KERN_INFO)
      xl sysrq $GUEST 8 2>&1; sleep 1; xl sysrq $GUEST w 2>&1; sleep 5
      # the guest's vCPU: running or blocked, CPU time moving, where it is
      xl vcpu-list 2>&1; sleep 3; xl vcpu-list 2>&1
      xl debug-keys d 2>&1; xl debug-keys q 2>&1; sleep 1; xl dmesg 2>&1 | tail -150 | sed 's/^/xen: /'
      xenstore-ls -f /local/domain/$DOMID/device/vscsi 2>&1 | grep -E "state|ring|event" | sed 's/^/xenstore: /'
      echo w >/proc/sysrq-trigger; dmesg | tail -60 | sed 's/^/dom0-kernel: /'
      type target_dump >/dev/null 2>&1 && target_dump
    fi
    if [ $((t % 20)) -eq 0 ]; then xl list $GUEST >/dev/null 2>&1 || break; fi
    sleep 4; t=$((t+4))
  done
  # guest2 runs about a minute: let it finish if guest1 was quicker
  if [ -n "$DOMID2" ]; then
    t2=0
    while [ $t2 -lt 300 ] && ! grep -q SRPTGT-DOMU-DONE $log2 2>/dev/null; do
      xl list $GUEST2 >/dev/null 2>&1 || break
      sleep 4; t2=$((t2+4))
    done
    grep -q SRPTGT-DOMU-DONE $log2 || echo "SRPTGT-INFO guest2-end no SRPTGT-DOMU-DONE"
    xl destroy $GUEST2 2>/dev/null
  fi
  sleep 1
  kill $tailpid $ctlpid 2>/dev/null
  if ! grep -q 'SRPTGT-DOMU-DONE' $log; then
    echo "SRPTGT-INFO guest-end no SRPTGT-DOMU-DONE after ${t}s"
    xl list 2>&1
  fi
  xl destroy $GUEST 2>/dev/null
  dmesg | grep -iE 'oops|BUG:|unable to handle|Call Trace' | head -5 | sed 's/^/SRPTGT-INFO dom0-kernel /'
else
  xl destroy $GUEST 2>/dev/null
  xl destroy $GUEST2 2>/dev/null
  dmesg | tail -25 >>/tmp/setup.log
  emit_log setup/xen-dom0 /tmp/setup.log
  reason=$(grep -iE 'fail|not|error' /tmp/setup.log | head -1)
  echo "SRPTGT-SETUP FAIL dom0: ${reason:-setup failed}"
  fail_all "setup failed: ${reason:-see log}"
fi
type target_stop >/dev/null 2>&1 && target_stop
