#!/usr/bin/env bash
# The whole test suite, as CI runs it. On a fresh Debian 12 machine, as
# root, it installs what it needs (Debian packages, Go, the VM images'
# packages), then checks formatting and vet, builds with and without cgo,
# runs every Go test (the VM suites included) and the race detector on the
# concurrent packages.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

ensure_root
ensure_packages gcc libc6-dev pkg-config git libibverbs-dev librdmacm-dev ibverbs-providers
ensure_go
go version

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go'))
[ -z "$bad" ] || die "gofmt would change: $bad"
echo "== go vet"
go vet ./...
echo "== build (cgo and CGO_ENABLED=0)"
go build ./...
CGO_ENABLED=0 go build ./...
echo "== go test"
go test -count=1 -timeout 60m ./...
echo "== go test -race (concurrent packages)"
go test -count=1 -race -timeout 30m ./scsi/... ./backstore/... ./srp/... ./transport/... ./cmd/...
echo "all tests passed"
