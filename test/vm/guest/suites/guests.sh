# guests — two guests at once (xen profile only). A second PV guest,
# guest2, boots next to guest1 with its own virtual SCSI host whose LUN 0
# is a LU of its own (disk2), and writes and verifies while guest1 runs
# its suites. guest2 runs this suite (xen-domu.sh); guest1 skips it.
# Devices (in guest2): DISK0, SG0.
TESTS="second_guest_io:t_second_guest:300"

t_second_guest() {
  start=$(date +%s); t0=$(date -u +%H:%M:%S); n=0
  sg_inq "$SG0" | grep -E "Vendor|Product" || fail "INQUIRY of guest2's LUN failed"
  # verified rounds for at least 40 s (guest1 is in its data suite then)
  while [ $(( $(date +%s) - start )) -lt 40 ]; do
    echo "+ round $((n+1)): fio randwrite+verify bs=4k qd=8 size=4m offset=$((n % 8 * 4))m on $DISK0"
    fio --name=g2 --filename="$DISK0" --direct=1 --ioengine=libaio \
        --rw=randwrite --bs=4k --iodepth=8 --size=4m --offset=$((n % 8 * 4))m \
        --verify=crc32c --do_verify=1 --verify_fatal=1 --randrepeat=0 --eta=never >/tmp/g2 2>&1
    rc=$?
    grep -E "err=|IOPS=" /tmp/g2
    [ $rc -eq 0 ] || { cat /tmp/g2; fail "guest2's fio verify failed in round $((n+1)) (rc=$rc)"; }
    n=$((n+1))
  done
  detail "guest2: $n verified 4 MiB rounds on its own LUN, $t0-$(date -u +%H:%M:%S) UTC, beside guest1"
}
