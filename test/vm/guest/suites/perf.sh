# perf — throughput numbers (recorded, not judged): 4k random read at QD32
# and 1 MiB sequential read, on DISK0 (LUN 0, memory-backed).
TESTS="randread_4k_qd32:t_rr:120 seqread_1m:t_seq:120"

fio_terse() { # extra fio args...
  fio --name=perf --filename="$DISK0" --direct=1 --ioengine=libaio --time_based \
      --runtime=6 --ramp_time=1 --output-format=terse --terse-version=3 "$@" >/tmp/perf 2>&1 ||
    { cat /tmp/perf; fail "fio failed"; }
  cat /tmp/perf
  # terse v3: field 7 = read bandwidth KiB/s, field 8 = read IOPS
  set -- $(awk -F';' 'NF>8{print $8, $7; exit}' /tmp/perf)
  [ -n "$1" ] || fail "no fio result"
  IOPS=$1 BWK=$2
}
t_rr() {
  fio_terse --rw=randread --bs=4k --iodepth=32
  detail "iops=$IOPS bw_kib=$BWK"
}
t_seq() {
  fio_terse --rw=read --bs=1m --iodepth=4
  detail "iops=$IOPS bw_mib=$((BWK / 1024))"
}
