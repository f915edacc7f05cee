#!/usr/bin/env bash
# The demo: srptgt serving disks over soft RoCE to the Linux kernel's own
# SRP initiator, in a VM. On a fresh Debian 12 machine, as root, it installs
# what it needs (Debian packages, Go; QEMU and the guest's packages through
# the VM harness), boots Debian's kernel in QEMU with rdma_rxe on a dummy
# netdev, starts `srptgt serve` on 169.254.10.1:5000 (LUN 0: 64 MiB memory,
# LUN 1: 64 MiB file), logs ib_srp in (add_target ... dest=169.254.10.1:5000)
# and prints what the initiator sees: the RDMA device, the logins, lsblk,
# sg_inq, sg_readcap, short fio runs, and srptgt bench over real verbs.
#
# The first run downloads about 130 MB of Debian packages into
# /var/cache/srptgt-vm ($SRPTGT_VM_CACHE) and builds the guest image; later
# runs take a few minutes (QEMU emulates the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

ensure_root
ensure_packages gcc libc6-dev pkg-config git libibverbs-dev librdmacm-dev ibverbs-providers
ensure_go

# One QEMU at a time on shared machines.
exec 9>/tmp/srptgt-qemu.lock
flock 9
set +e
SRPTGT_DEMO=1 go test -count=1 -timeout 30m -run '^TestDemo$' -v ./transport/rdma/vmtest/ 2>&1 |
  grep -vE '^(=== RUN|--- PASS|PASS$|ok  )'
rc=${PIPESTATUS[0]}
[ "$rc" = 0 ] || echo "demo failed (go test exit status $rc)" >&2
exit "$rc"
