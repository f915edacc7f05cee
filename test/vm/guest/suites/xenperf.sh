# xenperf — the Xen transport's performance points (recorded, not judged):
# 4k random read at QD16 and 1 MiB sequential read at QD4 on DISK0 (LUN 0,
# memory-backed), as fio in the guest sees them. Any target.
TESTS="randread_4k_qd16:t_rr16:120 seqread_1m_qd4:t_seq4:120"

xp_fio() { # extra fio args...
  fio --name=xperf --filename="$DISK0" --direct=1 --ioengine=libaio --time_based \
      --runtime=10 --ramp_time=2 --output-format=terse --terse-version=3 "$@" >/tmp/xperf 2>&1 ||
    { cat /tmp/xperf; fail "fio failed"; }
  cat /tmp/xperf
  set -- $(awk -F';' 'NF>8{print $8, $7; exit}' /tmp/xperf)
  [ -n "$1" ] || fail "no fio result"
  IOPS=$1 BWK=$2
}
t_rr16() {
  xp_fio --rw=randread --bs=4k --iodepth=16
  detail "iops=$IOPS bw_kib=$BWK"
}
t_seq4() {
  xp_fio --rw=read --bs=1m --iodepth=4
  detail "iops=$IOPS bw_mib=$((BWK / 1024))"
}
