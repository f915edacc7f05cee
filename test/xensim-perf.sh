#!/bin/bash
# The Xen ring measurements of docs/performance.md, on the simulator:
# srptgt xensim, srptgt serve --xen-sim pinned to core 0 with GOMAXPROCS=1,
# srptgt bench --xen-sim (the guest) pinned to core 1, on a null LU. For
# every run it prints the bench's JSON summary line and serve's CPU time
# during the run (utime+stime from /proc/PID/stat), so IOPS or GB/s per
# serve core can be read off.
#
#   test/xensim-perf.sh [RUN ...]     RUN: vscsi4k srp4k vscsiqd1 srpqd1 vscsi1m srp1m
#                                     vscsi4kx2 srp4kx2 (default: all)
#
# The x2 runs add a second guest pinned to serve's core: with one guest
# serve runs its rings dry while the guest turns its completions around,
# and polls or sleeps; with two, IOPS is the two guests' sum and serve's
# CPU time is all work (latency is the first guest's).
#
# Environment: SRPTGT_PERF_TIME (default 10s), SRPTGT_PERF_ROUNDS (run
# the whole list that many times, alternating, and print medians; default
# 1), SRPTGT (a built binary;
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
[ ${#runs[@]} -gt 0 ] || runs=(vscsi4k srp4k vscsi4kx2 srp4kx2 vscsiqd1 srpqd1 vscsi1m srp1m)

cat >"$work/perf.yaml" <<EOF
luns:
  - name: nul
    backstore: {kind: null, size: 64GiB}
xen:
  guests:
EOF
for d in $(seq 21 40) $(seq 121 140); do
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

rounds=${SRPTGT_PERF_ROUNDS:-1}
dom=21
for round in $(seq "$rounds"); do
for r in "${runs[@]}"; do
	case $r in
	vscsi4k) args=(--ring vscsiif --rw randread --bs 4k --iodepth 16) ;;
	srp4k) args=(--ring srp --srp-initiator direct --rw randread --bs 4k --iodepth 63) ;;
	srp4kx2) args=(--ring srp --srp-initiator direct --rw randread --bs 4k --iodepth 63) ;;
	vscsi4kx2) args=(--ring vscsiif --rw randread --bs 4k --iodepth 16) ;;
	vscsiqd1) args=(--ring vscsiif --rw randread --bs 4k --iodepth 1) ;;
	srpqd1) args=(--ring srp --srp-initiator direct --rw randread --bs 4k --iodepth 1) ;;
	vscsi1m) args=(--ring vscsiif --rw read --bs 1m --iodepth 4) ;;
	srp1m) args=(--ring srp --srp-initiator direct --rw read --bs 1m --iodepth 4) ;;
	*) echo "unknown run $r" >&2; exit 2 ;;
	esac
	second_cpu=
	case $r in *x2) second_cpu=0 ;; esac
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
	# a second guest, on serve's core, keeps serve's rings from running
	# dry while the first guest (on its own core) turns its completions
	# around: serve then never waits, and its CPU time is all work
	second=
	if [ -n "${second_cpu:-}" ]; then
		taskset -c "$second_cpu" "$bin" bench --xen-sim "$sock" --domain $((dom + 100)) --lun nul "${args[@]}" --time "$t" --json >"$work/$r.2.json" 2>"$work/$r.2.err" &
		second=$!
	fi
	taskset -c 1 "$bin" bench --xen-sim "$sock" --domain "$dom" --lun nul "${args[@]}" --time "$t" "${bprof[@]}" --json >"$work/$r.json" 2>"$work/$r.err" || {
		echo "$r: bench failed" >&2; cat "$work/$r.err" >&2; exit 1; }
	if [ -n "$second" ]; then
		wait "$second" || { echo "$r: second bench failed" >&2; cat "$work/$r.2.err" >&2; exit 1; }
	fi
	s1=$(date +%s.%N)
	c1=$(cpu_ticks "$serve")
	stop_serve
	dom=$((21 + (dom - 20) % 20))
	cores=$(echo "($c1 - $c0) / $hz / ($s1 - $s0)" | bc -l)
	python3 - "$r" "$work/$r.json" "$cores" "$work/$r.err" "$work/$r.2.json" "$work/results.tsv" <<'EOF'
import json, os, sys
r, path, cores, errf, path2, tsv = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
j = json.load(open(path))
st = j.get("read") or j.get("write")
iops, bw = st["iops"], st["bw_bytes"]
if os.path.exists(path2):  # two guests: serve's total
    j2 = json.load(open(path2))
    st2 = j2.get("read") or j2.get("write")
    iops, bw = iops + st2["iops"], bw + st2["bw_bytes"]
lat = st.get("lat_ns", {})
pct = lat.get("percentile") or {}
p50 = pct.get("50.000000", pct.get("50", 0)) / 1000
p99 = pct.get("99.000000", pct.get("99", 0)) / 1000
memcpy, warm = "", 0.0
for line in open(errf):
    if "single-core memcpy" in line:
        memcpy = " | " + line.split("xen-sim: ", 1)[1].strip()
        warm = float(line.rsplit(" and ", 1)[1].split()[0])
with open(tsv, "a") as f:
    f.write(f"{r}\t{iops}\t{bw}\t{cores}\t{p50}\t{p99}\t{warm}\n")
print(f"{r:9s} IOPS {iops:>10,.0f}  {bw/1e9:6.2f} GB/s  p50 {p50:8.1f} µs  p99 {p99:8.1f} µs  serve {cores:4.2f} core  per serve core: {iops/max(cores,1e-9):>10,.0f} IOPS {bw/1e9/max(cores,1e-9):6.2f} GB/s{memcpy}")
EOF
done
done

if [ "$rounds" -gt 1 ]; then
	echo "medians of $rounds rounds:"
	python3 - "$work/results.tsv" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r, *v = line.split("\t")
    rows.setdefault(r, []).append([float(x) for x in v])
for r, vs in rows.items():
    med = lambda f: statistics.median(f(v) for v in vs)
    iops, bw, cores = med(lambda v: v[0]), med(lambda v: v[1]), med(lambda v: v[2])
    pc = med(lambda v: v[0] / max(v[2], 1e-9))
    pcbw = med(lambda v: v[1] / max(v[2], 1e-9))
    line = f"{r:9s} IOPS {iops:>10,.0f}  {bw/1e9:6.2f} GB/s  p50 {med(lambda v: v[3]):8.1f} µs  p99 {med(lambda v: v[4]):8.1f} µs  serve {cores:4.2f} core  per serve core: {pc:>10,.0f} IOPS {pcbw/1e9:6.2f} GB/s"
    if vs[0][5] > 0:
        line += f"  | {med(lambda v: v[5]):.2f} of memcpy within the footprint"
    print(line)
EOF
fi
