# target-srptgt-xen.sh — srptgt on the Xen transport, in dom0. The config is
# /etc/srptgt.yaml (from test/vm/config/srptgt-xen.yaml); srptgt writes the
# vscsi XenStore nodes of both sides itself (the harness only created the
# paused guest, $DOMID).
# cross_rdma: soft RoCE on a dummy netdev in dom0, before srptgt listens
# on it (rdma.listen in the config). A failure here fails only the cross
# suite (its requests find no /tmp/cross.env).
X_IP=169.254.10.1
cross_rdma() {
  for m in rdma_rxe rdma_ucm ib_uverbs dummy sd_mod sg; do modprobe $m || return 1; done
  ip link add dum0 address 02:00:00:00:00:01 type dummy || return 1
  ip addr add $X_IP/16 dev dum0 && ip link set dum0 up || return 1
  rdma link add rxe_dum0 type rxe netdev dum0 || return 1
}

# cross_login: the kernel's ib_srp in dom0 logs in to srptgt over RDMA;
# /tmp/cross.env names its LUN 1 (XDISK, XSG), the LU the guest has at
# 0:0:0:1 too.
cross_login() {
  modprobe ib_srp || return 1
  h=/sys/class/infiniband_srp/srp-rxe_dum0-1/add_target
  echo "id_ext=000000fffe000001,ioc_guid=000000fffe000001,initiator_ext=d0,src=$X_IP,dest=$X_IP:5000" >$h || return 1
  i=0
  while [ $i -lt 100 ]; do
    for sh in /sys/class/scsi_host/host*; do
      grep -q ib_srp $sh/proc_name 2>/dev/null || continue
      n=${sh##*host}
      d=$(scsi_dev "$n:0:0:1") && { set -- $d; echo "XDISK=/dev/$1 XSG=/dev/$2" >/tmp/cross.env; cat /tmp/cross.env; return 0; }
    done
    i=$((i+1)); sleep 0.2
  done
  return 1
}

target_start() {
  mkdir -p /srv
  command -v srptgt || return 1
  srptgt version
  cross_rdma || echo "cross: soft RoCE set-up failed; the cross suite will fail"
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
  [ -e /sys/class/infiniband/rxe_dum0 ] && { cross_login || echo "cross: ib_srp login in dom0 failed"; }
  true
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
      cross-*) out=$(cross_request "$1" 2>&1) ;;
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

# cross_request REQ: dom0's ib_srp nexus acts on the shared LU for the
# cross suite. The guest reads the outcome from the LU itself (READ
# RESERVATION / READ KEYS through its own nexus).
cross_request() {
  [ -f /tmp/cross.env ] || { echo "no ib_srp disk in dom0"; return 1; }
  . /tmp/cross.env
  case "$1" in
    cross-reserve)  # register 0xd0 and reserve Write Exclusive
      sg_persist -n --out --register-ignore --param-sark=0xd0 "$XSG" &&
        sg_persist -n --out --reserve --param-rk=0xd0 --prout-type=1 "$XSG" && echo "reserved WE with 0xd0" ;;
    cross-release)  # release and unregister
      sg_persist -n --out --release --param-rk=0xd0 --prout-type=1 "$XSG"
      sg_persist -n --out --register --param-rk=0xd0 --param-sark=0 "$XSG" && echo "released, unregistered" ;;
    cross-write)    # write one block; say how it went by the key registered
      head -c 512 /dev/zero >/tmp/x.blk
      sg_dd if=/tmp/x.blk of="$XSG" bs=512 count=1 seek=500 >/tmp/x.out 2>&1
      cat /tmp/x.out
      if grep -qi conflict /tmp/x.out; then k=0xc0; else k=0x0c; fi
      sg_persist -n --out --register-ignore --param-sark=$k "$XSG" && echo "write answered; registered $k" ;;
    *) echo "unknown cross request $1"; return 1 ;;
  esac
}
