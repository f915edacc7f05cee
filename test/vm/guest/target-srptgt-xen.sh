# target-srptgt-xen.sh — srptgt on the Xen transport, in dom0. The config is
# /etc/srptgt.yaml (from test/vm/config/srptgt-xen.yaml); srptgt writes the
# vscsi XenStore nodes of both sides itself (the harness only created the
# paused guest, $DOMID).
target_start() {
  mkdir -p /srv
  command -v srptgt || return 1
  srptgt version
  srptgt serve --config /etc/srptgt.yaml >/tmp/srptgt.log 2>&1 &
  echo $! >/tmp/srptgt.pid
  # wait (bounded) for srptgt to create the guest's vscsi nodes
  i=0
  while [ $i -lt 100 ]; do
    xenstore-exists /local/domain/$DOMID/device/vscsi/0/backend 2>/dev/null && break
    kill -0 "$(cat /tmp/srptgt.pid)" || { cat /tmp/srptgt.log; echo "srptgt exited"; return 1; }
    sleep 0.2; i=$((i+1))
  done
  cat /tmp/srptgt.log
  xenstore-exists /local/domain/$DOMID/device/vscsi/0/backend || { echo "srptgt did not create the vscsi nodes"; return 1; }
}
target_stop() {
  [ -f /tmp/srptgt.pid ] && kill "$(cat /tmp/srptgt.pid)" 2>/dev/null
  echo "SRPTGT-LOG-BEGIN setup/srptgt-daemon"; sed 's/^/| /' /tmp/srptgt.log; echo "SRPTGT-LOG-END setup/srptgt-daemon"
}
