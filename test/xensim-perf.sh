#!/bin/bash
# The Xen ring measurements of docs/performance.md, on the simulator:
# srptgt xensim, srptgt serve --xen-sim pinned to core 0 with GOMAXPROCS=1,
# srptgt bench --xen-sim (the guest) pinned to core 1, on a null LU. For
# every run it prints the bench's JSON summary line and serve's CPU time
# during the run (utime+stime from /proc/PID/stat), so IOPS or GB/s per
# serve core can be read off.
#
#   test/xensim-perf.sh [RUN ...]     RUN: vscsi4k srp4k vscsiqd1 srpqd1 vscsi1m srp1m (default: all)
#
# Environment: SRPTGT_PERF_TIME (default 10s), SRPTGT (a built binary;
# default: build one into the work directory), SRPTGT_PERF_CPU_PROFILE
# (a directory: serve and bench write CPU profiles of each run there,
# RUN.pprof and RUN.bench.pprof).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/srptgt-perf.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

bin=${SRPTGT:-}
if [ -z "$bin" ]; then
	(cd "$here" && go build -o "$work/srptgt" ./cmd/srptgt)
	bin=$work/srptgt
fi
t=${SRPTGT_PERF_TIME:-10s}
runs=("$@")
[ ${#runs[@]} -gt 0 ] || runs=(vscsi4k srp4k vscsiqd1 srpqd1 vscsi1m srp1m)

cat >"$work/perf.yaml" <<EOF
luns:
  - name: nul
    backstore: {kind: null, size: 64GiB}
xen:
  guests:
EOF
for d in $(seq 21 40); do
	echo "    - {domain: guest$d, luns: [\"nul, 0:0:0:0\"]}" >>"$work/perf.yaml"
done

sock=$work/sim.sock
"$bin" xensim --socket "$sock" >"$work/xensim.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done

start_serve() { # $1: profile file or empty
	local prof=()
	[ -z "$1" ] || prof=(--cpu-profile "$1")
	GOMAXPROCS=1 taskset -c 0 "$bin" serve --config "$work/perf.yaml" --xen-sim "$sock" "${prof[@]}" >>"$work/serve.log" 2>&1 &
	serve=$!
	for _ in $(seq 100); do grep -q "serving" "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
}
stop_serve() {
	kill -TERM "$serve" 2>/dev/null || true
	wait "$serve" 2>/dev/null || true
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

dom=21
for r in "${runs[@]}"; do
	case $r in
	vscsi4k) args=(--ring vscsiif --rw randread --bs 4k --iodepth 16) ;;
	srp4k) args=(--ring srp --srp-initiator direct --rw randread --bs 4k --iodepth 63) ;;
	vscsiqd1) args=(--ring vscsiif --rw randread --bs 4k --iodepth 1) ;;
	srpqd1) args=(--ring srp --srp-initiator direct --rw randread --bs 4k --iodepth 1) ;;
	vscsi1m) args=(--ring vscsiif --rw read --bs 1m --iodepth 4) ;;
	srp1m) args=(--ring srp --srp-initiator direct --rw read --bs 1m --iodepth 4) ;;
	*) echo "unknown run $r" >&2; exit 2 ;;
	esac
	prof= bprof=()
	if [ -n "${SRPTGT_PERF_CPU_PROFILE:-}" ]; then
		mkdir -p "$SRPTGT_PERF_CPU_PROFILE"
		prof=$SRPTGT_PERF_CPU_PROFILE/$r.pprof
		bprof=(--cpu-profile "$SRPTGT_PERF_CPU_PROFILE/$r.bench.pprof")
	fi
	start_serve "$prof"
	hz=$(getconf CLK_TCK)
	c0=$(cpu_ticks "$serve")
	s0=$(date +%s.%N)
	taskset -c 1 "$bin" bench --xen-sim "$sock" --domain "$dom" --lun nul "${args[@]}" --time "$t" "${bprof[@]}" --json >"$work/$r.json" 2>"$work/$r.err" || {
		echo "$r: bench failed" >&2; cat "$work/$r.err" >&2; exit 1; }
	s1=$(date +%s.%N)
	c1=$(cpu_ticks "$serve")
	stop_serve
	dom=$((dom + 1))
	cores=$(echo "($c1 - $c0) / $hz / ($s1 - $s0)" | bc -l)
	python3 - "$r" "$work/$r.json" "$cores" "$work/$r.err" <<'EOF'
import json, sys
r, path, cores, errf = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
j = json.load(open(path))
st = j.get("read") or j.get("write")
iops, bw = st["iops"], st["bw_bytes"]
lat = st.get("lat_ns", {})
pct = lat.get("percentile") or {}
p50 = pct.get("50.000000", pct.get("50", 0)) / 1000
p99 = pct.get("99.000000", pct.get("99", 0)) / 1000
memcpy = ""
for line in open(errf):
    if "single-core memcpy" in line:
        memcpy = " | " + line.split("xen-sim: ", 1)[1].strip()
print(f"{r:9s} IOPS {iops:>10,.0f}  {bw/1e9:6.2f} GB/s  p50 {p50:8.1f} µs  p99 {p99:8.1f} µs  serve {cores:4.2f} core  per serve core: {iops/max(cores,1e-9):>10,.0f} IOPS {bw/1e9/max(cores,1e-9):6.2f} GB/s{memcpy}")
EOF
done
