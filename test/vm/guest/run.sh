#!/bin/sh
# /vm/run.sh — entry point from /init; dispatches on the image's role.
. /vm/lib.sh
. /vm/env
role=$(cat /etc/srptgt-vm-profile)
info role "$role"
info kernel "$(uname -r)"
case "$role" in
  rdma)     exec sh /vm/rdma.sh ;;
  xen-dom0) exec sh /vm/xen-dom0.sh ;;
  xen-domu) exec sh /vm/xen-domu.sh ;;
esac
echo "SRPTGT-VM-ERROR unknown role $role"
