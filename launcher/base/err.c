#include "base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

int qp_err_set(struct qp_err **err, int errnum, const char *fmt, ...)
{
	if (!err || *err)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	char *msg = qp_xvasprintf(fmt, ap);
	va_end(ap);
	struct qp_err *e = qp_xcalloc(1, sizeof(*e));
	e->errnum = errnum;
	if (errnum) {
		e->msg = qp_xasprintf("%s: %s", msg, strerror(errnum));
		free(msg);
	} else {
		e->msg = msg;
	}
	*err = e;
	return -1;
}

int qp_err_prefix(struct qp_err **err, const char *fmt, ...)
{
	if (!err || !*err)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	char *ctx = qp_xvasprintf(fmt, ap);
	va_end(ap);
	char *msg = qp_xasprintf("%s: %s", ctx, (*err)->msg);
	free(ctx);
	free((*err)->msg);
	(*err)->msg = msg;
	return -1;
}

int qp_err_hint(struct qp_err **err, const char *fmt, ...)
{
	if (!err || !*err)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	char *hint = qp_xvasprintf(fmt, ap);
	va_end(ap);
	if ((*err)->hint) {
		char *both = qp_xasprintf("%s\n%s", (*err)->hint, hint);
		free(hint);
		hint = both;
		free((*err)->hint);
	}
	(*err)->hint = hint;
	return -1;
}

void qp_err_free(struct qp_err *err)
{
	if (!err)
		return;
	free(err->msg);
	free(err->hint);
	free(err);
}

void qp_err_freep(struct qp_err **err)
{
	qp_err_free(*err);
	*err = NULL;
}

void qp_err_report(struct qp_err **err)
{
	if (!*err)
		return;
	fprintf(stderr, "qpass: error: %s\n", (*err)->msg);
	if ((*err)->hint) {
		/* Indent every line of the hint under the error. */
		const char *p = (*err)->hint;
		fputs("  fix: ", stderr);
		for (; *p; p++) {
			fputc(*p, stderr);
			if (*p == '\n' && p[1])
				fputs("       ", stderr);
		}
		fputc('\n', stderr);
	}
	qp_err_freep(err);
}

void qp_vsay(const char *subject, const char *fmt, va_list ap)
{
	fprintf(stderr, "qpass: %s: ", subject);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void qp_say(const char *subject, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	qp_vsay(subject, fmt, ap);
	va_end(ap);
}
