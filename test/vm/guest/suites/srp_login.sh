# srp_login — SRP_LOGIN_REJ as the kernel initiator logs it. Each test sends
# one add_target the target must refuse and finds ib_srp's reject line
# ("SRP LOGIN REJECTED, reason 0x...") in the kernel log. The reasons
# srptgt must give are checked; LIO's are recorded.
TESTS="rej_iu_too_small:t_rej_iu:60 rej_target_port_id:t_rej_port:60 rej_acl:t_rej_acl:60"
. /vm/env # TARGET

LOGIN_BASE="src=169.254.10.1,dest=169.254.10.1:5000"
GOOD_ID="id_ext=000000fffe000001,ioc_guid=000000fffe000001"

# refused OPTIONS: add_target must fail; the new kernel log lines land in
# /tmp/rej and the reject line in $REJ
refused() {
  before=$(dmesg | wc -l)
  echo "+ add_target $1"
  if echo "$1" >/sys/class/infiniband_srp/srp-rxe_dum0-1/add_target; then
    fail "add_target $1 succeeded"
  fi
  sleep 1
  dmesg | tail -n +$((before + 1)) >/tmp/rej
  cat /tmp/rej
  REJ=$(grep -m1 -E 'REJECTED|REJ reason|SRP_LOGIN_REJ' /tmp/rej | sed 's/^\[[^]]*\] *//')
  [ -n "$REJ" ] || fail "no reject in the kernel log"
}

want_reason() { # reason: srptgt must give it
  if [ "$TARGET" = srptgt ]; then
    grep -q "reason $1" /tmp/rej || fail "want reason $1: $REJ"
  fi
  detail "$REJ"
}

# SRP r16a 6.4: an initiator to target IU length below 64 bytes (the SRP_CMD
# with one descriptor) cannot be supported; srptgt: 0x00010000.
t_rej_iu() {
  refused "$GOOD_ID,initiator_ext=0000000000000011,$LOGIN_BASE,max_it_iu_size=60"
  want_reason 0x00010000
}

# A target port ID that is not the port's: 0x00010003 (unable to associate
# the channel with the I_T nexus).
t_rej_port() {
  refused "id_ext=000000fffe000001,ioc_guid=000000fffe0000ff,initiator_ext=0000000000000012,$LOGIN_BASE"
  want_reason 0x00010003
}

# An initiator port the access list does not allow (srptgt: acl.enforce in
# /etc/srptgt.yaml; LIO: no ACL under the TPG): srptgt 0x00010000.
t_rej_acl() {
  refused "$GOOD_ID,initiator_ext=0000000000000033,$LOGIN_BASE"
  want_reason 0x00010000
}
