/* Allocation that never returns NULL, cleanup attributes, a growable string, string
 * vectors, and the monotonic clock.
 *
 * qpass aborts on allocation failure: a launcher that cannot allocate a few bytes has
 * nothing safe left to do, and an unchecked NULL is worse. Every fd, allocation and
 * FILE has one owner; the cleanup attributes give it one cleanup path. */
#ifndef QP_UTIL_H
#define QP_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

void *qp_xmalloc(size_t n);
void *qp_xcalloc(size_t nmemb, size_t size);
void *qp_xrealloc(void *p, size_t n);
/* Grows an array of *cap elements of size `size` so that it holds at least `need`. */
void *qp_xgrow(void *p, size_t *cap, size_t need, size_t size);
char *qp_xstrdup(const char *s);
char *qp_xstrndup(const char *s, size_t n);
char *qp_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *qp_xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* The edit distance between a and b, for "did you mean": insertions, deletions,
 * substitutions, and with swaps two neighbouring letters exchanged (Damerau); past 32
 * letters, a distance larger than any suggestion takes. */
size_t qp_edit_distance(const char *a, const char *b, bool swaps);
/* Appends s (taken) to a NULL-terminated vector, which may be NULL. */
/* A VM's name: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or
 * digit (so that RUNDIR/NAME/... and RUNDIR/journal/NAME.json stay inside RUNDIR). */
bool qp_vm_name_ok(const char *s);

void qp_strv_push(char ***v, char *s);
/* Frees a NULL-terminated vector and its strings; NULL is nothing to free. */
void qp_strv_free(char **v);
bool qp_strv_contains(char *const *v, const char *s);

/* The value of a hex digit, either case, or -1. */
static inline int qp_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Milliseconds of CLOCK_MONOTONIC: for deadlines, never for dates. */
int64_t qp_now_ms(void);

/* A value as it may safely stand in a message: quoted, at most 40 characters, newlines
 * and non-printable bytes escaped (a corrupt file must not write to the terminal). */
char *qp_quote(const char *s);

void qp_freep(void *p);
void qp_closep(int *fd);
void qp_fclosep(FILE **f);

#define qp_autofree __attribute__((cleanup(qp_freep)))
#define qp_autoclose __attribute__((cleanup(qp_closep)))
#define qp_autofclose __attribute__((cleanup(qp_fclosep)))

/* Hands ownership out of an auto variable: returns it and leaves NULL behind. */
#define qp_steal(pp) __extension__({ __typeof__(*(pp)) _v = *(pp); *(pp) = NULL; _v; })
#define qp_steal_fd(pfd) __extension__({ int _fd = *(pfd); *(pfd) = -1; _fd; })

#define QP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A growable, always NUL-terminated string. */
struct qp_buf {
	char *s;
	size_t len, cap;
};

void qp_buf_add(struct qp_buf *b, const char *s);
void qp_buf_addf(struct qp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void qp_buf_addc(struct qp_buf *b, char c);
/* Appends n bytes, NULs among them. */
void qp_buf_addn(struct qp_buf *b, const char *s, size_t n);
/* Returns the string (never NULL) and leaves the buffer empty. */
char *qp_buf_steal(struct qp_buf *b);
void qp_buf_free(struct qp_buf *b);
/* Appends prefix + text + "\n", breaking text after commas and spaces so that no line
 * is wider than `width`; continuation lines are indented to the prefix's width. */
void qp_buf_add_wrapped(struct qp_buf *b, size_t width, const char *prefix, const char *text);

#endif
