#!/bin/bash
# setup.sh — install the host tools the VM harness needs (idempotent).
#
# Run as root on Debian 12. Installs only what is missing; runs
# `apt-get update` at most once a day (stamp in the cache directory), or
# when a package cannot be found.
set -euo pipefail

CACHE=${SRPTGT_VM_CACHE:-/var/cache/srptgt-vm}
mkdir -p "$CACHE"

# command -> package that provides it
declare -A NEED=(
  [qemu-system-x86_64]=qemu-system-x86
  [busybox]=busybox-static
  [cpio]=cpio
  [modinfo]=kmod
  [depmod]=kmod
  [zstd]=zstd
  [xz]=xz-utils
  [gcc]=gcc
  [readelf]=binutils
  [dpkg-deb]=dpkg
  [apt-get]=apt
  [timeout]=coreutils
  [sha256sum]=coreutils
  [gzip]=gzip
  [file]=file
)
# packages checked by dpkg status (libraries / headers)
PKGS_EXTRA=(libc6-dev libibverbs-dev librdmacm-dev pkg-config)

missing=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEED[$cmd]}")
done
# busybox-static specifically (a dynamic busybox will not work in the guest)
if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
  missing+=(busybox-static)
fi
for p in "${PKGS_EXTRA[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done

stamp="$CACHE/.apt-updated"
apt_update() {
  echo "setup.sh: apt-get update" >&2
  apt-get update -qq >&2
  touch "$stamp"
}
# Refresh the package lists once a day so the pinned guest kernel follows
# what Debian 12's linux-image-amd64 points to, and always on an empty cache.
if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440 2>/dev/null)" ]; then
  apt_update
fi

if [ ${#missing[@]} -gt 0 ]; then
  missing=($(printf "%s\n" "${missing[@]}" | sort -u))
  echo "setup.sh: installing ${missing[*]}" >&2
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
    apt_update
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
fi
echo "setup.sh: host ready" >&2
