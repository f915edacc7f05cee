# target-lio-rdma.sh — the reference target: LIO ib_srpt via configfs.
# LUN 0: ramdisk (rd_mcp) 64 MiB; LUN 1: fileio on /srv/disk1.img 64 MiB
# with thin provisioning (UNMAP / WRITE SAME) emulation enabled.
# The SRP port is named by its GID so that LIO names each session by the
# initiator's full SRP port ID (with a name from the GUID it would use the
# initiator's IP address, and the two initiator ports would look alike).
target_start() {
  C=/sys/kernel/config/target
  # LIO writes PR metadata there (a failure is reported as NOT READY)
  mkdir -p /etc/target/pr /etc/target/alua
  modprobe target_core_mod && modprobe target_core_file && modprobe ib_srpt || return 1
  mkdir -p $C/core/rd_mcp_0/disk0
  echo rd_pages=16384 >$C/core/rd_mcp_0/disk0/control
  echo 1 >$C/core/rd_mcp_0/disk0/enable || return 1
  # LIO lists its VPD pages only once a unit serial was set (as targetcli does)
  echo 5eed0000-0000-4000-8000-000000000000 >$C/core/rd_mcp_0/disk0/wwn/vpd_unit_serial
  mkdir -p /srv
  dd if=/dev/zero of=/srv/disk1.img bs=1M count=0 seek=64 2>/dev/null
  mkdir -p $C/core/fileio_1/disk1
  echo fd_dev_name=/srv/disk1.img,fd_dev_size=67108864 >$C/core/fileio_1/disk1/control
  echo 1 >$C/core/fileio_1/disk1/enable || return 1
  echo 5eed0000-0000-4000-8000-000000000001 >$C/core/fileio_1/disk1/wwn/vpd_unit_serial
  echo 1 >$C/core/fileio_1/disk1/attrib/emulate_tpu
  echo 1 >$C/core/fileio_1/disk1/attrib/emulate_tpws
  mkdir -p $C/srpt
  echo 5000 >$C/srpt/discovery_auth/rdma_cm_port || return 1
  gid=$(cat /sys/class/infiniband/rxe_dum0/ports/1/gids/0 | tr -d :)
  port=$C/srpt/0x$gid
  mkdir $port || return 1
  tpg=$port/0x$gid
  mkdir $tpg || { tpg=$port/tpgt_1; mkdir $tpg || return 1; }
  mkdir -p $tpg/lun/lun_0 $tpg/lun/lun_1
  ln -s $C/core/rd_mcp_0/disk0 $tpg/lun/lun_0/disk0 || return 1
  ln -s $C/core/fileio_1/disk1 $tpg/lun/lun_1/disk1 || return 1
  # ib_srpt has no demo mode: one ACL per initiator port ID
  # (initiator_ext + the port GUID), both LUNs mapped read-write
  guid=$(cat /sys/class/infiniband/rxe_dum0/node_guid | tr -d :)
  for ext in 0000000000000001 0000000000000002; do
    acl=$tpg/acls/0x$ext$guid
    mkdir -p $acl/lun_0 $acl/lun_1 || return 1
    ln -s $tpg/lun/lun_0 $acl/lun_0/lun_0 || return 1
    ln -s $tpg/lun/lun_1 $acl/lun_1/lun_1 || return 1
  done
  echo 1 >$tpg/enable || return 1
  echo "LIO ib_srpt port 0x$gid ready"
  find $C/srpt -maxdepth 3 | head -30
}
target_stop() { :; }
