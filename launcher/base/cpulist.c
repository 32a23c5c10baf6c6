#include "base/cpulist.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

static bool read_cpu(const char **p, int *out)
{
	if (!isdigit((unsigned char)**p))
		return false;
	long v = 0;
	while (isdigit((unsigned char)**p)) {
		v = v * 10 + (**p - '0');
		if (v > QP_MAX_CPU)
			return false;
		(*p)++;
	}
	*out = (int)v;
	return true;
}

int qp_cpulist_parse(const char *s, struct qp_cpulist *out, struct qp_err **err)
{
	size_t len = strlen(s);
	if (len && s[len - 1] == '\n')
		len--;
	qp_autofree char *t = qp_xstrndup(s, len);
	struct qp_cpulist l = { 0 };
	size_t cap = 0;
	const char *p = t;
	while (*p) {
		int a, b;
		if (!read_cpu(&p, &a))
			goto bad;
		b = a;
		if (*p == '-') {
			p++;
			if (!read_cpu(&p, &b) || b < a)
				goto bad;
		}
		if (*p == ',') {
			p++;
			if (!*p)
				goto bad;
		} else if (*p) {
			goto bad;
		}
		for (int c = a; c <= b; c++) {
			l.cpu = qp_xgrow(l.cpu, &cap, l.n + 1, sizeof(int));
			l.cpu[l.n++] = c;
		}
	}
	if (l.n)
		qsort(l.cpu, l.n, sizeof(int), cmp_int);
	size_t w = 0;
	for (size_t i = 0; i < l.n; i++)
		if (!w || l.cpu[w - 1] != l.cpu[i])
			l.cpu[w++] = l.cpu[i];
	l.n = w;
	*out = l;
	return 0;
bad:
	free(l.cpu);
	qp_autofree char *q = qp_quote(t);
	return qp_err_set(err, 0, "%s is not a CPU list (expected e.g. 0-13,28-41; CPUs up to %d)",
			  q, QP_MAX_CPU);
}

char *qp_cpulist_fmt(const struct qp_cpulist *l)
{
	struct qp_buf b = { 0 };
	qp_buf_add(&b, "");
	for (size_t i = 0; i < l->n;) {
		size_t j = i;
		while (j + 1 < l->n && l->cpu[j + 1] == l->cpu[j] + 1)
			j++;
		if (i)
			qp_buf_addc(&b, ',');
		if (j == i)
			qp_buf_addf(&b, "%d", l->cpu[i]);
		else
			qp_buf_addf(&b, "%d-%d", l->cpu[i], l->cpu[j]);
		i = j + 1;
	}
	return qp_buf_steal(&b);
}

bool qp_cpulist_has(const struct qp_cpulist *l, int cpu)
{
	return l->n && bsearch(&cpu, l->cpu, l->n, sizeof(int), cmp_int);
}

void qp_cpulist_add(struct qp_cpulist *l, int cpu)
{
	if (qp_cpulist_has(l, cpu))
		return;
	l->cpu = qp_xrealloc(l->cpu, (l->n + 1) * sizeof(int));
	size_t i = l->n;
	while (i && l->cpu[i - 1] > cpu) {
		l->cpu[i] = l->cpu[i - 1];
		i--;
	}
	l->cpu[i] = cpu;
	l->n++;
}

void qp_cpulist_copy(struct qp_cpulist *dst, const struct qp_cpulist *src)
{
	dst->n = src->n;
	dst->cpu = qp_xmalloc((src->n ? src->n : 1) * sizeof(int));
	if (src->n)
		memcpy(dst->cpu, src->cpu, src->n * sizeof(int));
}

bool qp_cpulist_equal(const struct qp_cpulist *a, const struct qp_cpulist *b)
{
	return a->n == b->n && (!a->n || !memcmp(a->cpu, b->cpu, a->n * sizeof(int)));
}

void qp_cpulist_free(struct qp_cpulist *l)
{
	free(l->cpu);
	l->cpu = NULL;
	l->n = 0;
}
