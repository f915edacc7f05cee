# cross — one LU, two transports (xen profile, srptgt). dom0 logs in to
# srptgt over soft RoCE with the kernel's ib_srp and sees the LU the guest
# has as LUN 1 (disk1); a persistent reservation taken through one
# transport blocks writes through the other. dom0 acts on the
# SRPTGT-XENCTL cross-* requests this suite prints (target-srptgt-xen.sh);
# the guest reads the outcome from the LU (READ RESERVATION / READ KEYS).
# Devices: SG1 (the guest's LUN 1).
TESTS="rdma_holds_guest_blocked:t_rdma_holds:180 guest_holds_rdma_blocked:t_guest_holds:180"

# until_in SECS RE CMD...: poll CMD's output until it matches RE
until_in() {
  lim=$1 what=$2; shift 2; i=0
  while [ $i -lt "$lim" ]; do
    "$@" >/tmp/poll 2>&1; grep -qiE -- "$what" /tmp/poll && { cat /tmp/poll; return 0; }
    i=$((i+1)); sleep 1
  done
  cat /tmp/poll; return 1
}
wr() { head -c 512 /dev/zero >/tmp/c.blk; sg_dd if=/tmp/c.blk of="$1" bs=512 count=1 seek=500 >/tmp/wr.out 2>&1; r=$?; cat /tmp/wr.out; return $r; }
clean() { # no registrations, no reservation on LUN 1
  sg_persist -n --out --register-ignore --param-sark=0xe0 "$SG1" >/dev/null 2>&1
  sg_persist -n --out --clear --param-rk=0xe0 "$SG1" >/dev/null 2>&1
}

t_rdma_holds() {
  na_unless_srptgt "the reference target has no ib_srp set-up in dom0"
  clean
  wr "$SG1" || fail "the guest cannot write LUN 1 before the test"
  xenctl cross-reserve
  until_in 60 "Key=0xd0" sg_persist -n --in --read-reservation "$SG1" ||
    fail "dom0's reservation (key 0xd0 over RDMA) never showed on the guest's nexus"
  wr "$SG1"; r=$?
  [ $r -ne 0 ] && { grep -qi conflict /tmp/wr.out || [ $r -eq 24 ]; } ||
    fail "the guest's write went through while ib_srp holds Write Exclusive (rc=$r)"
  sg_dd if="$SG1" of=/dev/null bs=512 count=1 skip=500 || fail "the guest's read was refused under Write Exclusive"
  xenctl cross-release
  i=0; while sg_persist -n --in --read-reservation "$SG1" | grep -qi "Key=0xd0"; do
    i=$((i+1)); [ $i -gt 60 ] && fail "dom0 did not release"; sleep 1
  done
  wr "$SG1" || fail "the guest cannot write after dom0 released"
  detail "ib_srp (dom0, RDMA) holds WE: the guest's vscsiif write gets RESERVATION CONFLICT, its read passes; writes again after the release"
}

t_guest_holds() {
  na_unless_srptgt "the reference target has no ib_srp set-up in dom0"
  clean
  check "guest register 0xe0" sg_persist -n --out --register --param-sark=0xe0 "$SG1"
  check "guest reserve WE" sg_persist -n --out --reserve --param-rk=0xe0 --prout-type=1 "$SG1"
  xenctl cross-write
  until_in 60 "0xc0|0x0c" sg_persist -n --in --read-keys "$SG1" ||
    fail "no answer from dom0's write over RDMA"
  grep -qi 0x0c /tmp/poll && fail "dom0's write over RDMA went through while the guest holds Write Exclusive"
  wr "$SG1" || fail "the holder cannot write"
  clean
  detail "the guest (vscsiif) holds WE: ib_srp's write in dom0 gets RESERVATION CONFLICT, the holder writes"
}
