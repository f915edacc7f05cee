# srp_bench — srptgt bench: the Go SRP initiator over real verbs (rdma_rxe),
# against the daemon in the same VM.
TESTS="bench_randread_4k_qd32:t_bench_rr:120 bench_randrw_verify:t_bench_verify:120"
. /vm/env # TARGET

bench() {
  if [ "$TARGET" != srptgt ]; then
    detail "n/a: needs srptgt bench (the reference target has no ACL for its initiator port)"
    exit 77
  fi
  echo "+ srptgt bench $*"
  srptgt bench --rdma 169.254.10.1:5000 "$@" >/tmp/bench.out 2>/tmp/bench.err
  rc=$?
  cat /tmp/bench.out
  tail -3 /tmp/bench.err
  [ $rc -eq 0 ] || fail "srptgt bench failed (rc=$rc): $(tail -1 /tmp/bench.err)"
}

t_bench_rr() {
  bench --lun disk0 --rw randread --bs 4k --iodepth 32 --time 5s
  detail "$(grep -m1 'IOPS=' /tmp/bench.out | sed 's/^ *//')"
}

t_bench_verify() {
  bench --lun 1 --rw randrw --bs 16k --iodepth 8 --time 5s --verify --size 16m
  grep -q 'verify: [1-9][0-9]* blocks checked, 0 mismatches' /tmp/bench.out || fail "no verified blocks"
  detail "$(grep -m1 'verify:' /tmp/bench.out | sed 's/^ *//')"
}
