#include "qmp/qmp.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"

/* A message larger than this is not QEMU talking. */
#define QP_QMP_MAX_MESSAGE (64u << 20)

/* --- messages ------------------------------------------------------------------ */

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;
	return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

int qp_qmp_classify(json_object *obj, struct qp_qmp_msg *out, struct qp_err **err)
{
	memset(out, 0, sizeof(*out));
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return qp_err_set(err, 0, "QMP: a message that is not a JSON object");
	}
	out->obj = obj;
	out->id = get(obj, "id");
	json_object *v;
	if ((v = get(obj, "QMP"))) {
		out->kind = QP_QMP_GREETING;
		out->data = v;
		if (json_object_is_type(v, json_type_object))
			return 0;
	} else if (json_object_object_get_ex(obj, "return", &v)) {
		out->kind = QP_QMP_RETURN;
		out->data = v;
		return 0;
	} else if ((v = get(obj, "error"))) {
		out->kind = QP_QMP_ERROR;
		out->data = v;
		json_object *cls = get(v, "class"), *desc = get(v, "desc");
		if (json_object_is_type(cls, json_type_string) &&
		    json_object_is_type(desc, json_type_string)) {
			out->error_class = json_object_get_string(cls);
			out->error_desc = json_object_get_string(desc);
			return 0;
		}
	} else if ((v = get(obj, "event"))) {
		out->kind = QP_QMP_EVENT;
		out->data = get(obj, "data");
		if (json_object_is_type(v, json_type_string)) {
			out->event = json_object_get_string(v);
			return 0;
		}
	}
	qp_autofree char *s = qp_xstrdup(json_object_to_json_string_ext(obj,
									 JSON_C_TO_STRING_PLAIN));
	qp_autofree char *q = qp_quote(s);
	qp_qmp_msg_free(out);
	return qp_err_set(err, 0, "QMP: not a greeting, reply or event: %s", q);
}

void qp_qmp_msg_free(struct qp_qmp_msg *m)
{
	json_object_put(m->obj);
	free(m->bad);
	memset(m, 0, sizeof(*m));
}

/* --- bytes to messages -------------------------------------------------------------- */

struct qp_qmp_reader {
	json_tokener *tok;
	size_t pending;            /* bytes of the message being read */
	bool skipping;             /* after a bad message: until the next newline */
	struct qp_qmp_msg *queue;  /* complete messages, oldest first */
	size_t head, n, cap;
};

struct qp_qmp_reader *qp_qmp_reader_new(void)
{
	struct qp_qmp_reader *r = qp_xcalloc(1, sizeof(*r));
	r->tok = json_tokener_new_ex(64);
	if (!r->tok)
		abort();
	/* QEMU sends strict JSON; anything else is a broken stream, not a comment. */
	json_tokener_set_flags(r->tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
	return r;
}

void qp_qmp_reader_free(struct qp_qmp_reader *r)
{
	if (!r)
		return;
	for (size_t i = r->head; i < r->n; i++)
		qp_qmp_msg_free(&r->queue[i]);
	free(r->queue);
	json_tokener_free(r->tok);
	free(r);
}

static void enqueue(struct qp_qmp_reader *r, struct qp_qmp_msg *m)
{
	if (r->head == r->n)
		r->head = r->n = 0;
	r->queue = qp_xgrow(r->queue, &r->cap, r->n + 1, sizeof(*r->queue));
	r->queue[r->n++] = *m;
}

/* What json-c takes even when strict and JSON has not: NaN and Infinity, and a NUL
 * (\u0000) in a string, which C strings would cut. NULL when o has none. */
static const char *not_json(json_object *o)
{
	enum json_type t = json_object_get_type(o);
	if (t == json_type_double)
		return isfinite(json_object_get_double(o)) ? NULL : "NaN or Infinity, not JSON";
	if (t == json_type_string)
		return strlen(json_object_get_string(o)) != (size_t)json_object_get_string_len(o)
			       ? "a NUL character (\\u0000) in a string" : NULL;
	if (t == json_type_array) {
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			const char *why = not_json(json_object_array_get_idx(o, i));
			if (why)
				return why;
		}
	} else if (t == json_type_object) {
		json_object_object_foreach(o, key, v) {
			(void)key;
			const char *why = not_json(v);
			if (why)
				return why;
		}
	}
	return NULL;
}

/* A message that could not be read: said in the queue, the tokener made new. */
static void bad(struct qp_qmp_reader *r, bool skip, struct qp_err *why)
{
	struct qp_qmp_msg m = { .kind = QP_QMP_BAD, .bad = qp_xstrdup(why->msg) };
	qp_err_free(why);
	enqueue(r, &m);
	json_tokener_reset(r->tok);
	r->pending = 0;
	r->skipping = skip;
}

void qp_qmp_reader_feed(struct qp_qmp_reader *r, const char *buf, size_t n)
{
	while (n) {
		if (r->skipping) {
			const char *nl = memchr(buf, '\n', n);
			if (!nl)
				return;
			n -= (size_t)(nl + 1 - buf);
			buf = nl + 1;
			r->skipping = false;
			continue;
		}
		/* Blanks between messages ("\r\n") are no part of any. */
		if (!r->pending && (*buf == ' ' || *buf == '\t' || *buf == '\r' || *buf == '\n')) {
			buf++;
			n--;
			continue;
		}
		size_t chunk = n > (1u << 30) ? (1u << 30) : n;
		json_object *obj = json_tokener_parse_ex(r->tok, buf, (int)chunk);
		enum json_tokener_error e = json_tokener_get_error(r->tok);
		size_t used = json_tokener_get_parse_end(r->tok);
		struct qp_err *why = NULL;
		if (e == json_tokener_continue) {
			r->pending += chunk;
			if (r->pending > QP_QMP_MAX_MESSAGE) {
				qp_err_set(&why, 0, "a message larger than %u MiB",
					   QP_QMP_MAX_MESSAGE >> 20);
				bad(r, true, why);
			}
			return;
		}
		if (e != json_tokener_success || !obj) {
			json_object_put(obj);
			qp_err_set(&why, 0, "%s", e != json_tokener_success ?
				   json_tokener_error_desc(e) : "null, not a JSON object");
			bad(r, e != json_tokener_success, why);
			/* A bad message ends at its newline: what follows is read again. */
			buf += used ? used : 1;
			n -= used ? used : 1;
			continue;
		}
		json_tokener_reset(r->tok);
		r->pending = 0;
		buf += used;
		n -= used;
		const char *wrong = not_json(obj);
		struct qp_qmp_msg m;
		if (wrong) {
			json_object_put(obj);
			qp_err_set(&why, 0, "%s", wrong);
			bad(r, false, why);
		} else if (qp_qmp_classify(obj, &m, &why) < 0) {
			bad(r, false, why);
		} else {
			enqueue(r, &m);
		}
	}
}

int qp_qmp_reader_next(struct qp_qmp_reader *r, struct qp_qmp_msg *out)
{
	if (r->head == r->n)
		return 0;
	*out = r->queue[r->head++];
	return 1;
}

/* --- the client ------------------------------------------------------------------ */

struct qp_qmp {
	int fd;
	struct qp_qmp_reader *r;
	struct qp_qmp_msg *events;
	size_t ev_head, ev_n, ev_cap;
	int64_t next_id;
	char *version;
};

static void queue_event(struct qp_qmp *q, struct qp_qmp_msg *m)
{
	if (q->ev_head == q->ev_n)
		q->ev_head = q->ev_n = 0;
	q->events = qp_xgrow(q->events, &q->ev_cap, q->ev_n + 1, sizeof(*q->events));
	q->events[q->ev_n++] = *m;
}

/* Reads once from the socket (it is readable, or the caller waits for it). */
static int read_some(struct qp_qmp *q, struct qp_err **err)
{
	char buf[65536];
	ssize_t n;
	do
		n = recv(q->fd, buf, sizeof(buf), MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n < 0)
		return qp_err_set(err, errno, "QMP: cannot read from QEMU");
	if (n == 0)
		return qp_err_set(err, ECONNRESET, "QMP: QEMU closed the connection");
	qp_qmp_reader_feed(q->r, buf, (size_t)n);
	return 0;
}

/* Waits until the socket is readable or the deadline passes: 1 readable, 0 timed out. */
static int wait_readable(struct qp_qmp *q, int64_t deadline, struct qp_err **err)
{
	for (;;) {
		int64_t left = deadline - qp_now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = { .fd = q->fd, .events = POLLIN };
		int rc = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return qp_err_set(err, errno, "QMP: poll");
		if (rc > 0)
			return 1;
	}
}

static int send_all(struct qp_qmp *q, const char *s, struct qp_err **err)
{
	size_t n = strlen(s);
	while (n) {
		ssize_t w = send(q->fd, s, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = q->fd, .events = POLLOUT };
			if (poll(&p, 1, 5000) <= 0)
				return qp_err_set(err, ETIMEDOUT, "QMP: cannot write to QEMU");
			continue;
		}
		if (w < 0)
			return qp_err_set(err, errno, "QMP: cannot write to QEMU");
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int qp_qmp_pump(struct qp_qmp *q, struct qp_err **err)
{
	if (read_some(q, err) < 0)
		return -1;
	struct qp_qmp_msg m;
	while (qp_qmp_reader_next(q->r, &m)) {
		if (m.kind == QP_QMP_EVENT || m.kind == QP_QMP_BAD)
			queue_event(q, &m);
		else
			qp_qmp_msg_free(&m);  /* a reply nobody waits for: dropped, as the spec says */
	}
	return 0;
}

int qp_qmp_execute(struct qp_qmp *q, const char *cmd, json_object *args, int timeout_ms,
		   struct qp_qmp_msg *reply, struct qp_err **err)
{
	memset(reply, 0, sizeof(*reply));
	int64_t id = q->next_id++;
	json_object *msg = json_object_new_object();
	json_object_object_add(msg, "execute", json_object_new_string(cmd));
	if (args)
		json_object_object_add(msg, "arguments", args);
	json_object_object_add(msg, "id", json_object_new_int64(id));
	qp_autofree char *text = qp_xasprintf("%s\n", json_object_to_json_string_ext(
							    msg, JSON_C_TO_STRING_PLAIN));
	json_object_put(msg);
	if (send_all(q, text, err) < 0)
		return qp_err_prefix(err, "%s", cmd);
	int64_t deadline = qp_now_ms() + timeout_ms;
	for (;;) {
		struct qp_qmp_msg m;
		while (qp_qmp_reader_next(q->r, &m)) {
			if (m.kind == QP_QMP_EVENT || m.kind == QP_QMP_BAD) {
				queue_event(q, &m);
				continue;
			}
			if ((m.kind == QP_QMP_RETURN || m.kind == QP_QMP_ERROR) && m.id &&
			    json_object_is_type(m.id, json_type_int) &&
			    json_object_get_int64(m.id) == id) {
				*reply = m;
				return 0;
			}
			/* An error without id answers a command QEMU could not read: ours. */
			if (m.kind == QP_QMP_ERROR && !m.id) {
				*reply = m;
				return 0;
			}
			qp_qmp_msg_free(&m);
		}
		int rc = wait_readable(q, deadline, err);
		if (rc < 0)
			return -1;
		if (rc == 0)
			return qp_err_set(err, ETIMEDOUT, "QMP: no reply to %s within %d ms", cmd,
					  timeout_ms);
		if (read_some(q, err) < 0)
			return qp_err_prefix(err, "%s", cmd);
	}
}

int qp_qmp_next_event(struct qp_qmp *q, struct qp_qmp_msg *ev)
{
	struct qp_qmp_msg m;
	while (qp_qmp_reader_next(q->r, &m)) {
		if (m.kind == QP_QMP_EVENT || m.kind == QP_QMP_BAD)
			queue_event(q, &m);
		else
			qp_qmp_msg_free(&m);
	}
	if (q->ev_head == q->ev_n)
		return 0;
	*ev = q->events[q->ev_head++];
	return 1;
}

int qp_qmp_wait_event(struct qp_qmp *q, int timeout_ms, struct qp_qmp_msg *ev,
		      struct qp_err **err)
{
	int64_t deadline = qp_now_ms() + timeout_ms;
	for (;;) {
		if (qp_qmp_next_event(q, ev))
			return 1;
		int rc = wait_readable(q, deadline, err);
		if (rc <= 0)
			return rc;
		if (read_some(q, err) < 0)
			return -1;
	}
}

int qp_qmp_open(int fd, int timeout_ms, struct qp_qmp **out, struct qp_err **err)
{
	struct qp_qmp *q = qp_xcalloc(1, sizeof(*q));
	q->fd = fd;
	q->r = qp_qmp_reader_new();
	q->next_id = 1;
	int64_t deadline = qp_now_ms() + timeout_ms;
	struct qp_qmp_msg m = { 0 };
	for (;;) {
		if (qp_qmp_reader_next(q->r, &m))
			break;
		int rc = wait_readable(q, deadline, err);
		if (rc == 0)
			qp_err_set(err, ETIMEDOUT, "QMP: no greeting from QEMU within %d ms",
				   timeout_ms);
		if (rc <= 0 || read_some(q, err) < 0)
			goto fail;
	}
	if (m.kind != QP_QMP_GREETING) {
		qp_err_set(err, 0, "QMP: QEMU did not start with a greeting%s%s",
			   m.bad ? ": " : "", m.bad ? m.bad : "");
		qp_qmp_msg_free(&m);
		goto fail;
	}
	json_object *ver = get(get(m.data, "version"), "qemu");
	q->version = qp_xasprintf("%d.%d.%d", json_object_get_int(get(ver, "major")),
				  json_object_get_int(get(ver, "minor")),
				  json_object_get_int(get(ver, "micro")));
	qp_qmp_msg_free(&m);
	struct qp_qmp_msg reply;
	int64_t left = deadline - qp_now_ms();
	if (qp_qmp_execute(q, "qmp_capabilities", NULL, left > 0 ? (int)left : 1, &reply, err) < 0)
		goto fail;
	bool ok = reply.kind == QP_QMP_RETURN;
	if (!ok)
		qp_err_set(err, 0, "QMP: qmp_capabilities: %s", reply.error_desc);
	qp_qmp_msg_free(&reply);
	if (!ok)
		goto fail;
	*out = q;
	return 0;
fail:
	qp_qmp_close(q);
	return -1;
}

void qp_qmp_close(struct qp_qmp *q)
{
	if (!q)
		return;
	for (size_t i = q->ev_head; i < q->ev_n; i++)
		qp_qmp_msg_free(&q->events[i]);
	free(q->events);
	qp_qmp_reader_free(q->r);
	qp_closep(&q->fd);
	free(q->version);
	free(q);
}

int qp_qmp_fd(const struct qp_qmp *q)
{
	return q->fd;
}

const char *qp_qmp_version(const struct qp_qmp *q)
{
	return q->version;
}
