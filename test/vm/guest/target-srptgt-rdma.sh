# target-srptgt-rdma.sh — srptgt on the RDMA transport. The config is
# /etc/srptgt.yaml (from test/vm/config/srptgt-rdma.yaml).
target_start() {
  mkdir -p /srv
  command -v srptgt || return 1
  srptgt version
  srptgt serve --config /etc/srptgt.yaml >/tmp/srptgt.log 2>&1 &
  echo $! >/tmp/srptgt.pid
  sleep 2
  kill -0 "$(cat /tmp/srptgt.pid)" || { cat /tmp/srptgt.log; echo "srptgt exited"; return 1; }
  cat /tmp/srptgt.log
}
target_stop() {
  [ -f /tmp/srptgt.pid ] && kill "$(cat /tmp/srptgt.pid)" 2>/dev/null
  echo "SRPTGT-LOG-BEGIN setup/srptgt-daemon"; sed 's/^/| /' /tmp/srptgt.log; echo "SRPTGT-LOG-END setup/srptgt-daemon"
}
