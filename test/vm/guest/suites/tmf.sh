# tmf — task management: LOGICAL UNIT RESET (sg_reset -d) while I/O runs,
# then the LUN must still work. Devices: DISK0, SG0.
TESTS="lun_reset_during_io:t_lun_reset:180"

t_lun_reset() {
  fio --name=bg --filename="$DISK0" --direct=1 --ioengine=libaio --rw=randrw \
      --bs=4k --iodepth=16 --time_based --runtime=8 >/tmp/fio_bg 2>&1 &
  fp=$!
  sleep 2
  echo "+ sg_reset -d $SG0"
  sg_reset -d "$SG0"; rrc=$?
  wait $fp; frc=$?
  cat /tmp/fio_bg
  dmesg | tail -20
  [ $rrc -eq 0 ] || fail "sg_reset -d failed (rc=$rrc)"
  sg_turs "$SG0" >/dev/null 2>&1 || sg_turs "$SG0" || fail "LUN not ready after reset"
  fio --name=after --filename="$DISK0" --direct=1 --ioengine=libaio --rw=randwrite \
      --bs=4k --iodepth=8 --size=2m --verify=crc32c --do_verify=1 --verify_fatal=1 >/tmp/fio_after 2>&1 ||
    { cat /tmp/fio_after; fail "I/O after reset failed"; }
  detail "reset ok during I/O (fio rc=$frc), LUN verified after"
}
