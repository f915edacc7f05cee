# target-srptgt-xen.sh — srptgt on the Xen transport, in dom0. The config is
# /etc/srptgt.yaml (from test/vm/config/srptgt-xen.yaml); srptgt writes the
# vscsi XenStore nodes of both sides itself (the harness only created the
# paused guest, $DOMID).
target_start() {
  mkdir -p /srv
  command -v srptgt || return 1
  srptgt version
  GOTRACEBACK=all srptgt serve --config /etc/srptgt.yaml >/tmp/srptgt.log 2>&1 &
  echo $! >/tmp/srptgt.pid
  # relay the daemon's log to the console as it is written (the Go driver
  # keeps the console log), so a hang or a crash can be diagnosed
  tail -f /tmp/srptgt.log 2>/dev/null | sed 's/^/srptgt-daemon: /' >/dev/console 2>&1 &
  # wait (bounded) for srptgt to create the guest's vscsi nodes
  i=0
  while [ $i -lt 100 ]; do
    xenstore-exists /local/domain/$DOMID/device/vscsi/0/backend 2>/dev/null && break
    kill -0 "$(cat /tmp/srptgt.pid)" || { cat /tmp/srptgt.log; echo "srptgt exited"; return 1; }
    sleep 0.2; i=$((i+1))
  done
  cat /tmp/srptgt.log
  sleep 1
  kill -0 "$(cat /tmp/srptgt.pid)" || { echo "srptgt exited"; return 1; }
  xenstore-exists /local/domain/$DOMID/device/vscsi/0/backend || { echo "srptgt did not create the vscsi nodes"; return 1; }
}
target_stop() {
  [ -f /tmp/srptgt.pid ] && kill "$(cat /tmp/srptgt.pid)" 2>/dev/null
  sleep 1
}

# target_control LOG: act on the SRPTGT-XENCTL requests the guest's xenctl
# suite prints on its console (hot-plug through `srptgt xen`, SIGTERM and
# restart of the daemon); what happened goes to dom0's console.
target_control() {
  tail -F "$1" 2>/dev/null | while IFS= read -r l; do
    case "$l" in *SRPTGT-XENCTL*) ;; *) continue ;; esac
    l=$(echo "$l" | tr -d '\r')
    set -- ${l#*SRPTGT-XENCTL }
    case "$1" in
      attach|detach) out=$(srptgt xen "$@" 2>&1) ;;
      stop)
        p=$(cat /tmp/srptgt.pid); kill -TERM "$p"; i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.2; i=$((i+1)); done
        kill -0 "$p" 2>/dev/null && out="still running after 60s" || out="exited after $((i/5))s"
        out="$out; $(xenstore-ls -f /local/domain/0/backend/vscsi 2>/dev/null | grep -c '/state = \"6\"') state nodes Closed" ;;
      start)
        srptgt serve --config /etc/srptgt.yaml >>/tmp/srptgt.log 2>&1 &
        echo $! >/tmp/srptgt.pid; out="started pid $(cat /tmp/srptgt.pid)" ;;
      list) out=$(srptgt xen list 2>&1) ;;
      *) out="unknown request $1" ;;
    esac
    echo "$out" | while IFS= read -r o; do echo "SRPTGT-INFO xenctl $* -> $o"; done >/dev/console
  done
}

# target_dump: the daemon's goroutines (SIGQUIT with GOTRACEBACK=all ends
# it with a stack dump, relayed from its log), for a run that stalled.
target_dump() {
  kill -QUIT "$(cat /tmp/srptgt.pid)" 2>/dev/null
  sleep 3
}
