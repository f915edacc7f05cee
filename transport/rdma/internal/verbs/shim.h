// shim.h — the C side of package verbs: flat structs Go can fill without
// holding Go pointers in C memory, and one call per batch of work requests
// or completions. Every function returns 0 or a negative errno (or a count).
#ifndef SRPTGT_VERBS_SHIM_H
#define SRPTGT_VERBS_SHIM_H

#include <stdint.h>
#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#define GV_BATCH 32
#define GV_PDATA_MAX 256

struct gv_wc {
	uint64_t wr_id;
	uint32_t status;
	uint32_t opcode;
	uint32_t byte_len;
	uint32_t qp_num;
};

struct gv_swr {
	uint64_t wr_id;
	uint64_t laddr;
	uint64_t raddr;
	uint32_t lkey;
	uint32_t len;
	uint32_t rkey;
	uint8_t opcode; /* 0 SEND, 1 RDMA WRITE, 2 RDMA READ */
	uint8_t flags;  /* 1 signaled, 2 inline */
	uint8_t pad[2];
};

struct gv_rwr {
	uint64_t wr_id;
	uint64_t addr;
	uint32_t lkey;
	uint32_t len;
};

struct gv_addr {
	uint8_t ip[16];
	uint32_t scope;
	uint16_t port;
	uint8_t family; /* 4, 6 or 0 */
};

struct gv_event {
	struct rdma_cm_event *ev;
	struct rdma_cm_id *id;
	struct rdma_cm_id *listen_id;
	int32_t type;
	int32_t status;
	uint8_t responder_resources;
	uint8_t initiator_depth;
	uint8_t retry_count;
	uint8_t rnr_retry_count;
	uint32_t pdata_len;
	uint8_t pdata[GV_PDATA_MAX];
};

struct gv_dev_attr {
	int32_t max_qp_wr, max_sge, max_cqe, max_mr, max_qp_rd_atom, max_qp_init_rd_atom;
	uint64_t node_guid;
};

struct gv_port_attr {
	uint32_t max_msg_sz;
	uint8_t link_layer;
	uint8_t state;
	uint8_t gid[16];
};

int gv_set_nonblock(int fd);
int gv_sockaddr(struct sockaddr_storage *ss, const struct gv_addr *a);
int gv_get_addr(const struct sockaddr *sa, struct gv_addr *a);

int gv_create_id(struct rdma_event_channel *ch, struct rdma_cm_id **id);
int gv_listen(struct rdma_cm_id *id, const struct gv_addr *a, int backlog);
int gv_resolve_addr(struct rdma_cm_id *id, const struct gv_addr *src, const struct gv_addr *dst, int timeout_ms);
int gv_resolve_route(struct rdma_cm_id *id, int timeout_ms);
int gv_get_event(struct rdma_event_channel *ch, struct gv_event *out);
int gv_ack_event(struct rdma_cm_event *ev);
int gv_create_qp(struct rdma_cm_id *id, struct ibv_pd *pd, struct ibv_cq *cq,
		 int send_wr, int recv_wr, int send_sge, int recv_sge, int inline_sz);
int gv_connect(struct rdma_cm_id *id, const void *pdata, int len, int rr, int depth, int retry, int rnr);
int gv_accept(struct rdma_cm_id *id, const void *pdata, int len, int rr, int depth, int rnr);
int gv_reject(struct rdma_cm_id *id, const void *pdata, int len);
int gv_disconnect(struct rdma_cm_id *id);
int gv_destroy_qp(struct rdma_cm_id *id);
int gv_destroy_id(struct rdma_cm_id *id);

int gv_query_device(struct ibv_context *ctx, struct gv_dev_attr *out);
int gv_query_port(struct ibv_context *ctx, uint8_t port, struct gv_port_attr *out);
struct ibv_pd *gv_alloc_pd(struct ibv_context *ctx, int *err);
struct ibv_mr *gv_reg_mr(struct ibv_pd *pd, void *addr, size_t len, int access, int *err);

struct ibv_comp_channel *gv_create_comp_channel(struct ibv_context *ctx, int *err);
struct ibv_cq *gv_create_cq(struct ibv_context *ctx, int cqe, struct ibv_comp_channel *ch, int *err);
int gv_req_notify(struct ibv_cq *cq);
int gv_get_cq_event(struct ibv_comp_channel *ch);
void gv_ack_cq_events(struct ibv_cq *cq, unsigned int n);
int gv_poll(struct ibv_cq *cq, struct gv_wc *out, int n);

int gv_post_send(struct ibv_qp *qp, const struct gv_swr *w, int n, int *posted);
int gv_post_recv(struct ibv_qp *qp, const struct gv_rwr *w, int n, int *posted);

#endif
