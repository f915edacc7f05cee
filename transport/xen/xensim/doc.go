// Package xensim simulates the Xen hypervisor and XenStore on one Linux
// host, so that the Xen transport runs, is tested and is measured without
// booting Xen (srptgt xensim; docs/xensim.md).
//
// # Process model
//
// One simulator process (Server, `srptgt xensim --socket PATH`) plays the
// hypervisor and XenStore. Every other process connects to PATH, a Unix
// SOCK_SEQPACKET socket:
//
//   - the backend (srptgt serve --xen-sim PATH) as dom0, through Dial,
//     which returns a xen.Hypervisor: the same interface the real
//     /dev/xen implementation provides, so the transport code is the same;
//   - each guest (the Go frontend, srptgt bench --xen-sim) through
//     DialGuest, which creates a domain. The domain lives as long as that
//     connection: closing it (or the process dying) destroys the domain.
//
// # Memory, grants, event channels
//
// A guest's memory is one memfd of Pages pages, its grant table another
// memfd of 8-byte entries laid out as Xen's grant_entry_v1 (grant.go),
// which the guest writes itself. The backend's Hypervisor receives both
// descriptors (SCM_RIGHTS) the first time a grant handle touches the
// domain, maps them, and from then on validates every grant against the
// table in its own process, as Xen would: in use, granted to dom0, not
// read-only for a write, frame inside the guest. A grant copy is a memcpy
// between the backend buffer and the mapped guest page; a grant map is an
// mmap of the guest's memfd at the granted frames (PROT_READ for a
// read-only map). Nothing crosses the socket per I/O.
//
// An interdomain event channel is a pair of eventfds: the guest allocates
// an unbound port for dom0 (OpAllocUnbound), the backend binds it
// (OpBind); both ends get the two descriptors, one to wait on, one to
// notify through. The backend unbinding (or dying) returns the guest's
// port to unbound, so a restarted backend binds it again.
//
// XenStore is the xenstore package's in-memory store with permissions,
// watches and transactions. OpXenStore returns one end of a socketpair
// over which the simulator serves xs_wire as the caller's domain, so
// xenstore.Client talks to it unchanged and guests are subject to node
// permissions. Creating a domain writes /local/domain/<id>/{name,vm} and
// fires @introduceDomain; destroying it removes /local/domain/<id> and
// fires @releaseDomain.
//
// # Control protocol
//
// One message per packet (proto.go): op, seq, errno, string length, eight
// 64-bit arguments, a string. Requests:
//
//	HELLO          a0 role (0 dom0, 1 guest), a1 domid (0: any), a2 pages,
//	               a3 grant entries, str name -> a0 domid, a1 pages,
//	               a2 entries, a3 generation, str uuid; guest: fds memfd,
//	               grant table
//	XENSTORE       -> fd: a stream socket speaking xs_wire as the caller
//	DOMAIN         dom0 only: a0 domid -> a0 pages, a1 entries, a2
//	               generation; fds memfd, grant table (read-only)
//	ALLOC_UNBOUND  a0 remote domid -> a0 port; fds wait, notify
//	BIND           dom0: a0 remote domid, a1 remote port -> a0 local port;
//	               fds wait, notify
//	CLOSE_PORT     a0 local port
//	LIST           -> str "domid name pages grants\n" per domain
//	DESTROY        dom0: a0 domid: destroy a guest as if it crashed
//
// and one push to dom0 connections, DOMAIN_GONE (seq 0, a0 domid, a1
// generation), after which the Hypervisor drops its mapping of that
// domain (once no grant handle uses it).
package xensim
