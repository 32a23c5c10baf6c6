/* A QMP client on json-c (QEMU's docs/interop/qmp-spec.rst).
 *
 * Two layers: a pure one that turns bytes into messages (any split, any size) and
 * classifies them as greeting / return / error / event; and a client on a socket that
 * reads the greeting, negotiates capabilities, sends commands with an `id`, matches
 * replies, queues the events that arrive in between, and never waits without a
 * deadline. An error reply is a value (QP_QMP_ERROR), not a failure of the client. */
#ifndef QP_QMP_H
#define QP_QMP_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

enum qp_qmp_kind {
	QP_QMP_GREETING,
	QP_QMP_RETURN,
	QP_QMP_ERROR,
	QP_QMP_EVENT,
	QP_QMP_BAD,       /* a message that could not be read, dropped: see bad */
};

struct qp_qmp_msg {
	enum qp_qmp_kind kind;
	json_object *obj;         /* the whole message; owned */
	json_object *data;        /* borrowed: the greeting's "QMP", the return value, the
	                           * "error" object, or the event's "data" (may be NULL) */
	json_object *id;          /* borrowed; NULL when the message has none */
	const char *event;        /* QP_QMP_EVENT: its name */
	const char *error_class;  /* QP_QMP_ERROR: "GenericError"... */
	const char *error_desc;
	char *bad;                /* QP_QMP_BAD: what was wrong with it; owned */
};

/* Classifies one message; takes obj (freed on failure too). */
int qp_qmp_classify(json_object *obj, struct qp_qmp_msg *out, struct qp_err **err);
void qp_qmp_msg_free(struct qp_qmp_msg *m);

/* Bytes to messages. */
struct qp_qmp_reader;
struct qp_qmp_reader *qp_qmp_reader_new(void);
void qp_qmp_reader_free(struct qp_qmp_reader *r);
/* Feeds bytes; complete messages queue up inside. A message that cannot be read (not
 * JSON, nested too deep, larger than 64 MiB, not an object, or not a greeting, reply
 * or event) queues as QP_QMP_BAD, and reading starts again after the next newline
 * (QEMU ends each message with one): one bad message never silences the rest. */
void qp_qmp_reader_feed(struct qp_qmp_reader *r, const char *buf, size_t n);
/* Pops the oldest complete message: 1, or 0 when there is none yet. */
int qp_qmp_reader_next(struct qp_qmp_reader *r, struct qp_qmp_msg *out);

/* The client. */
struct qp_qmp;

/* Takes a connected socket (closed on failure too): reads the greeting and enters
 * command mode, within timeout_ms. */
int qp_qmp_open(int fd, int timeout_ms, struct qp_qmp **out, struct qp_err **err);
void qp_qmp_close(struct qp_qmp *q);
/* The socket, for poll(); after it is readable, call qp_qmp_pump(). */
int qp_qmp_fd(const struct qp_qmp *q);
/* The QEMU version from the greeting: "7.2.22". */
const char *qp_qmp_version(const struct qp_qmp *q);

/* Runs a command (args taken, may be NULL) and waits for its reply, at most
 * timeout_ms: reply->kind is QP_QMP_RETURN or QP_QMP_ERROR. Events that arrive
 * meanwhile are queued. */
int qp_qmp_execute(struct qp_qmp *q, const char *cmd, json_object *args, int timeout_ms,
		   struct qp_qmp_msg *reply, struct qp_err **err);
/* Reads what the socket has without waiting; queues events. -1 when QEMU closed it. */
int qp_qmp_pump(struct qp_qmp *q, struct qp_err **err);
/* The oldest queued event (or QP_QMP_BAD message, for the caller to say): 1, or 0
 * when none is queued. */
int qp_qmp_next_event(struct qp_qmp *q, struct qp_qmp_msg *ev);
/* Waits up to timeout_ms for an event: 1 got one, 0 timed out. */
int qp_qmp_wait_event(struct qp_qmp *q, int timeout_ms, struct qp_qmp_msg *ev,
		      struct qp_err **err);

#endif
