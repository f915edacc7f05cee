# identity — standard INQUIRY, VPD pages, capacity, LUN list, opcodes.
# Devices: SG0 (LUN 0 through initiator A).
TESTS="inquiry:t_inquiry:45 vpd_00:t_vpd_00:45 vpd_80:t_vpd_80:45 vpd_83:t_vpd_83:45
vpd_b0:t_vpd_b0:45 vpd_b1:t_vpd_b1:45 vpd_b2:t_vpd_b2:45 readcap:t_readcap:45
luns:t_luns:45 opcodes:t_opcodes:45"

t_inquiry() {
  check "sg_inq failed" sg_inq "$SG0" >/tmp/inq
  cat /tmp/inq
  v=$(sed -n 's/.*Vendor identification: *//p' /tmp/inq)
  p=$(sed -n 's/.*Product identification: *//p' /tmp/inq)
  [ -n "$v" ] || fail "no vendor identification"
  detail "$v / $p"
}

vpd() { # page: must be listed in page 0x00 and decode
  sg_vpd -p 0x00 "$SG0" >/tmp/vpd00 2>&1; cat /tmp/vpd00
  check "sg_vpd -p $1 failed" sg_vpd -p "$1" "$SG0" >/tmp/vpd 2>&1
  cat /tmp/vpd
  detail "$(grep -v '^+' /tmp/vpd | sed -n '1s/ VPD page.*//p')"
}
t_vpd_00() {
  check "sg_vpd -p 0x00 failed" sg_vpd -p 0x00 "$SG0" >/tmp/vpd 2>&1
  cat /tmp/vpd
  detail "pages: $(sed -n 's/.*\[\([a-z0-9]*\)\]$/\1/p' /tmp/vpd | tr '\n' ' ')"
}
t_vpd_80() { vpd 0x80; }
t_vpd_83() { vpd 0x83; grep -qiE 'designator|naa|T10' /tmp/vpd || fail "no designators"; }
t_vpd_b0() { vpd 0xb0; }
t_vpd_b1() { vpd 0xb1; }
t_vpd_b2() { vpd 0xb2; }

t_readcap() {
  check "sg_readcap -l failed" sg_readcap -l "$SG0" >/tmp/rc 2>&1
  cat /tmp/rc
  bs=$(sed -n 's/.*Logical block length=\([0-9]*\).*/\1/p' /tmp/rc)
  bytes=$(sed -n 's/.*Device size: \([0-9]*\) bytes.*/\1/p' /tmp/rc)
  [ -n "$bs" ] && [ -n "$bytes" ] || fail "cannot parse capacity"
  [ "$bytes" -ge 67108864 ] || fail "capacity $bytes < 64 MiB"
  detail "block=$bs bytes=$bytes"
}

t_luns() {
  check "sg_luns failed" sg_luns "$SG0" >/tmp/luns 2>&1
  cat /tmp/luns
  n=$(grep -cE '^ +[0-9a-f]{16}' /tmp/luns)
  [ "$n" -ge 2 ] || fail "expected >= 2 LUNs, got $n"
  detail "$n luns"
}

t_opcodes() {
  check "sg_opcodes failed" sg_opcodes "$SG0" >/tmp/ops 2>&1
  cat /tmp/ops
  n=$(grep -cE '^ *[0-9a-f]{2}( |,)' /tmp/ops)
  detail "$n opcodes reported"
}
