// Package vmtest runs the RDMA transport's own checks against the Linux
// kernel's SRP initiator in the VM harness (test/vm), in one boot per
// target of the rdma profile:
//
//   - srp_login: SRP_LOGIN_REJ reasons as ib_srp logs them (IU length too
//     small, a wrong target port ID, an initiator the ACL refuses);
//   - srp_restart: kill -9 srptgt under fio --verify; ib_srp reconnects by
//     itself and the job completes with verified data;
//   - srp_bench: srptgt bench, the Go initiator over real verbs;
//   - pr_fence: the sg_persist sequence of fence_scsi, then Debian's
//     fence_scsi agent itself fencing one of two ib_srp ports.
//
// The reference target (LIO ib_srpt) runs the same scripts where they
// apply; its results are recorded, not judged. Not built with -race:
// test/all.sh's race pass would boot the VMs a second time.
package vmtest
