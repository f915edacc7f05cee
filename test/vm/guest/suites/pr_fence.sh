# pr_fence — the SCSI persistent reservation sequence of Pacemaker's
# fence_scsi (fence-agents) from two initiators (I_T nexuses) on one LUN:
# first step by step with the sg_persist calls fence_scsi makes, checking
# each initiator's view after each, then the agent itself (fence_agent,
# rdma image: python3.11 + fence-agents): "on" registers the node's key
# with REGISTER AND IGNORE EXISTING KEY and, if there is no reservation,
# reserves Write Exclusive – Registrants Only (type 5); "off" fences a
# node with PREEMPT AND ABORT of its key. Plus what each initiator reads
# back (READ FULL STATUS with SRP TransportIDs, REPORT CAPABILITIES) and
# two error cases of SPC-4. Devices: SG1 (initiator A), SG1B (B).
TESTS="on_a:t_on_a:60 on_b:t_on_b:60 both_write:t_both_write:60 off_b:t_off_b:60
full_status:t_full_status:60 capabilities:t_caps:60 invalid_release:t_invalid_release:60
unfence_b:t_unfence_b:60 clear:t_clear:60 fence_agent:t_fence_agent:240"

KA=0xf1a KB=0xf2b
keys() { sg_persist -n --in --read-keys "$1" 2>&1; }
wr() { # sg device -> exit status of a one-block write at LBA 400
  head -c 512 /dev/zero >/tmp/f.blk
  sg_dd if=/tmp/f.blk of="$1" bs=512 count=1 seek=400 >/tmp/wr.out 2>&1; r=$?
  cat /tmp/wr.out; return $r
}
rd() { sg_dd if="$1" of=/dev/null bs=512 count=1 skip=400 >/tmp/rd.out 2>&1; r=$?; cat /tmp/rd.out; return $r; }
conflict() { grep -qi 'conflict' /tmp/wr.out || [ "$1" -eq 24 ]; }

t_on_a() {
  # a clean start: unit attentions an earlier suite left pending (a target
  # restart: POWER ON, RESET) are taken first, sg_persist does not retry
  for d in "$SG1" "$SG1B"; do
    i=0; until sg_turs "$d" >/dev/null 2>&1 || [ $i -ge 4 ]; do i=$((i+1)); done
  done
  # and whatever reservation an earlier suite left
  sg_persist -n --out --register-ignore --param-sark=$KA "$SG1" >/dev/null 2>&1
  sg_persist -n --out --clear --param-rk=$KA "$SG1" >/dev/null 2>&1
  # fence_scsi "on" for node A: register, and reserve (type 5) since
  # there is no reservation yet
  check "A register-ignore" sg_persist -n --out --register-ignore --param-sark=$KA "$SG1"
  check "A reserve WE-RO" sg_persist -n --out --reserve --param-rk=$KA --prout-type=5 "$SG1"
  sg_persist -n --in --read-reservation "$SG1B" | tee /tmp/r
  grep -qi 'Key=0xf1a' /tmp/r || fail "B does not see A's reservation key"
  grep -qi 'registrants only' /tmp/r || fail "B does not see type Write Exclusive, registrants only"
  detail "A registered 0xf1a and holds WE-RO; B sees it"
}

t_on_b() {
  # fence_scsi "on" for node B: a reservation exists, so only register
  check "B register-ignore" sg_persist -n --out --register-ignore --param-sark=$KB "$SG1B"
  keys "$SG1" | tee /tmp/k
  grep -q '0xf1a' /tmp/k && grep -q '0xf2b' /tmp/k || fail "A does not see both keys"
  detail "both keys registered, seen from A"
}

t_both_write() {
  wr "$SG1" || fail "A cannot write"
  wr "$SG1B" || fail "registered B cannot write under WE-RO"
  detail "both registrants write under Write Exclusive, registrants only"
}

t_off_b() {
  # fence_scsi "off" of node B, run on node A
  check "A preempt-and-abort B" sg_persist -n --out --preempt-abort --param-rk=$KA --param-sark=$KB --prout-type=5 "$SG1"
  # B is told: REGISTRATIONS PREEMPTED (SPC-4 5.12.11.2.6)
  sg_requests "$SG1B" >/tmp/ua 2>&1; cat /tmp/ua
  grep -qi 'registrations preempted' /tmp/ua || fail "B was not told REGISTRATIONS PREEMPTED"
  keys "$SG1B" | tee /tmp/k
  grep -q '0xf2b' /tmp/k && fail "B's key still registered after the fence"
  grep -q '0xf1a' /tmp/k || fail "A's key missing after the fence"
  wr "$SG1B"; r=$?
  [ $r -ne 0 ] || fail "fenced B still writes"
  conflict $r || fail "B's write failed but not with RESERVATION CONFLICT (rc=$r)"
  wr "$SG1" || fail "A cannot write after fencing B"
  rd "$SG1B" || fail "fenced B cannot read (WE-RO lets everyone read)"
  detail "B fenced: its key removed, its writes get RESERVATION CONFLICT, A writes, B reads"
}

t_full_status() {
  sg_persist -n --in --read-full-status "$SG1" | tee /tmp/fs
  # sg_persist names protocol identifier 4h "RDMA" (SRP)
  n=$(grep -ci 'RDMA initiator port identifier\|SRP' /tmp/fs)
  [ "$n" -ge 1 ] || fail "no SRP (RDMA) TransportID in READ FULL STATUS"
  grep -qi 'reservation holder' /tmp/fs || fail "no reservation holder in READ FULL STATUS"
  detail "READ FULL STATUS: $(grep -ci 'Key=' /tmp/fs) registration(s), $n SRP TransportID(s), holder shown"
}

t_caps() {
  check "REPORT CAPABILITIES" sg_persist -n --in --report-capabilities "$SG1B"
  sg_persist -n --in --report-capabilities "$SG1B" >/tmp/c 2>&1
  grep -qi 'Write Exclusive, registrants only' /tmp/c || grep -qi 'WR_EX_RO' /tmp/c || true
  detail "$(grep -i 'PTPL_C\|ATP_C\|SIP_C\|CRH' /tmp/c | tr -s ' \n' ' ' | head -c 200)"
}

t_invalid_release() {
  # SPC-4 5.12.11.2.2: the holder releasing with another type gets
  # INVALID RELEASE OF PERSISTENT RESERVATION; the reservation stays
  sg_persist -n -v --out --release --param-rk=$KA --prout-type=1 "$SG1" >/tmp/rel 2>&1; r=$?
  cat /tmp/rel
  [ $r -ne 0 ] || fail "release with the wrong type succeeded"
  sg_persist -n --in --read-reservation "$SG1" | grep -qi 'Key=0xf1a' || fail "the reservation went away"
  grep -qi 'invalid release' /tmp/rel || fail "not INVALID RELEASE OF PERSISTENT RESERVATION (rc=$r): $(tr '\n' ' ' </tmp/rel | head -c 120)"
  detail "INVALID RELEASE OF PERSISTENT RESERVATION, reservation kept"
}

t_unfence_b() {
  check "B register-ignore" sg_persist -n --out --register-ignore --param-sark=$KB "$SG1B"
  wr "$SG1B" || fail "B cannot write after registering again"
  detail "B unfenced (registered again) writes"
}

t_clear() {
  check "A clear" sg_persist -n --out --clear --param-rk=$KA "$SG1"
  keys "$SG1B" | grep -qE '0xf1a|0xf2b' && fail "keys left after CLEAR"
  wr "$SG1B" || fail "B cannot write after CLEAR"
  detail "CLEAR: no keys, no reservation"
}

# fence_scsi itself, nodes A (LUN 1 through initiator A) and B (through B).
# Both nodes live in this one VM: the agent keeps the key of "its" node in
# /var/run/cluster.key, written by its "on" action, so a node's "on" runs
# right before that node acts.
t_fence_agent() {
  command -v fence_scsi >/dev/null || fail "fence_scsi is not in the image"
  fs() { echo "+ fence_scsi $*"; fence_scsi "$@" 2>&1; }
  sg_persist -n --out --register-ignore --param-sark=0xa1 "$SG1" >/dev/null 2>&1
  sg_persist -n --out --clear --param-rk=0xa1 "$SG1" >/dev/null 2>&1
  fs -d "$DISK1B" -k b2 -o on || fail "fence_scsi on (node B) failed"
  fs -d "$DISK1" -k a1 -o on || fail "fence_scsi on (node A) failed"
  fs -d "$DISK1" -k b2 -o status | tee /tmp/st; grep -q "Status: ON" /tmp/st || fail "B not ON after both nodes' on"
  sg_persist -n --in --read-reservation "$SG1B" | tee /tmp/r
  grep -qi 'registrants only' /tmp/r || fail "the agent's reservation is not Write Exclusive, registrants only"
  wr "$SG1B" || fail "registered node B cannot write"
  # node A fences node B (PREEMPT AND ABORT of B's key, through A)
  fs -d "$DISK1" -k b2 -o off || fail "fence_scsi off (A fences B) failed"
  fs -d "$DISK1" -k b2 -o status | tee /tmp/st; rc=$?
  grep -q "Status: OFF" /tmp/st || fail "B not OFF after the agent fenced it"
  wr "$SG1B"; r=$?; [ $r -ne 0 ] && conflict $r || fail "fenced node B could still write (rc=$r)"
  wr "$SG1" || fail "node A cannot write after fencing B"
  fs -d "$DISK1" -k a1 -o status | tee /tmp/st; grep -q "Status: ON" /tmp/st || fail "A not ON"
  sg_persist -n --out --clear --param-rk=0xa1 "$SG1" >/dev/null 2>&1
  detail "fence_scsi on A and B, A fences B: B OFF and RESERVATION CONFLICT, A ON and writes"
}
