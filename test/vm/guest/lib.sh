# lib.sh — helpers shared by the guest scripts (busybox sh).
#
# Marker lines read by the Go driver (test/vm/vm.go):
#   SRPTGT-INFO <key> <value...>
#   SRPTGT-LOG-BEGIN <suite>/<name>   ... "| "-prefixed log lines ...
#   SRPTGT-LOG-END <suite>/<name>
#   SRPTGT-TEST <suite>/<name> PASS|FAIL|NA <detail>
#   SRPTGT-VM-DONE
export PATH=/usr/sbin:/usr/bin:/usr/libexec/bb

info() { echo "SRPTGT-INFO $*"; }

# detail TEXT: the one-line detail of the current test's marker
detail() { echo "$*" >/tmp/detail; }

# fail MSG: record the detail and fail the current test
fail() { detail "$*"; echo "FAIL: $*"; exit 1; }

# check DESC CMD...: run CMD, fail the test with DESC if it fails
check() {
  d=$1; shift
  echo "+ $*"
  "$@" || fail "$d (rc=$?)"
}

# expect_rc RC DESC CMD...: run CMD, fail unless it exits with RC
expect_rc() {
  want=$1 d=$2; shift 2
  echo "+ $* (expect rc=$want)"
  "$@"; rc=$?
  [ "$rc" = "$want" ] || fail "$d (rc=$rc, want $want)"
}

# xenctl REQ...: ask dom0 (target_control in target-srptgt-xen.sh) to act;
# the request goes to the guest's console, which dom0 watches
xenctl() { echo "SRPTGT-XENCTL $*" >/dev/console; echo "+ xenctl $*"; }

# na_unless_srptgt WHY: end the test as not applicable (exit 77) unless
# the target is srptgt
na_unless_srptgt() {
  [ -n "$TARGET" ] || . /vm/env
  [ "$TARGET" = srptgt ] || { detail "$1"; exit 77; }
}

emit_log() { # id file
  echo "SRPTGT-LOG-BEGIN $1"
  sed 's/^/| /' "$2"
  echo "SRPTGT-LOG-END $1"
}

# alive: is the device under test still answering?
alive() {
  dev=${SG0:-}
  [ -n "$dev" ] || return 0
  sg_turs "$dev" >/dev/null 2>&1 &
  p=$!; n=0
  while kill -0 $p 2>/dev/null; do
    n=$((n+1)); [ $n -gt 100 ] && { kill -9 $p 2>/dev/null; return 1; }
    sleep 0.2
  done
  wait $p
  # a TUR that answers with sense (e.g. a unit attention) still shows life
  rc=$?; [ $rc -ne 99 ]
}

# run_test SUITE NAME FUNC TIMEOUT: run FUNC from /vm/suites/SUITE.sh in its
# own shell, bounded by TIMEOUT seconds, and print its log and marker.
run_test() {
  s=$1 n=$2 f=$3 lim=${4:-120}
  id="$s/$n"; out=/tmp/log.$s.$n
  if [ -f /tmp/target-dead ]; then
    echo "not run: $(cat /tmp/target-dead)" >"$out"
    emit_log "$id" "$out"
    echo "SRPTGT-TEST $id FAIL not run: $(cat /tmp/target-dead)"
    return
  fi
  : >/tmp/detail
  start=$(date +%s)
  setsid sh -c ". /vm/lib.sh; . /tmp/devs.env; . /vm/suites/$s.sh; set +e; $f" >"$out" 2>&1 </dev/null &
  pid=$!
  # Watchdog: kill the test's process group after $lim seconds and wake
  # this shell with USR1 (wait returns even if the test is stuck in
  # uninterruptible I/O). No polling: forks are costly in a PV guest.
  rm -f /tmp/hung
  trap 'touch /tmp/hung' USR1
  ( sleep "$lim"; kill -9 -$pid 2>/dev/null || kill -9 $pid 2>/dev/null; kill -USR1 $$ ) >/dev/null 2>&1 &
  wd=$!
  wait $pid; rc=$?
  hung=""
  # killed by the watchdog: USR1 seen, or SIGKILLed at the limit (the
  # signal can arrive after wait returned)
  if [ -f /tmp/hung ] || { [ $rc -ge 128 ] && [ $(( $(date +%s) - start )) -ge "$lim" ]; }; then
    hung=1
  else
    kill $wd 2>/dev/null
  fi
  trap - USR1
  if [ -n "$hung" ]; then
    rc=124; echo "TIMEOUT after ${lim}s" >>"$out"; detail "timeout after ${lim}s"
    dmesg | tail -20 >>"$out"
  fi
  el=$(( $(date +%s) - start ))
  d=$(head -c 300 /tmp/detail | tr '\n' ' ')
  if [ $rc -eq 0 ]; then st=PASS
  elif [ $rc -eq 77 ]; then st=NA
  else st=FAIL; [ -n "$d" ] || d="exit status $rc"
  fi
  echo "elapsed ${el}s rc=$rc" >>"$out"
  emit_log "$id" "$out"
  echo "SRPTGT-TEST $id $st ${d:-ok} (${el}s)"
  if [ -n "$hung" ] && ! alive; then
    echo "target unresponsive since $id timed out" >/tmp/target-dead
    echo "SRPTGT-INFO target-dead $id"
  fi
}

# run_suite SUITE: run every test listed in the suite's TESTS variable
# ("name:func:timeout" words).
run_suite() {
  s=$1
  TESTS=""
  . /vm/suites/$s.sh
  for t in $TESTS; do
    n=${t%%:*}; r=${t#*:}; f=${r%%:*}; lim=${r#*:}
    [ "$lim" = "$r" ] && lim=120
    run_test "$s" "$n" "$f" "$lim"
  done
}

# fail_all REASON: mark every test of the selected suites as failed
fail_all() {
  for s in $SUITES; do
    TESTS=""; . /vm/suites/$s.sh
    for t in $TESTS; do
      echo "SRPTGT-TEST $s/${t%%:*} FAIL $*"
    done
  done
}

# scsi_dev H:C:T:L -> "sdX sgN"
scsi_dev() {
  d=/sys/class/scsi_device/$1/device
  [ -d "$d" ] || return 1
  b=$(ls "$d/block" 2>/dev/null | head -1)
  g=$(ls "$d/scsi_generic" 2>/dev/null | head -1)
  [ -n "$b" ] && [ -n "$g" ] || return 1
  echo "$b $g"
}
