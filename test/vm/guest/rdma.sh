# rdma.sh — rdma profile: soft RoCE (rdma_rxe) on a dummy netdev, the
# target (LIO ib_srpt or srptgt) and the kernel initiator ib_srp in one VM.
# Two initiator ports log in (initiator_ext 1 and 2: distinct SRP initiator
# port IDs, i.e. two I_T nexuses) and each sees LUN 0 and LUN 1.
. /vm/lib.sh
. /vm/env

TGT_IP=169.254.10.1
TGT_PORT=5000
# SRP target port ID = id_ext:ioc_guid (LIO ib_srpt: the node GUID twice)
ID_EXT=000000fffe000001
IOC_GUID=000000fffe000001

setup_rdma() {
  modprobe configfs && mount -t configfs none /sys/kernel/config
  for m in rdma_rxe rdma_ucm ib_uverbs dummy sd_mod sg; do modprobe $m || return 1; done
  ip link add dum0 address 02:00:00:00:00:01 type dummy || return 1
  ip addr add $TGT_IP/16 dev dum0
  ip link set dum0 up
  rdma link add rxe_dum0 type rxe netdev dum0 || return 1
  rdma link show
  ls /sys/class/infiniband/
}

login() { # initiator_ext
  h=/sys/class/infiniband_srp/srp-rxe_dum0-1/add_target
  opts="id_ext=$ID_EXT,ioc_guid=$IOC_GUID,initiator_ext=$1,src=$TGT_IP,dest=$TGT_IP:$TGT_PORT"
  i=0
  while [ $i -lt 5 ]; do
    echo "add_target $opts"
    echo "$opts" >$h && return 0
    i=$((i+1)); sleep 1
  done
  return 1
}

# disks_of HOST: wait for LUN 0 and 1 of scsi host HOST
wait_luns() {
  i=0
  while [ $i -lt 100 ]; do
    a=$(scsi_dev "$1:0:0:0") && b=$(scsi_dev "$1:0:0:1") && { echo "$a $b"; return 0; }
    i=$((i+1)); sleep 0.2
  done
  return 1
}

hosts() { ls /sys/class/scsi_host | sed 's/host//' | sort -n; }

main() {
  {
    modprobe crc32_generic; modprobe crc32_pclmul
    setup_rdma || { echo "rdma setup failed"; return 1; }
    . /vm/target-$TARGET-rdma.sh
    target_start || { echo "target start failed"; return 1; }
    modprobe ib_srp || return 1
    : >/tmp/devs.env
    for ext in 0000000000000001 0000000000000002; do
      before=$(hosts)
      login $ext || { echo "login initiator_ext=$ext failed"; dmesg | tail -30; return 1; }
      h=$(hosts | grep -vxF "$before" | tail -1)
      [ -n "$h" ] || { echo "no new scsi host"; return 1; }
      set -- $(wait_luns "$h") || { echo "LUNs of host $h did not appear"; ls /sys/class/scsi_device; return 1; }
      [ $# -eq 4 ] || { echo "LUNs of host $h did not appear"; ls /sys/class/scsi_device; return 1; }
      sfx=""; [ $ext = 0000000000000002 ] && sfx=B
      echo "DISK0$sfx=/dev/$1 SG0$sfx=/dev/$2 DISK1$sfx=/dev/$3 SG1$sfx=/dev/$4" >>/tmp/devs.env
      echo "initiator_ext=$ext host$h: LUN0 $1 $2, LUN1 $3 $4"
    done
    cat /tmp/devs.env
  } >/tmp/setup.log 2>&1
}

if main; then
  emit_log setup/rdma /tmp/setup.log
  echo "SRPTGT-SETUP OK"
  . /tmp/devs.env
  export DISK0 SG0 DISK1 SG1 DISK0B SG0B DISK1B SG1B
  for s in $SUITES; do run_suite $s; done
else
  dmesg | tail -25 >>/tmp/setup.log
  emit_log setup/rdma /tmp/setup.log
  reason=$(grep -v '^ *$' /tmp/setup.log | grep -iE 'fail|not|error' | head -1)
  echo "SRPTGT-SETUP FAIL ${reason:-setup failed}"
  fail_all "setup failed: ${reason:-see log}"
fi
type target_stop >/dev/null 2>&1 && target_stop >/dev/null 2>&1
