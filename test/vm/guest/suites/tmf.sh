# tmf — task management: LOGICAL UNIT RESET (sg_reset -d) while I/O runs,
# then the LUN must still work. Devices: DISK0, SG0 (and DISK0B, the same
# LUN through the xen profile's second virtual host).
#
# In the xen profile the background I/O runs through the guest's second
# virtual SCSI host (initiator B) while the reset goes through the first
# (initiator A): a LOGICAL UNIT RESET ends every nexus's tasks on the LU,
# so B's commands are caught by it all the same. It cannot be A's own I/O:
# Debian 12's xen-scsifront (6.1) completes commands with the host lock
# held, and a completion that arrives while its host has a reset in
# progress (shost->tmf_in_progress) takes that lock again in
# scsi_dec_host_busy — a one-vCPU guest then spins with events masked for
# good. That is a guest bug whatever the backend (docs/xen.md); a fast
# in-kernel backend merely makes the window rarer.
TESTS="lun_reset_during_io:t_lun_reset:180"

t_lun_reset() {
  io=$DISK0
  . /vm/env
  [ "$PROFILE" = xen ] && io=$DISK0B
  fio --name=bg --filename="$io" --direct=1 --ioengine=libaio --rw=randrw \
      --bs=4k --iodepth=16 --time_based --runtime=8 >/tmp/fio_bg 2>&1 &
  fp=$!
  sleep 2
  echo "+ sg_reset -d $SG0 (I/O on $io)"
  sg_reset -d "$SG0"; rrc=$?
  wait $fp; frc=$?
  cat /tmp/fio_bg
  dmesg | tail -20
  [ $rrc -eq 0 ] || fail "sg_reset -d failed (rc=$rrc)"
  sg_turs "$SG0" >/dev/null 2>&1 || sg_turs "$SG0" || fail "LUN not ready after reset"
  fio --name=after --filename="$DISK0" --direct=1 --ioengine=libaio --rw=randwrite \
      --bs=4k --iodepth=8 --size=2m --verify=crc32c --do_verify=1 --verify_fatal=1 >/tmp/fio_after 2>&1 ||
    { cat /tmp/fio_after; fail "I/O after reset failed"; }
  [ $frc -eq 0 ] || fail "I/O caught by the reset failed (fio rc=$frc)"
  detail "reset ok during I/O on $io, LUN verified after"
}
