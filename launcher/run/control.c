#include "run/control.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/rundir.h"
#include "base/util.h"

int qp_ctl_call(const char *name, json_object *req, json_object **reply, struct qp_err **err)
{
	*reply = NULL;
	qp_autofree char *path = qp_xasprintf("%s/%s/control.sock", qp_rundir(), name);
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

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **qp_ctl_names(void)
{
	char **v = qp_xcalloc(1, sizeof(char *));
	size_t n = 0;
	DIR *d = opendir(qp_rundir());
	if (!d)
		return v;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		qp_autofree char *sock = qp_xasprintf("%s/%s/control.sock", qp_rundir(), e->d_name);
		if (access(sock, F_OK) < 0)
			continue;
		v = qp_xrealloc(v, (n + 2) * sizeof(char *));
		v[n++] = qp_xstrdup(e->d_name);
		v[n] = NULL;
	}
	closedir(d);
	qsort(v, n, sizeof(char *), cmp_str);
	return v;
}
