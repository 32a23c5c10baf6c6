#include "run/control.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/rundir.h"
#include "base/util.h"

/* --- both ends' sockets ---------------------------------------------------------- */

int qp_unix_listen(const char *path, int flags, struct qp_err **err)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(a.sun_path))
		return qp_err_set(err, 0, "%s: the path is too long for a socket", path);
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
	if (fd < 0)
		return qp_err_set(err, errno, "socket");
	mode_t old = umask(0077);
	int rc = bind(fd, (struct sockaddr *)&a, sizeof(a));
	umask(old);
	if (rc < 0 || listen(fd, 8) < 0) {
		int e = errno;
		close(fd);
		return qp_err_set(err, e, "cannot listen on %s", path);
	}
	return fd;
}

/* --- the server ------------------------------------------------------------------ */

int qp_ctl_listen(const char *name, struct qp_err **err)
{
	qp_autofree char *path = qp_rundir_vm(name, QP_VM_CONTROL);
	unlink(path);
	return qp_unix_listen(path, SOCK_NONBLOCK, err);
}

json_object *qp_ctl_reply(void)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(true));
	return o;
}

json_object *qp_ctl_reply_error(const char *msg)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(false));
	json_object_object_add(o, "error", json_object_new_string(msg));
	return o;
}

/* Reads the request (one line, within the socket's timeouts) and asks the handler. */
static json_object *answer(int c, qp_ctl_handler handler, void *ctx)
{
	struct timeval tv = { .tv_sec = 2 };
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	char buf[65536];
	size_t n = 0;
	while (n < sizeof(buf) - 1) {
		ssize_t r = read(c, buf + n, sizeof(buf) - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		if (memchr(buf, '\n', n))
			break;
	}
	buf[n] = '\0';
	json_object *req = json_tokener_parse(buf), *reply;
	if (!json_object_is_type(req, json_type_object))
		reply = qp_ctl_reply_error("a request is one JSON object on one line");
	else
		reply = handler(ctx, req);
	json_object_put(req);
	return reply;
}

void qp_ctl_serve_one(int listen_fd, qp_ctl_handler handler, void *ctx)
{
	int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	json_object *reply = NULL;
	/* Only root, or the user qpass runs as, may control the VM. */
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    (cred.uid != 0 && cred.uid != geteuid()))
		reply = qp_ctl_reply_error("permission denied");
	else
		reply = answer(c, handler, ctx);
	qp_autofree char *text = qp_xasprintf("%s\n", json_object_to_json_string_ext(
							     reply, JSON_C_TO_STRING_PLAIN));
	json_object_put(reply);
	if (send(c, text, strlen(text), MSG_NOSIGNAL) < 0) {
		/* The client went away; nothing to tell it. */
	}
	close(c);
}

/* --- the client ------------------------------------------------------------------ */

int qp_ctl_call(const char *name, json_object *req, json_object **reply, struct qp_err **err)
{
	if (!qp_vm_name_ok(name)) {
		json_object_put(req);
		qp_autofree char *q = qp_quote(name);
		return qp_err_set(err, 0, "%s is not a VM name (1 to 64 letters, digits, '.', '_' "
				  "or '-', starting with a letter or digit)", q);
	}
	*reply = NULL;
	qp_autofree char *path = qp_rundir_vm(name, QP_VM_CONTROL);
	qp_autofree char *text = qp_xasprintf("%s\n", json_object_to_json_string_ext(
							    req, JSON_C_TO_STRING_PLAIN));
	json_object_put(req);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(a.sun_path))
		return qp_err_set(err, 0, "%s: the path is too long for a socket", path);
	strcpy(a.sun_path, path);
	qp_autoclose int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return qp_err_set(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;
		if (e == ENOENT || e == ECONNREFUSED) {
			qp_err_set(err, 0, "no VM named %s is running (%s: %s)", name, path,
				   strerror(e));
			return qp_err_hint(err, "`qpass status` lists the running VMs");
		}
		return qp_err_set(err, e, "cannot reach the VM %s at %s", name, path);
	}
	/* The supervisor answers at once, but a qmp request may wait on QEMU. */
	struct timeval tv = { .tv_sec = 40 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (send(fd, text, strlen(text), MSG_NOSIGNAL) < 0)
		return qp_err_set(err, errno, "cannot talk to the VM %s", name);
	struct qp_buf b = { 0 };
	char buf[65536];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf) - 1)) > 0) {
		buf[n] = '\0';
		qp_buf_add(&b, buf);
	}
	if (n < 0) {
		qp_buf_free(&b);
		return qp_err_set(err, errno, "no answer from the VM %s", name);
	}
	qp_autofree char *answer = qp_buf_steal(&b);
	json_object *r = json_tokener_parse(answer);
	if (!json_object_is_type(r, json_type_object)) {
		json_object_put(r);
		return qp_err_set(err, 0, "the VM %s answered something that is not JSON", name);
	}
	json_object *ok = json_object_object_get(r, "ok");
	if (!json_object_get_boolean(ok)) {
		qp_err_set(err, 0, "the VM %s: %s", name,
			   json_object_get_string(json_object_object_get(r, "error")));
		json_object_put(r);
		return -1;
	}
	*reply = r;
	return 0;
}

json_object *qp_ctl_req_status(void)
{
	json_object *req = json_object_new_object();
	json_object_object_add(req, "command", json_object_new_string("status"));
	return req;
}

json_object *qp_ctl_req_down(bool force, long timeout)
{
	json_object *req = json_object_new_object();
	json_object_object_add(req, "command", json_object_new_string("down"));
	json_object_object_add(req, "force", json_object_new_boolean(force));
	if (timeout > 0)
		json_object_object_add(req, "timeout", json_object_new_int((int)timeout));
	return req;
}

json_object *qp_ctl_req_qmp(const char *execute, json_object *args)
{
	json_object *req = json_object_new_object();
	json_object_object_add(req, "command", json_object_new_string("qmp"));
	json_object_object_add(req, "execute", json_object_new_string(execute));
	if (args)
		json_object_object_add(req, "arguments", args);
	return req;
}

json_object *qp_ctl_req_pin(int vcpu, const struct qp_cpulist *cpus)
{
	json_object *req = json_object_new_object();
	json_object_object_add(req, "command", json_object_new_string("pin"));
	if (vcpu >= 0)
		json_object_object_add(req, "vcpu", json_object_new_int(vcpu));
	else
		json_object_object_add(req, "emulator", json_object_new_boolean(true));
	json_object *a = json_object_new_array();
	for (size_t i = 0; i < cpus->n; i++)
		json_object_array_add(a, json_object_new_int(cpus->cpu[i]));
	json_object_object_add(req, "cpus", a);
	return req;
}
