/* Errors that carry their context up the stack (crun's pattern).
 *
 * A function that can fail takes `struct qp_err **err` last and returns a negative
 * value; it fills *err with what failed, on which object, and why. Callers add their
 * own context with qp_err_prefix() so that the line a user finally reads names the
 * file or device and says how to fix it. */
#ifndef QP_ERR_H
#define QP_ERR_H

#include <stdarg.h>

struct qp_err {
	int errnum;  /* errno that caused it, 0 when none */
	char *msg;   /* what failed, on which object, and why */
	char *hint;  /* how to fix it, or NULL */
};

/* Sets *err (when err is not NULL and *err is still empty) and returns -1.
 * With errnum != 0, ": strerror(errnum)" is appended. */
int qp_err_set(struct qp_err **err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes "context: " to the message already in *err; returns -1. */
int qp_err_prefix(struct qp_err **err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Adds (or extends) the how-to-fix hint of *err; returns -1. */
int qp_err_hint(struct qp_err **err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void qp_err_free(struct qp_err *err);
void qp_err_freep(struct qp_err **err);
/* Prints "qpass: error: MSG" and the hint, if any, to stderr; frees and clears *err. */
void qp_err_report(struct qp_err **err);

#define qp_autoerr __attribute__((cleanup(qp_err_freep)))

/* Prints "qpass: SUBJECT: MSG" to stderr: what a command that runs a while (up, a VM's
 * supervisor) tells as it goes. */
void qp_say(const char *subject, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void qp_vsay(const char *subject, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#endif
