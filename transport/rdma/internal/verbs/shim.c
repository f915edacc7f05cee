//go:build linux && cgo

// shim.c — see shim.h.
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include "shim.h"

static int neg_errno(void) { return errno ? -errno : -EIO; }

int gv_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return neg_errno();
	return 0;
}

int gv_sockaddr(struct sockaddr_storage *ss, const struct gv_addr *a)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == 4) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		s->sin_family = AF_INET;
		s->sin_port = htons(a->port);
		memcpy(&s->sin_addr, a->ip, 4);
		return 0;
	}
	if (a->family == 6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
		s->sin6_family = AF_INET6;
		s->sin6_port = htons(a->port);
		s->sin6_scope_id = a->scope;
		memcpy(&s->sin6_addr, a->ip, 16);
		return 0;
	}
	return -EAFNOSUPPORT;
}

int gv_get_addr(const struct sockaddr *sa, struct gv_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (!sa)
		return 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
		a->family = 4;
		a->port = ntohs(s->sin_port);
		memcpy(a->ip, &s->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
		a->family = 6;
		a->port = ntohs(s->sin6_port);
		a->scope = s->sin6_scope_id;
		memcpy(a->ip, &s->sin6_addr, 16);
	}
	return 0;
}

int gv_create_id(struct rdma_event_channel *ch, struct rdma_cm_id **id)
{
	if (rdma_create_id(ch, id, NULL, RDMA_PS_TCP))
		return neg_errno();
	return 0;
}

int gv_listen(struct rdma_cm_id *id, const struct gv_addr *a, int backlog)
{
	struct sockaddr_storage ss;
	int r = gv_sockaddr(&ss, a);
	if (r)
		return r;
	if (rdma_bind_addr(id, (struct sockaddr *)&ss))
		return neg_errno();
	if (rdma_listen(id, backlog))
		return neg_errno();
	return 0;
}

int gv_resolve_addr(struct rdma_cm_id *id, const struct gv_addr *src, const struct gv_addr *dst, int timeout_ms)
{
	struct sockaddr_storage s, d;
	int r = gv_sockaddr(&d, dst);
	if (r)
		return r;
	if (src->family) {
		r = gv_sockaddr(&s, src);
		if (r)
			return r;
	}
	if (rdma_resolve_addr(id, src->family ? (struct sockaddr *)&s : NULL, (struct sockaddr *)&d, timeout_ms))
		return neg_errno();
	return 0;
}

int gv_resolve_route(struct rdma_cm_id *id, int timeout_ms)
{
	if (rdma_resolve_route(id, timeout_ms))
		return neg_errno();
	return 0;
}

int gv_get_event(struct rdma_event_channel *ch, struct gv_event *out)
{
	struct rdma_cm_event *ev;
	uint32_t n;

	if (rdma_get_cm_event(ch, &ev))
		return neg_errno();
	out->ev = ev;
	out->id = ev->id;
	out->listen_id = ev->listen_id;
	out->type = ev->event;
	out->status = ev->status;
	out->responder_resources = ev->param.conn.responder_resources;
	out->initiator_depth = ev->param.conn.initiator_depth;
	out->retry_count = ev->param.conn.retry_count;
	out->rnr_retry_count = ev->param.conn.rnr_retry_count;
	n = ev->param.conn.private_data_len;
	if (!ev->param.conn.private_data)
		n = 0;
	if (n > GV_PDATA_MAX)
		n = GV_PDATA_MAX;
	/* only connection events carry connection parameters */
	switch (ev->event) {
	case RDMA_CM_EVENT_CONNECT_REQUEST:
	case RDMA_CM_EVENT_CONNECT_RESPONSE:
	case RDMA_CM_EVENT_ESTABLISHED:
	case RDMA_CM_EVENT_REJECTED:
		break;
	default:
		n = 0;
		out->responder_resources = out->initiator_depth = 0;
		out->retry_count = out->rnr_retry_count = 0;
	}
	out->pdata_len = n;
	if (n)
		memcpy(out->pdata, ev->param.conn.private_data, n);
	return 0;
}

int gv_ack_event(struct rdma_cm_event *ev)
{
	if (rdma_ack_cm_event(ev))
		return neg_errno();
	return 0;
}

int gv_create_qp(struct rdma_cm_id *id, struct ibv_pd *pd, struct ibv_cq *cq,
		 int send_wr, int recv_wr, int send_sge, int recv_sge, int inline_sz)
{
	struct ibv_qp_init_attr a;

	memset(&a, 0, sizeof(a));
	a.qp_type = IBV_QPT_RC;
	a.send_cq = cq;
	a.recv_cq = cq;
	a.sq_sig_all = 0;
	a.cap.max_send_wr = send_wr;
	a.cap.max_recv_wr = recv_wr;
	a.cap.max_send_sge = send_sge;
	a.cap.max_recv_sge = recv_sge;
	a.cap.max_inline_data = inline_sz;
	if (rdma_create_qp(id, pd, &a))
		return neg_errno();
	return (int)a.cap.max_inline_data;
}

static void conn_param(struct rdma_conn_param *p, const void *pdata, int len, int rr, int depth, int retry, int rnr)
{
	memset(p, 0, sizeof(*p));
	p->private_data = pdata;
	p->private_data_len = (uint8_t)len;
	p->responder_resources = (uint8_t)rr;
	p->initiator_depth = (uint8_t)depth;
	p->flow_control = 1;
	p->retry_count = (uint8_t)retry;
	p->rnr_retry_count = (uint8_t)rnr;
}

int gv_connect(struct rdma_cm_id *id, const void *pdata, int len, int rr, int depth, int retry, int rnr)
{
	struct rdma_conn_param p;

	conn_param(&p, pdata, len, rr, depth, retry, rnr);
	if (rdma_connect(id, &p))
		return neg_errno();
	return 0;
}

int gv_accept(struct rdma_cm_id *id, const void *pdata, int len, int rr, int depth, int rnr)
{
	struct rdma_conn_param p;

	conn_param(&p, pdata, len, rr, depth, 7, rnr);
	if (rdma_accept(id, &p))
		return neg_errno();
	return 0;
}

int gv_reject(struct rdma_cm_id *id, const void *pdata, int len)
{
	if (rdma_reject(id, pdata, (uint8_t)len))
		return neg_errno();
	return 0;
}

int gv_disconnect(struct rdma_cm_id *id)
{
	if (rdma_disconnect(id))
		return neg_errno();
	return 0;
}

int gv_destroy_qp(struct rdma_cm_id *id)
{
	rdma_destroy_qp(id);
	return 0;
}

int gv_destroy_id(struct rdma_cm_id *id)
{
	if (rdma_destroy_id(id))
		return neg_errno();
	return 0;
}

int gv_query_device(struct ibv_context *ctx, struct gv_dev_attr *out)
{
	struct ibv_device_attr a;
	int r = ibv_query_device(ctx, &a);

	if (r)
		return -r;
	out->max_qp_wr = a.max_qp_wr;
	out->max_sge = a.max_sge;
	out->max_cqe = a.max_cqe;
	out->max_mr = a.max_mr;
	out->max_qp_rd_atom = a.max_qp_rd_atom;
	out->max_qp_init_rd_atom = a.max_qp_init_rd_atom;
	out->node_guid = be64toh(a.node_guid);
	return 0;
}

int gv_query_port(struct ibv_context *ctx, uint8_t port, struct gv_port_attr *out)
{
	struct ibv_port_attr a;
	union ibv_gid gid;
	int r = ibv_query_port(ctx, port, &a);

	if (r)
		return -r;
	out->max_msg_sz = a.max_msg_sz;
	out->link_layer = a.link_layer;
	out->state = a.state;
	memset(out->gid, 0, 16);
	if (ibv_query_gid(ctx, port, 0, &gid) == 0)
		memcpy(out->gid, gid.raw, 16);
	return 0;
}

struct ibv_pd *gv_alloc_pd(struct ibv_context *ctx, int *err)
{
	struct ibv_pd *pd = ibv_alloc_pd(ctx);

	*err = pd ? 0 : neg_errno();
	return pd;
}

struct ibv_mr *gv_reg_mr(struct ibv_pd *pd, void *addr, size_t len, int access, int *err)
{
	struct ibv_mr *mr = ibv_reg_mr(pd, addr, len, access);

	*err = mr ? 0 : neg_errno();
	return mr;
}

struct ibv_comp_channel *gv_create_comp_channel(struct ibv_context *ctx, int *err)
{
	struct ibv_comp_channel *ch = ibv_create_comp_channel(ctx);

	*err = ch ? 0 : neg_errno();
	return ch;
}

struct ibv_cq *gv_create_cq(struct ibv_context *ctx, int cqe, struct ibv_comp_channel *ch, int *err)
{
	struct ibv_cq *cq = ibv_create_cq(ctx, cqe, NULL, ch, 0);

	*err = cq ? 0 : neg_errno();
	return cq;
}

int gv_req_notify(struct ibv_cq *cq)
{
	int r = ibv_req_notify_cq(cq, 0);

	return r ? -r : 0;
}

int gv_get_cq_event(struct ibv_comp_channel *ch)
{
	struct ibv_cq *cq;
	void *ctx;

	if (ibv_get_cq_event(ch, &cq, &ctx))
		return neg_errno();
	return 0;
}

void gv_ack_cq_events(struct ibv_cq *cq, unsigned int n)
{
	ibv_ack_cq_events(cq, n);
}

int gv_poll(struct ibv_cq *cq, struct gv_wc *out, int n)
{
	struct ibv_wc wc[GV_BATCH];
	int i, r;

	if (n > GV_BATCH)
		n = GV_BATCH;
	r = ibv_poll_cq(cq, n, wc);
	if (r < 0)
		return r;
	for (i = 0; i < r; i++) {
		out[i].wr_id = wc[i].wr_id;
		out[i].status = wc[i].status;
		out[i].opcode = wc[i].opcode;
		out[i].byte_len = wc[i].byte_len;
		out[i].qp_num = wc[i].qp_num;
	}
	return r;
}

static const enum ibv_wr_opcode wr_ops[3] = {IBV_WR_SEND, IBV_WR_RDMA_WRITE, IBV_WR_RDMA_READ};

int gv_post_send(struct ibv_qp *qp, const struct gv_swr *w, int n, int *posted)
{
	struct ibv_send_wr wr[GV_BATCH], *bad;
	struct ibv_sge sge[GV_BATCH];
	int done = 0;

	*posted = 0;
	while (done < n) {
		int k = n - done, i, r;

		if (k > GV_BATCH)
			k = GV_BATCH;
		for (i = 0; i < k; i++) {
			const struct gv_swr *s = &w[done + i];

			memset(&wr[i], 0, sizeof(wr[i]));
			sge[i].addr = s->laddr;
			sge[i].length = s->len;
			sge[i].lkey = s->lkey;
			wr[i].wr_id = s->wr_id;
			wr[i].sg_list = &sge[i];
			wr[i].num_sge = s->len ? 1 : 0;
			wr[i].opcode = wr_ops[s->opcode > 2 ? 0 : s->opcode];
			if (s->flags & 1)
				wr[i].send_flags |= IBV_SEND_SIGNALED;
			if (s->flags & 2)
				wr[i].send_flags |= IBV_SEND_INLINE;
			if (s->opcode != 0) {
				wr[i].wr.rdma.remote_addr = s->raddr;
				wr[i].wr.rdma.rkey = s->rkey;
			}
			wr[i].next = i + 1 < k ? &wr[i + 1] : NULL;
		}
		bad = NULL;
		r = ibv_post_send(qp, wr, &bad);
		if (r) {
			if (bad)
				done += (int)(bad - wr);
			*posted = done;
			return -r;
		}
		done += k;
	}
	*posted = done;
	return 0;
}

int gv_post_recv(struct ibv_qp *qp, const struct gv_rwr *w, int n, int *posted)
{
	struct ibv_recv_wr wr[GV_BATCH], *bad;
	struct ibv_sge sge[GV_BATCH];
	int done = 0;

	*posted = 0;
	while (done < n) {
		int k = n - done, i, r;

		if (k > GV_BATCH)
			k = GV_BATCH;
		for (i = 0; i < k; i++) {
			const struct gv_rwr *s = &w[done + i];

			sge[i].addr = s->addr;
			sge[i].length = s->len;
			sge[i].lkey = s->lkey;
			wr[i].wr_id = s->wr_id;
			wr[i].sg_list = &sge[i];
			wr[i].num_sge = 1;
			wr[i].next = i + 1 < k ? &wr[i + 1] : NULL;
		}
		bad = NULL;
		r = ibv_post_recv(qp, wr, &bad);
		if (r) {
			if (bad)
				done += (int)(bad - wr);
			*posted = done;
			return -r;
		}
		done += k;
	}
	*posted = done;
	return 0;
}
