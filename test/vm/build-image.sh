#!/bin/bash
# build-image.sh PROFILE — build (or reuse) the base guest images of a profile.
#
# PROFILE is rdma or xen. Prints the image directory as the last line of
# stdout. Everything lives under $SRPTGT_VM_CACHE (default
# /var/cache/srptgt-vm):
#
#   debs/                   .debs fetched with `apt-get download`
#   stage/<profile>/        dpkg-deb -x staging tree (rebuilt when needed)
#   images/<profile>-<key>/ built images; <key> hashes this script, the base
#                           init scripts and the resolved package versions
#
# rdma image dir: vmlinuz, base.cpio.gz (busybox, kmod, iproute2, rdma-core,
#                 sg3-utils, fio, e2fsprogs, mt-st, mtx + libs + modules)
# xen  image dir: xen.elf (decompressed hypervisor), vmlinuz, dom0.cpio.gz
#                 (xen tools + LIO/xen-scsiback modules; contains /domu/
#                 vmlinuz and /domu/base.cpio.gz for the PV guests),
#                 domu.cpio.gz
# Each dir also has versions.txt (package=version lines) and kver.
set -euo pipefail

profile=${1:?usage: build-image.sh rdma|xen}
case "$profile" in rdma|xen) ;; *) echo "unknown profile $profile" >&2; exit 2 ;; esac

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${SRPTGT_VM_CACHE:-/var/cache/srptgt-vm}
mkdir -p "$CACHE/debs" "$CACHE/images" "$CACHE/stage"
log() { echo "build-image[$profile]: $*" >&2; }

# ---------------------------------------------------------------- packages
# The guest kernel follows what Debian 12's linux-image-amd64 points to.
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
if [ -z "$KPKG" ]; then
  log "cannot resolve linux-image-amd64 (run setup.sh / apt-get update)"; exit 1
fi
KVER=${KPKG#linux-image-}

TOOLS=(busybox-static kmod sg3-utils fio e2fsprogs mt-st mtx libc6 libgcc-s1)
RDMA=(iproute2 rdma-core ibverbs-providers libibverbs1 librdmacm1)
XEN=(xen-hypervisor-4.17-amd64 xen-utils-4.17 xen-utils-common xenstore-utils)
# Pacemaker's fence_scsi (Python) for the pr_fence suite: the agent, its
# fencing library, pexpect, and the interpreter. Taken as listed, without
# closing over fence-agents' Depends (the cloud SDKs the other agents use).
FENCE=(fence-agents python3.11-minimal libpython3.11-minimal libpython3.11-stdlib
  python3-pexpect python3-ptyprocess libexpat1 zlib1g libssl3 libffi8 libuuid1)
case "$profile" in
  rdma) TOP=("$KPKG" "${TOOLS[@]}" "${RDMA[@]}") ;;
  xen)  TOP=("$KPKG" "${TOOLS[@]}" "${XEN[@]}" "${RDMA[@]}") ;;
esac

# Close over Depends, keep the top-level packages and every library
# package (the assembler copies only the shared objects actually needed).
# Interpreters and their modules are left out: nothing in the guest runs them.
resolve_pkgs() {
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
      --no-breaks --no-replaces --no-enhances "${TOP[@]}" 2>/dev/null |
    grep -v '^[ <]' | sort -u |
    grep -vE '^(perl|python|libperl|libpython|lib.*-perl$|cdebconf|debconf|libdebian-installer|dpkg|adduser|passwd|udev|systemd|init-system-helpers|install-info|usrmerge|usr-is-merged|mailcap|media-types|mime-support|lsb-base|sysvinit-utils|tar$|libpam)' || true
  printf '%s\n' "${TOP[@]}"
  [ "$profile" = rdma ] && printf '%s\n' "${FENCE[@]}"
  true
}
PKGS=($(resolve_pkgs | sort -u))
VERSIONS=$(apt-cache show --no-all-versions "${PKGS[@]}" 2>/dev/null |
  awk '/^Package:/{p=$2} /^Version:/{print p"="$2}' | sort -u)

KEY=$( { cat "$0" "$HERE"/guest/init-*.sh; echo "$VERSIONS"; echo "$profile"; } | sha256sum | cut -c1-16)
IMG="$CACHE/images/$profile-$KEY"
if [ -f "$IMG/done" ]; then
  log "cached $IMG"
  echo "$IMG"; exit 0
fi
log "building $IMG (kernel $KVER)"

# ---------------------------------------------------------------- download
debfile() { # pkg=ver -> path of the cached .deb or empty
  local p=${1%%=*} v=${1#*=}
  v=${v//:/%3a}
  ls "$CACHE/debs/${p}_${v}_"*.deb 2>/dev/null | head -1
}
want=()
while read -r pv; do
  [ -n "$pv" ] || continue
  [ -n "$(debfile "$pv")" ] || want+=("$pv")
done <<<"$VERSIONS"
if [ ${#want[@]} -gt 0 ]; then
  log "apt-get download ${#want[@]} packages"
  (cd "$CACHE/debs" && apt-get download -q -o APT::Sandbox::User=root "${want[@]}" >&2)
fi

# ---------------------------------------------------------------- stage
STAGE="$CACHE/stage/$profile"
rm -rf "$STAGE"; mkdir -p "$STAGE"
while read -r pv; do
  [ -n "$pv" ] || continue
  f=$(debfile "$pv"); [ -n "$f" ] || { log "missing deb for $pv"; exit 1; }
  dpkg-deb -x "$f" "$STAGE"
done <<<"$VERSIONS"

depmod -b "$STAGE" "$KVER"

BUILD=$(mktemp -d "$CACHE/images/.build-$profile.XXXXXX")
trap 'rm -rf "$BUILD"' EXIT
MA=x86_64-linux-gnu
LIBDIRS=("$BUILD/stubs" "$STAGE/usr/lib/$MA" "$STAGE/lib/$MA" "$STAGE/usr/lib" "$STAGE/lib" "$STAGE/usr/lib/$MA/ceph" "$STAGE/usr/lib/xen-4.17/lib")

# fio links the client libraries of Ceph (librados, librbd), GlusterFS
# (libgfapi) and NBD (libnbd, which pulls libxml2 and ICU); together with
# their dependencies they are ~90 MB. The guests never use those ioengines,
# so these libraries are replaced by stubs that define just the symbols fio
# imports (with their symbol versions) and fail if ever called.
STUB_LIBS=(librados.so.2 librbd.so.1 libgfapi.so.0 libnbd.so.0)
make_stubs() { # binary
  local bin=$1 so real d sym ver vs c
  mkdir -p "$BUILD/stubs"
  for so in "${STUB_LIBS[@]}"; do
    [ -e "$BUILD/stubs/$so" ] && continue
    real=""
    for d in "${LIBDIRS[@]:1}"; do [ -e "$d/$so" ] && { real="$d/$so"; break; }; done
    [ -n "$real" ] || continue
    c="$BUILD/stubs/${so%%.so*}.c"; vs="$BUILD/stubs/${so%%.so*}.map"
    : >"$c"; : >"$vs.tmp"
    nm -D --defined-only --with-symbol-versions "$real" | awk '{print $3}' | sed 's/@.*//' | sort -u >"$BUILD/stubs/defs"
    nm -D --undefined-only --with-symbol-versions "$STAGE/$bin" | awk '{print $2}' | while read -r sym; do
      ver=""; case "$sym" in *@*) ver=${sym#*@}; sym=${sym%%@*} ;; esac
      grep -qxF "$sym" "$BUILD/stubs/defs" || continue
      echo "int $sym(void) { return -1; }" >>"$c"
      echo "${ver:-NONE} $sym" >>"$vs.tmp"
    done
    if grep -qv '^NONE ' "$vs.tmp"; then
      for ver in $(awk '{print $1}' "$vs.tmp" | sort -u); do
        echo "$ver { global: $(awk -v v="$ver" '$1==v{printf "%s; ", $2}' "$vs.tmp") };"
      done >"$vs"
      gcc -shared -fPIC -O0 -o "$BUILD/stubs/$so" -Wl,-soname,"$so" -Wl,--version-script="$vs" "$c"
    else
      gcc -shared -fPIC -O0 -o "$BUILD/stubs/$so" -Wl,-soname,"$so" "$c"
    fi
  done
}

find_lib() { # soname -> staged path
  local d
  for d in "${LIBDIRS[@]}"; do
    [ -e "$d/$1" ] && { echo "$d/$1"; return 0; }
  done
  return 1
}

# skeleton ROOT
new_root() {
  local r=$1
  mkdir -p "$r"/{usr/bin,usr/sbin,usr/lib/$MA,usr/lib64,usr/libexec/bb,etc,proc,sys,dev,tmp,run,var/log,var/lib,mnt,srv,root}
  ln -s usr/bin "$r/bin"; ln -s usr/sbin "$r/sbin"; ln -s usr/lib "$r/lib"; ln -s usr/lib64 "$r/lib64"
  ln -s ../run "$r/var/run"
  cp "$STAGE/bin/busybox" "$r/usr/bin/busybox"
  local a
  for a in $("$STAGE/bin/busybox" --list); do
    [ "$a" = busybox ] || ln -sf ../../bin/busybox "$r/usr/libexec/bb/$a"
  done
  ln -s busybox "$r/usr/bin/sh"
  echo "root:x:0:0:root:/root:/bin/sh" >"$r/etc/passwd"
  echo "root:x:0:" >"$r/etc/group"
  echo "/usr/lib/$MA" >"$r/etc/ld.so.conf"
  : >"$r/etc/fstab"
}

# add_lib ROOT soname: copy a library and its NEEDED closure
declare -A HAVE_LIB
add_lib() {
  local r=$1 so=$2 p n
  [ -n "${HAVE_LIB[$r:$so]:-}" ] && return 0
  HAVE_LIB[$r:$so]=1
  p=$(find_lib "$so") || { log "library $so not found in staged packages"; exit 1; }
  cp -L "$p" "$r/usr/lib/$MA/$so"
  for n in $(readelf -d "$p" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    add_lib "$r" "$n"
  done
}
# add_bin ROOT staged-path [dest-dir]: copy an ELF (or script) and its libs
add_bin() {
  local r=$1 src=$2 dst=${3:-/usr/bin} n
  [ -e "$STAGE/$src" ] || { log "binary $src not in staged packages"; exit 1; }
  cp -L "$STAGE/$src" "$r$dst/$(basename "$src")"
  for n in $(readelf -d "$STAGE/$src" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    add_lib "$r" "$n"
  done
}
finish_libs() {
  local r=$1
  add_lib "$r" ld-linux-x86-64.so.2
  add_lib "$r" libgcc_s.so.1   # glibc dlopens it (pthread_cancel/exit)
  ln -sf ../lib/$MA/ld-linux-x86-64.so.2 "$r/usr/lib64/ld-linux-x86-64.so.2"
  /sbin/ldconfig -r "$r" 2>/dev/null || true
}

# add_modules ROOT mod...: modules closed over depends + softdeps, then depmod
add_modules() {
  local r=$1; shift
  local -A seen=()
  local queue=("$@") m f deps soft d
  while [ ${#queue[@]} -gt 0 ]; do
    m=${queue[0]}; queue=("${queue[@]:1}")
    m=${m//-/_}
    [ -n "${seen[$m]:-}" ] && continue
    seen[$m]=1
    f=$(modinfo -b "$STAGE" -k "$KVER" -F filename "$m" 2>/dev/null | head -1) || true
    if [ -z "$f" ] || [ ! -e "$f" ]; then
      # built in?
      if grep -qE "/${m}\.ko$|/${m//_/-}\.ko$" "$STAGE/lib/modules/$KVER/modules.builtin" 2>/dev/null; then continue; fi
      log "module $m not found"; exit 1
    fi
    mkdir -p "$r$(dirname "${f#$STAGE}")"
    cp "$f" "$r${f#$STAGE}"
    deps=$(modinfo -b "$STAGE" -k "$KVER" -F depends "$m" | tr ',' ' ')
    soft=$(modinfo -b "$STAGE" -k "$KVER" -F softdep "$m" | tr ' ' '\n' | grep -vE '^(pre|post):$' || true)
    for d in $deps $soft; do queue+=("$d"); done
  done
  mkdir -p "$r/lib/modules/$KVER"
  cp "$STAGE/lib/modules/$KVER"/modules.{order,builtin,builtin.modinfo} "$r/lib/modules/$KVER/" 2>/dev/null || true
  depmod -b "$r" "$KVER"
}

add_kmod() {
  local r=$1 t
  add_bin "$r" bin/kmod /usr/sbin
  # /sbin/modprobe is what the kernel runs to load modules on demand
  for t in modprobe insmod rmmod lsmod modinfo depmod; do ln -sf kmod "$r/usr/sbin/$t"; done
}

add_test_tools() {
  local r=$1 f
  for f in "$STAGE"/usr/bin/sg_* "$STAGE"/usr/bin/sginfo "$STAGE"/usr/bin/sgp_dd "$STAGE"/usr/bin/sgm_dd; do
    [ -e "$f" ] && add_bin "$r" "${f#$STAGE/}"
  done
  make_stubs usr/bin/fio
  add_bin "$r" usr/bin/fio
  add_bin "$r" sbin/mke2fs /usr/sbin
  ln -sf mke2fs "$r/usr/sbin/mkfs.ext4"
  add_bin "$r" sbin/e2fsck /usr/sbin
  ln -sf e2fsck "$r/usr/sbin/fsck.ext4"
  add_bin "$r" sbin/tune2fs /usr/sbin
  add_bin "$r" sbin/dumpe2fs /usr/sbin
  if [ -e "$STAGE/bin/mt-st" ]; then add_bin "$r" bin/mt-st; ln -sf mt-st "$r/usr/bin/mt"; fi
  add_bin "$r" usr/sbin/mtx /usr/sbin
  cp "$STAGE/etc/mke2fs.conf" "$r/etc/" 2>/dev/null || true
}

# add_fence_scsi ROOT: python3.11 with its standard library (minus what a
# fencing agent never imports), pexpect, fence_scsi and fencing.py.
add_fence_scsi() {
  local r=$1 so n ok pl=usr/lib/python3.11
  add_bin "$r" usr/bin/python3.11
  ln -sf python3.11 "$r/usr/bin/python3"
  cp -a "$STAGE/$pl" "$r/usr/lib/"
  rm -rf "$r/$pl"/{test,idlelib,tkinter,ensurepip,lib2to3,pydoc_data,turtledemo,config-3.11-$MA}
  # extension modules whose libraries are not staged are dropped
  for so in "$r/$pl"/lib-dynload/*.so; do
    ok=1
    for n in $(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      find_lib "$n" >/dev/null || { ok=""; break; }
    done
    if [ -n "$ok" ]; then
      for n in $(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do add_lib "$r" "$n"; done
    else
      rm -f "$so"
    fi
  done
  mkdir -p "$r/usr/lib/python3/dist-packages" "$r/usr/share/fence"
  cp -a "$STAGE/usr/lib/python3/dist-packages/"{pexpect,ptyprocess} "$r/usr/lib/python3/dist-packages/"
  cp "$STAGE/usr/sbin/fence_scsi" "$r/usr/sbin/"
  cp "$STAGE/usr/share/fence/fencing.py" "$r/usr/share/fence/"
  # fencing.py imports pycurl (libcurl) for the agents that speak HTTP and
  # names pycurl.error in fence_action; fence_scsi never calls into it
  printf '# pycurl stand-in: fence_scsi does not use curl\nclass error(Exception):\n    pass\n' \
    >"$r/usr/lib/python3/dist-packages/pycurl.py"
}

# add_rdma_user ROOT: ip and rdma (iproute2) for soft RoCE, the rdma-core
# providers (dlopened by libibverbs) with their driver files, libibverbs
# and librdmacm
add_rdma_user() {
  local r=$1 f n
  add_bin "$r" bin/ip
  add_bin "$r" usr/bin/rdma
  mkdir -p "$r/usr/lib/$MA/libibverbs" "$r/etc/libibverbs.d"
  cp "$STAGE"/etc/libibverbs.d/*.driver "$r/etc/libibverbs.d/"
  for f in "$STAGE/usr/lib/$MA/libibverbs/"*.so; do
    cp -L "$f" "$r/usr/lib/$MA/libibverbs/"
    for n in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do add_lib "$r" "$n"; done
  done
  add_lib "$r" libibverbs.so.1; add_lib "$r" librdmacm.so.1
  # rdma-core's librdmacm/libibverbs config files
  cp -r "$STAGE/etc/rdma" "$r/etc/" 2>/dev/null || true
}
# soft RoCE and the kernel's SRP initiator
RDMA_MODULES=(rdma_rxe rdma_ucm rdma_cm ib_cm iw_cm ib_core ib_uverbs ib_umad
  ib_srp scsi_transport_srp dummy udp_tunnel ip6_udp_tunnel)

mkcpio() { # ROOT OUT: gzip'd newc cpio, padded to 4 bytes
  (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -6 >"$2"
  local sz; sz=$(stat -c %s "$2")
  if [ $((sz % 4)) -ne 0 ]; then head -c $((4 - sz % 4)) /dev/zero >>"$2"; fi
}

TEST_MODULES=(scsi_mod scsi_common sd_mod sg ext4 crc32c_generic crc32c_intel libcrc32c crc32_generic crc32_pclmul)
LIO_MODULES=(configfs target_core_mod target_core_file target_core_iblock brd loop)

case "$profile" in
rdma)
  R="$BUILD/root"; new_root "$R"
  add_kmod "$R"
  add_test_tools "$R"
  add_fence_scsi "$R"
  add_rdma_user "$R"
  finish_libs "$R"
  add_modules "$R" "${RDMA_MODULES[@]}" ib_srpt target_core_user veth \
    "${LIO_MODULES[@]}" "${TEST_MODULES[@]}" crc_t10dif crct10dif_common t10_pi
  cp "$HERE/guest/init-base.sh" "$R/init"; chmod +x "$R/init"
  echo rdma >"$R/etc/srptgt-vm-profile"
  mkcpio "$R" "$BUILD/base.cpio.gz"
  cp "$STAGE/boot/vmlinuz-$KVER" "$BUILD/vmlinuz"
  ;;
xen)
  # domU: initiator side (xen-scsifront) and the test tools
  D="$BUILD/domu"; new_root "$D"
  add_kmod "$D"
  add_test_tools "$D"
  finish_libs "$D"
  add_modules "$D" xen_scsifront "${TEST_MODULES[@]}" crc_t10dif crct10dif_common t10_pi
  cp "$HERE/guest/init-base.sh" "$D/init"; chmod +x "$D/init"
  echo xen-domu >"$D/etc/srptgt-vm-profile"
  mkcpio "$D" "$BUILD/domu.cpio.gz"
  # dom0: toolstack, LIO + xen-scsiback, the guest kernel and image
  R="$BUILD/root"; new_root "$R"
  add_kmod "$R"
  XB=usr/lib/xen-4.17/bin
  for b in xl xenstored xenconsoled xen-init-dom0 xenconsole; do add_bin "$R" "$XB/$b"; done
  for b in xenstore xenstore-chmod xenstore-exists xenstore-list xenstore-ls xenstore-read xenstore-rm xenstore-watch xenstore-write xenstore-control; do
    add_bin "$R" "usr/bin/$b"
  done
  # sg3-utils in dom0 too (debugging the reference target; the cross
  # suite's ib_srp side)
  for b in sg_inq sg_persist sg_dd sg_turs; do add_bin "$R" usr/bin/$b; done
  # soft RoCE + ib_srp in dom0: one LUN over vscsiif and over RDMA (cross)
  add_rdma_user "$R"
  finish_libs "$R"
  mkdir -p "$R/etc/xen" "$R/var/lib/xen" "$R/var/log/xen/console" "$R/run/xen" "$R/var/lib/xenstored"
  cp "$STAGE/etc/xen/xl.conf" "$R/etc/xen/" 2>/dev/null || true
  add_modules "$R" xen_evtchn xen_gntdev xen_gntalloc xen_privcmd xenfs xen_scsiback \
    "${RDMA_MODULES[@]}" "${LIO_MODULES[@]}" "${TEST_MODULES[@]}"
  mkdir -p "$R/domu"
  cp "$STAGE/boot/vmlinuz-$KVER" "$R/domu/vmlinuz"
  cp "$BUILD/domu.cpio.gz" "$R/domu/base.cpio.gz"
  cp "$HERE/guest/init-base.sh" "$R/init"; chmod +x "$R/init"
  echo xen-dom0 >"$R/etc/srptgt-vm-profile"
  mkcpio "$R" "$BUILD/dom0.cpio.gz"
  cp "$STAGE/boot/vmlinuz-$KVER" "$BUILD/vmlinuz"
  gzip -dc "$STAGE"/boot/xen-4.17-amd64.gz >"$BUILD/xen.elf"
  ;;
esac

echo "$VERSIONS" >"$BUILD/versions.txt"
echo "$KVER" >"$BUILD/kver"
rm -rf "$BUILD/root" "$BUILD/domu" "$BUILD/stubs"
touch "$BUILD/done"
rm -rf "$IMG"; mv "$BUILD" "$IMG"; trap - EXIT
rm -rf "$STAGE"
# drop older images of this profile
for old in "$CACHE/images/$profile-"*; do
  [ "$old" = "$IMG" ] || rm -rf "$old"
done
log "built $IMG ($(du -sh "$IMG" | cut -f1))"
echo "$IMG"
