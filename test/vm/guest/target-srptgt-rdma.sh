# target-srptgt-rdma.sh — srptgt on the RDMA transport. The config is
# /etc/srptgt.yaml (from test/vm/config/srptgt-rdma.yaml).
target_start() {
  mkdir -p /srv
  command -v srptgt || return 1
  srptgt version
  srptgt serve --config /etc/srptgt.yaml >/tmp/srptgt.log 2>&1 &
  echo $! >/tmp/srptgt.pid
  # relay the daemon's log to the console as it is written (the Go driver
  # keeps the console log), so a hang or a crash can be diagnosed
  tail -f /tmp/srptgt.log 2>/dev/null | sed 's/^/srptgt-daemon: /' >/dev/console 2>&1 &
  sleep 2
  kill -0 "$(cat /tmp/srptgt.pid)" || { cat /tmp/srptgt.log; echo "srptgt exited"; return 1; }
  cat /tmp/srptgt.log
}
target_stop() {
  [ -f /tmp/srptgt.pid ] && kill "$(cat /tmp/srptgt.pid)" 2>/dev/null
  sleep 1
}
