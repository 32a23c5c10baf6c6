#include "base/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void oom(void)
{
	fputs("qpass: out of memory\n", stderr);
	abort();
}

void *qp_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *qp_xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *qp_xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *qp_xgrow(void *p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return p;
	size_t n = *cap ? *cap : 8;
	while (n < need) {
		if (n > SIZE_MAX / 2 / size)
			oom();
		n *= 2;
	}
	p = qp_xrealloc(p, n * size);
	*cap = n;
	return p;
}

char *qp_xstrdup(const char *s)
{
	char *d = strdup(s);
	if (!d)
		oom();
	return d;
}

char *qp_xstrndup(const char *s, size_t n)
{
	char *d = strndup(s, n);
	if (!d)
		oom();
	return d;
}

char *qp_xvasprintf(const char *fmt, va_list ap)
{
	char *s;
	if (vasprintf(&s, fmt, ap) < 0)
		oom();
	return s;
}

char *qp_xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = qp_xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

void qp_freep(void *p)
{
	free(*(void **)p);
	*(void **)p = NULL;
}

void qp_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
	*fd = -1;
}

void qp_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
	*f = NULL;
}

static void buf_reserve(struct qp_buf *b, size_t extra)
{
	b->s = qp_xgrow(b->s, &b->cap, b->len + extra + 1, 1);
}

void qp_buf_addn(struct qp_buf *b, const char *s, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void qp_buf_add(struct qp_buf *b, const char *s)
{
	qp_buf_addn(b, s, strlen(s));
}

void qp_buf_addc(struct qp_buf *b, char c)
{
	buf_reserve(b, 1);
	b->s[b->len++] = c;
	b->s[b->len] = '\0';
}

void qp_buf_addf(struct qp_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = qp_xvasprintf(fmt, ap);
	va_end(ap);
	qp_buf_add(b, s);
	free(s);
}

char *qp_buf_steal(struct qp_buf *b)
{
	char *s = b->s ? b->s : qp_xstrdup("");
	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}

void qp_buf_free(struct qp_buf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
}

char *qp_quote(const char *s)
{
	struct qp_buf b = { 0 };
	qp_buf_addc(&b, '\'');
	size_t i = 0;
	for (; s[i] && i < 40; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n')
			qp_buf_add(&b, "\\n");
		else if (c < 0x80 && isprint(c))
			qp_buf_addc(&b, (char)c);
		else
			qp_buf_addf(&b, "\\x%02x", c);
	}
	if (s[i])
		qp_buf_add(&b, "...");
	qp_buf_addc(&b, '\'');
	return qp_buf_steal(&b);
}

/* Appends "prefix" + text, breaking text after commas or spaces so that no line is
 * wider than width; continuation lines are indented to the prefix's width. */
void qp_buf_add_wrapped(struct qp_buf *b, size_t width, const char *prefix, const char *text)
{
	size_t indent = strlen(prefix), col = indent;
	qp_buf_add(b, prefix);
	const char *p = text;
	while (*p) {
		/* The next piece runs to the next break, the break included. */
		size_t n = strcspn(p, ", ");
		while (p[n] == ',' || p[n] == ' ')
			n++;
		if (col > indent && col + n > width) {
			/* Drop a trailing space before the break. */
			if (b->len && b->s[b->len - 1] == ' ')
				b->s[--b->len] = '\0';
			qp_buf_addc(b, '\n');
			for (col = 0; col < indent; col++)
				qp_buf_addc(b, ' ');
		}
		qp_autofree char *piece = qp_xstrndup(p, n);
		qp_buf_add(b, piece);
		col += n;
		p += n;
	}
	qp_buf_addc(b, '\n');
}

void qp_strv_push(char ***v, char *s)
{
	size_t n = 0;
	while (*v && (*v)[n])
		n++;
	*v = qp_xrealloc(*v, (n + 2) * sizeof(char *));
	(*v)[n] = s;
	(*v)[n + 1] = NULL;
}

void qp_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

bool qp_strv_contains(char *const *v, const char *s)
{
	for (; v && *v; v++)
		if (!strcmp(*v, s))
			return true;
	return false;
}

int64_t qp_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t qp_edit_distance(const char *a, const char *b, bool swaps)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 32 || lb > 32)
		return 99;
	size_t d[33][33];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (swaps && i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

bool qp_vm_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 64 || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
			return false;
	return true;
}
