// Package vmtest runs the Xen transport's own checks against the stock
// xen-scsifront in the VM harness's xen profile (test/vm), in one boot of
// srptgt:
//
//   - guests: a second PV guest does verified I/O on a LU of its own while
//     the first runs its suites (two guests at once);
//   - cross: dom0 logs in to the same srptgt over soft RoCE with the
//     kernel's ib_srp; a persistent reservation taken through one transport
//     blocks the other's writes;
//   - xenctl: hot-remove and hot-add of a LUN under fio --verify on the
//     other LUN, SIGTERM of srptgt under I/O and restart.
//
// The reference target has no part in these (cross and xenctl need srptgt
// in dom0); test/vm runs the harness's common suites against both. Not
// built with -race: test/all.sh's race pass would boot the VM again.
package vmtest
