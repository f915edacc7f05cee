# pr — SCSI-3 persistent reservations from two initiators (I_T nexuses) on
# one LUN: register, reserve, conflict, preempt, clear, with each
# initiator's view. Devices: SG1 (initiator A), SG1B (initiator B).
TESTS="register:t_register:60 reserve:t_reserve:60 conflict:t_conflict:60
preempt:t_preempt:60 clear:t_clear:60"

keys() { sg_persist -n --in --read-keys "$1" 2>&1; }
resv() { sg_persist -n --in --read-reservation "$1" 2>&1; }
show() { echo "--- A view"; keys "$SG1"; resv "$SG1"; echo "--- B view"; keys "$SG1B"; resv "$SG1B"; }
wr() { # sg device -> exit status of a one-block write
  pattern=/tmp/pr.blk; head -c 512 /dev/zero >$pattern
  sg_dd if=$pattern of="$1" bs=512 count=1 seek=300 >/tmp/wr.out 2>&1; r=$?
  cat /tmp/wr.out; return $r
}

t_register() {
  # start from a clean state (ignore errors: nothing may be registered)
  sg_persist -n --out --register-ignore --param-sark=0xa "$SG1"
  sg_persist -n --out --clear --param-rk=0xa "$SG1"
  check "A register failed" sg_persist -n --out --register --param-sark=0xa "$SG1"
  check "B register failed" sg_persist -n --out --register --param-sark=0xb "$SG1B"
  show >/tmp/show; cat /tmp/show
  for v in "$SG1" "$SG1B"; do
    keys "$v" | grep -q '0xa' || fail "key 0xa not seen through $v"
    keys "$v" | grep -q '0xb' || fail "key 0xb not seen through $v"
  done
  detail "both keys seen by both initiators"
}

t_reserve() {
  check "A reserve (WE) failed" sg_persist -n --out --reserve --param-rk=0xa --prout-type=1 "$SG1"
  show
  resv "$SG1B" | grep -qi 'Key=0xa' || fail "B does not see A's reservation"
  resv "$SG1B" | grep -qi 'Write Exclusive' || fail "B does not see type Write Exclusive"
  resv "$SG1" | grep -qi 'Key=0xa' || fail "A does not see its reservation"
  detail "A holds Write Exclusive, seen by A and B"
}

t_conflict() {
  wr "$SG1" || fail "holder A cannot write"
  wr "$SG1B"; r=$?
  [ $r -ne 0 ] || fail "B wrote through A's Write Exclusive reservation"
  grep -qi 'conflict' /tmp/wr.out || [ $r -eq 24 ] || fail "B's write failed but not with RESERVATION CONFLICT (rc=$r)"
  check "B cannot read" sg_dd if="$SG1B" of=/dev/null bs=512 count=1 skip=300
  detail "holder writes, other initiator gets RESERVATION CONFLICT, reads allowed"
}

t_preempt() {
  check "B preempt failed" sg_persist -n --out --preempt --param-rk=0xb --param-sark=0xa --prout-type=1 "$SG1B"
  show
  keys "$SG1" | grep -q '0xa' && fail "A's key still registered after preempt"
  keys "$SG1" | grep -q '0xb' || fail "A does not see B's key"
  resv "$SG1" | grep -qi 'Key=0xb' || fail "A does not see B's reservation"
  wr "$SG1"; r=$?
  [ $r -ne 0 ] || fail "preempted A can still write"
  wr "$SG1B" || fail "new holder B cannot write"
  detail "B preempted A: A's key removed, B holds, A conflicts"
}

t_clear() {
  check "B clear failed" sg_persist -n --out --clear --param-rk=0xb "$SG1B"
  show >/tmp/show; cat /tmp/show
  for v in "$SG1" "$SG1B"; do
    keys "$v" | grep -qE '0xa|0xb' && fail "keys left after clear ($v)"
    resv "$v" | grep -qi 'Key=' && fail "reservation left after clear ($v)"
  done
  wr "$SG1" || fail "A cannot write after clear"
  detail "no keys, no reservation, both can write"
}
