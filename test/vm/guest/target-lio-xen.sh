# target-lio-xen.sh — the reference target for the xen profile: LIO with
# the kernel's xen-scsiback. LUN 0 ramdisk, LUN 1 fileio (as for rdma).
# Two LIO xen-pvscsi targets (one per guest vscsi host), each with its own
# nexus (initiator name) and both LUNs: two I_T nexuses on the same LUNs.
# Upstream xl has no vscsi support, so the harness writes the XenStore
# nodes of both sides itself (see docs: vm-xen notes).
WWN1=naa.5001405000000001
WWN2=naa.5001405000000002
WWN3=naa.5001405000000003

target_start() {
  C=/sys/kernel/config/target
  mkdir -p /etc/target/pr /etc/target/alua
  modprobe target_core_mod && modprobe target_core_file && modprobe xen-scsiback || return 1
  mkdir -p $C/core/rd_mcp_0/disk0
  echo rd_pages=16384 >$C/core/rd_mcp_0/disk0/control
  echo 1 >$C/core/rd_mcp_0/disk0/enable || return 1
  echo 5eed0000-0000-4000-8000-000000000000 >$C/core/rd_mcp_0/disk0/wwn/vpd_unit_serial
  mkdir -p /srv
  dd if=/dev/zero of=/srv/disk1.img bs=1M count=0 seek=64 2>/dev/null
  mkdir -p $C/core/fileio_1/disk1
  echo fd_dev_name=/srv/disk1.img,fd_dev_size=67108864 >$C/core/fileio_1/disk1/control
  echo 1 >$C/core/fileio_1/disk1/enable || return 1
  echo 5eed0000-0000-4000-8000-000000000001 >$C/core/fileio_1/disk1/wwn/vpd_unit_serial
  echo 1 >$C/core/fileio_1/disk1/attrib/emulate_tpu
  echo 1 >$C/core/fileio_1/disk1/attrib/emulate_tpws
  n=1
  for w in $WWN1 $WWN2; do
    tpg=$C/xen-pvscsi/$w/tpgt_1
    mkdir -p $tpg/lun/lun_0 $tpg/lun/lun_1 || return 1
    ln -s $C/core/rd_mcp_0/disk0 $tpg/lun/lun_0/disk0 || return 1
    ln -s $C/core/fileio_1/disk1 $tpg/lun/lun_1/disk1 || return 1
    echo naa.500140500000100$n >$tpg/nexus || return 1
    [ -e $tpg/enable ] && echo 1 >$tpg/enable
    n=$((n+1))
  done
  find $C/xen-pvscsi -maxdepth 3 | head -20
  v=0
  for w in $WWN1 $WWN2; do
    BE=/local/domain/0/backend/vscsi/$DOMID/$v
    FE=/local/domain/$DOMID/device/vscsi/$v
    # both directories first, empty, with their final permissions ...
    xenstore-write $BE "" && xenstore-chmod $BE n0 r$DOMID || return 1
    xenstore-write $FE "" && xenstore-chmod $FE n$DOMID r0 || return 1
    # ... then every key of both sides in one transaction
    xenstore-write \
      $BE/frontend $FE $BE/frontend-id $DOMID $BE/online 1 $BE/feature-host 0 \
      $BE/vscsi-devs/dev-0/p-dev $w:0 $BE/vscsi-devs/dev-0/v-dev 0:0:0:0 $BE/vscsi-devs/dev-0/state 1 \
      $BE/vscsi-devs/dev-1/p-dev $w:1 $BE/vscsi-devs/dev-1/v-dev 0:0:0:1 $BE/vscsi-devs/dev-1/state 1 \
      $BE/state 1 \
      $FE/backend $BE $FE/backend-id 0 $FE/state 1 || return 1
    v=$((v+1))
  done
  [ -n "$DOMID2" ] && { guest2_start || return 1; }
  echo "LIO xen-pvscsi targets $WWN1 $WWN2 ready"
}
target_stop() { :; }

# guest2_start: the second guest ($DOMID2, booted for the guests suite) on
# a third LIO target with a ramdisk of its own as LUN 0.
guest2_start() {
  C=/sys/kernel/config/target
  mkdir -p $C/core/rd_mcp_2/disk2
  echo rd_pages=8192 >$C/core/rd_mcp_2/disk2/control
  echo 1 >$C/core/rd_mcp_2/disk2/enable || return 1
  tpg=$C/xen-pvscsi/$WWN3/tpgt_1
  mkdir -p $tpg/lun/lun_0 || return 1
  ln -s $C/core/rd_mcp_2/disk2 $tpg/lun/lun_0/disk2 || return 1
  echo naa.5001405000001003 >$tpg/nexus || return 1
  [ -e $tpg/enable ] && echo 1 >$tpg/enable
  BE=/local/domain/0/backend/vscsi/$DOMID2/0
  FE=/local/domain/$DOMID2/device/vscsi/0
  xenstore-write $BE "" && xenstore-chmod $BE n0 r$DOMID2 || return 1
  xenstore-write $FE "" && xenstore-chmod $FE n$DOMID2 r0 || return 1
  xenstore-write \
    $BE/frontend $FE $BE/frontend-id $DOMID2 $BE/online 1 $BE/feature-host 0 \
    $BE/vscsi-devs/dev-0/p-dev $WWN3:0 $BE/vscsi-devs/dev-0/v-dev 0:0:0:0 $BE/vscsi-devs/dev-0/state 1 \
    $BE/state 1 \
    $FE/backend $BE $FE/backend-id 0 $FE/state 1 || return 1
  echo "LIO xen-pvscsi target $WWN3 for guest2 ready"
}
