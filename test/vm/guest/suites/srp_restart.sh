# srp_restart — kill -9 the target under a running fio --verify job on the
# file LU (DISK1): the kernel initiator must reconnect by itself to the
# restarted daemon and the job must complete with verified data.
TESTS="kill9_during_fio_verify:t_kill9:300"
. /vm/env # TARGET

t_kill9() {
  if [ "$TARGET" != srptgt ]; then
    detail "n/a: the reference target runs in the kernel"
    exit 77
  fi
  for p in /sys/class/srp_remote_ports/port-*; do
    # retry the login every 2 s (default 10); keep I/O queued meanwhile
    echo 2 >"$p/reconnect_delay"
    echo "$p: reconnect_delay $(cat $p/reconnect_delay) fast_io_fail_tmo $(cat $p/fast_io_fail_tmo) dev_loss_tmo $(cat $p/dev_loss_tmo)"
  done
  fio --name=kill9 --filename="$DISK1" --direct=1 --ioengine=libaio --rw=randwrite \
      --bs=4k --iodepth=8 --size=32m --verify=crc32c --do_verify=1 --verify_fatal=1 \
      --randrepeat=0 >/tmp/fio_k9 2>&1 &
  fp=$!
  sleep 4
  kill -0 $fp 2>/dev/null || { cat /tmp/fio_k9; fail "fio ended before the kill"; }
  pid=$(cat /tmp/srptgt.pid)
  before=$(dmesg | wc -l)
  echo "+ kill -9 $pid (srptgt)"
  kill -9 "$pid"
  sleep 1
  echo "+ srptgt serve (restart)"
  srptgt serve --config /etc/srptgt.yaml >>/tmp/srptgt.log 2>&1 &
  echo $! >/tmp/srptgt.pid
  t0=$(date +%s)
  wait $fp; rc=$?
  cat /tmp/fio_k9
  dmesg | tail -n +$((before + 1)) >/tmp/k9.dmesg
  cat /tmp/k9.dmesg
  [ $rc -eq 0 ] || fail "fio --verify failed across the restart (rc=$rc)"
  grep -q "verify" /tmp/fio_k9 || true
  grep -qiE 'reconnect succeeded|reconnect' /tmp/k9.dmesg || fail "no reconnect in the kernel log"
  detail "srptgt killed 4s into fio randwrite+verify; $(grep -m1 -i 'reconnect succeeded' /tmp/k9.dmesg | sed 's/^\[[^]]*\] *//'); fio verified 32 MiB ($(($(date +%s) - t0))s after the restart)"
}
