# data — fio write+verify at several block sizes and queue depths, and a
# file system round trip. Devices: DISK0 (LUN 0), DISK1 (LUN 1).
TESTS="fio_4k_qd1:t_fio_4k_qd1:180 fio_4k_qd32:t_fio_4k_qd32:180 fio_64k_qd8:t_fio_64k_qd8:180
fio_1m_qd4:t_fio_1m_qd4:180 mkfs_ext4:t_mkfs:300"

fio_verify() { # bs iodepth size
  echo "+ fio randwrite+verify bs=$1 iodepth=$2 size=$3 on $DISK0"
  fio --name=verify --filename="$DISK0" --direct=1 --ioengine=libaio \
      --rw=randwrite --bs="$1" --iodepth="$2" --size="$3" \
      --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_dump=1 \
      --randrepeat=0 --eta=never 2>&1
  rc=$?
  [ $rc -eq 0 ] || fail "fio verify bs=$1 qd=$2 failed (rc=$rc)"
  detail "bs=$1 qd=$2 size=$3 verified"
}
t_fio_4k_qd1()  { fio_verify 4k 1 2m; }
t_fio_4k_qd32() { fio_verify 4k 32 8m; }
t_fio_64k_qd8() { fio_verify 64k 8 16m; }
t_fio_1m_qd4()  { fio_verify 1m 4 32m; }

t_mkfs() {
  check "mkfs.ext4 failed" mkfs.ext4 -F -q "$DISK1"
  mkdir -p /mnt/t
  check "mount failed" mount -t ext4 "$DISK1" /mnt/t
  dd if=/dev/urandom of=/tmp/big bs=1M count=8 2>/dev/null
  cp /tmp/big /mnt/t/big || fail "copy failed"
  mkdir -p /mnt/t/small
  i=0; while [ $i -lt 200 ]; do echo "file $i of 200" >/mnt/t/small/f$i; i=$((i+1)); done
  (cd /mnt/t && md5sum big small/* >/tmp/sums)
  check "umount failed" umount /mnt/t
  check "remount failed" mount -t ext4 -o ro "$DISK1" /mnt/t
  (cd /mnt/t && md5sum -c /tmp/sums >/tmp/sumcheck 2>&1) || { cat /tmp/sumcheck; umount /mnt/t; fail "file contents differ after remount"; }
  check "umount failed" umount /mnt/t
  check "e2fsck -fn reported problems" e2fsck -fn "$DISK1"
  detail "mkfs+mount+201 files+fsck clean"
}
