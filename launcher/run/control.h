/* The control socket of a running VM, RUNDIR/NAME/control.sock, both ends: the server
 * in the VM's supervisor (`qpass up`) and the client in `qpass down`, `status`, `qmp`.
 *
 * The wire: the client connects, sends one JSON object on one line, and reads one JSON
 * object back, after which the server closes. A request names its command:
 *   {"command": "status"}
 *   {"command": "down", "force": BOOL, "timeout": SECONDS}    (timeout optional)
 *   {"command": "qmp", "execute": "query-status", "arguments": {...}}
 * A reply is {"ok": true, ...what the command answers} or {"ok": false, "error": TEXT}.
 * Only root, or the user the supervisor runs as, may connect (SO_PEERCRED). */
#ifndef QP_CONTROL_H
#define QP_CONTROL_H

#include <json-c/json.h>
#include <stdbool.h>

#include "base/cpulist.h"
#include "base/err.h"

/* --- both ends' sockets --- */

/* A listening unix socket at path, 0600 (flags: SOCK_NONBLOCK or 0). Used for QEMU's
 * QMP socket too. */
int qp_unix_listen(const char *path, int flags, struct qp_err **err);

/* --- the server --- */

/* Listens on RUNDIR/NAME/control.sock (a stale one is replaced), non-blocking. */
int qp_ctl_listen(const char *name, struct qp_err **err);

/* Answers a request: returns the reply (qp_ctl_reply() or qp_ctl_reply_error()), which
 * the server sends and frees. */
typedef json_object *(*qp_ctl_handler)(void *ctx, json_object *req);

/* Accepts one client on the listening fd, checks its credentials, reads its request
 * (2 s at most), and sends handler's reply. */
void qp_ctl_serve_one(int listen_fd, qp_ctl_handler handler, void *ctx);

/* {"ok": true}, for the handler to add to. */
json_object *qp_ctl_reply(void);
/* {"ok": false, "error": msg}. */
json_object *qp_ctl_reply_error(const char *msg);

/* --- the client --- */

/* Sends req (taken) to the supervisor of VM `name`; *reply is its answer, whose "ok"
 * is true, or an error is set (with "error" from the supervisor when it said no). */
int qp_ctl_call(const char *name, json_object *req, json_object **reply, struct qp_err **err);

/* The requests. timeout <= 0: the profile's shutdown_timeout. args (taken) may be NULL. */
json_object *qp_ctl_req_status(void);
json_object *qp_ctl_req_down(bool force, long timeout);
json_object *qp_ctl_req_qmp(const char *execute, json_object *args);
/* vcpu -1: QEMU's other threads (the emulator). */
json_object *qp_ctl_req_pin(int vcpu, const struct qp_cpulist *cpus);

#endif
