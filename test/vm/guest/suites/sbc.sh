# sbc — SBC extras on LUN 1 (thin provisioning enabled): UNMAP, WRITE SAME
# (with and without UNMAP), COMPARE AND WRITE (match and miscompare),
# SYNCHRONIZE CACHE. Devices: SG1.
TESTS="unmap:t_unmap:60 write_same:t_write_same:60 write_same_unmap:t_write_same_unmap:60
compare_and_write:t_caw:60 caw_miscompare:t_caw_miscompare:60 sync_cache:t_sync:60"

pattern() { # byte-char count file
  head -c "$2" /dev/zero | tr '\000' "$1" >"$3"
}

rdblk() { # lba count -> /tmp/r
  rm -f /tmp/r
  check "read back failed" sg_dd if="$SG1" of=/tmp/r bs=512 count="$2" skip="$1"
}

t_unmap() {
  pattern 'U' 8192 /tmp/u
  check "sg_dd write failed" sg_dd if=/tmp/u of="$SG1" bs=512 count=16 seek=16
  check "sg_unmap failed" sg_unmap --force --lba=16 --num=16 "$SG1"
  sg_vpd -p 0xb2 "$SG1" >/tmp/b2 2>&1; cat /tmp/b2
  if grep -q 'LBPRZ.*1\|Logical block provisioning read zeros.*1\|read zeros (lbprz): 1' /tmp/b2; then
    rdblk 16 16
    head -c 8192 /dev/zero >/tmp/z
    cmp /tmp/r /tmp/z || fail "unmapped blocks do not read zeros although LBPRZ=1"
    detail "unmapped 16 blocks, read back zeros (LBPRZ=1)"
  else
    detail "unmapped 16 blocks"
  fi
}

t_write_same() {
  check "sg_write_same --ff failed" sg_write_same --ff --lba=64 --num=8 "$SG1"
  rdblk 64 8
  pattern '\377' 4096 /tmp/ff
  cmp /tmp/r /tmp/ff || fail "blocks do not hold the 0xff pattern"
  detail "8 blocks of 0xff written and read back"
}

t_write_same_unmap() {
  check "sg_write_same --unmap failed" sg_write_same --unmap --lba=32 --num=16 "$SG1"
  detail "write same with UNMAP bit on 16 blocks"
}

caw_setup() {
  pattern 'A' 512 /tmp/a; pattern 'B' 512 /tmp/b
  cat /tmp/a /tmp/b >/tmp/cw
  check "sg_dd write failed" sg_dd if=/tmp/a of="$SG1" bs=512 count=1 seek=100
}
t_caw() {
  caw_setup
  check "sg_compare_and_write failed" sg_compare_and_write --in=/tmp/cw --lba=100 --num=1 --xferlen=1024 "$SG1"
  rdblk 100 1
  cmp /tmp/r /tmp/b || fail "block not replaced after a matching compare"
  detail "compare matched, block replaced"
}
t_caw_miscompare() {
  caw_setup
  check "sg_dd write failed" sg_dd if=/tmp/b of="$SG1" bs=512 count=1 seek=100
  # the medium now holds B, the compare data is A: MISCOMPARE (exit 14)
  expect_rc 14 "expected MISCOMPARE" sg_compare_and_write --in=/tmp/cw --lba=100 --num=1 --xferlen=1024 "$SG1"
  rdblk 100 1
  cmp /tmp/r /tmp/b || fail "block changed despite the miscompare"
  detail "miscompare reported, block unchanged"
}

t_sync() {
  check "sg_sync failed" sg_sync "$SG1"
  check "sg_sync --immed failed" sg_sync --immed "$SG1"
  detail "synchronize cache ok"
}
