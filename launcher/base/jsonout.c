#include "base/jsonout.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void qp_json_add(json_object *o, const char *key, json_object *value)
{
	json_object_object_add(o, key, value);
}

json_object *qp_json_str(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

json_object *qp_json_ints(const int *v, size_t n)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_int(v[i]));
	return a;
}

json_object *qp_json_cpus(const struct qp_cpulist *l)
{
	return qp_json_ints(l->cpu, l->n);
}

json_object *qp_json_pci_addrs(const struct qp_pci_addr *a, size_t n)
{
	json_object *arr = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		char s[QP_PCI_ADDR_LEN];
		qp_pci_addr_fmt(&a[i], s);
		json_object_array_add(arr, json_object_new_string(s));
	}
	return arr;
}

int qp_json_print(FILE *out, json_object *o, struct qp_err **err)
{
	const int flags = JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
			  JSON_C_TO_STRING_NOSLASHESCAPE;
	const char *s = json_object_to_json_string_ext(o, flags);
	int rc = fprintf(out, "%s\n", s);
	json_object_put(o);
	if (rc < 0)
		return qp_err_set(err, errno, "cannot write the output");
	return 0;
}

/* --- the writer -------------------------------------------------------------------- */

void qp_jsonw_init(struct qp_jsonw *w, FILE *out)
{
	w->out = out;
	w->depth = 0;
	w->after_key = false;
	w->len = 0;
}

static void flush(struct qp_jsonw *w)
{
	if (w->len && fwrite(w->buf, 1, w->len, w->out) != w->len) {
		/* ferror(out) is set: qp_jsonw_finish reports it. */
	}
	w->len = 0;
}

static void put(struct qp_jsonw *w, const char *s, size_t n)
{
	if (w->len + n > sizeof(w->buf)) {
		flush(w);
		if (n > sizeof(w->buf)) {
			if (fwrite(s, 1, n, w->out) != n) {
				/* As in flush. */
			}
			return;
		}
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

static void puts_(struct qp_jsonw *w, const char *s)
{
	put(w, s, strlen(s));
}

static void indent(struct qp_jsonw *w, int level)
{
	static const char spaces[] = "                                ";
	put(w, spaces, (size_t)level * 2);
}

/* Before a value: in an array, the separator and the element's indent. */
static void before(struct qp_jsonw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (!w->depth || w->kind[w->depth - 1] != '[')
		return;
	if (w->children[w->depth - 1]++)
		put(w, ",\n", 2);
	indent(w, w->depth);
}

static void open_container(struct qp_jsonw *w, char kind)
{
	before(w);
	if (w->depth == QP_JSONW_DEPTH) {
		/* A program error: the documents qpass writes are shallow. */
		fputs("qpass: JSON nested too deep\n", stderr);
		abort();
	}
	puts_(w, kind == '{' ? "{" : "[\n");
	w->kind[w->depth] = kind;
	w->children[w->depth++] = 0;
}

void qp_jsonw_object(struct qp_jsonw *w)
{
	open_container(w, '{');
}

void qp_jsonw_array(struct qp_jsonw *w)
{
	open_container(w, '[');
}

void qp_jsonw_end(struct qp_jsonw *w)
{
	char kind = w->kind[--w->depth];
	if (w->children[w->depth])
		put(w, "\n", 1);
	indent(w, w->depth);
	put(w, kind == '{' ? "}" : "]", 1);
}

/* A string as json-c escapes it: the short escapes, other control characters as
 * \u00XX, and '/' as it is. */
static void escaped(struct qp_jsonw *w, const char *s)
{
	put(w, "\"", 1);
	const char *run = s;
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= ' ' && c != '"' && c != '\\')
			continue;
		put(w, run, (size_t)(p - run));
		run = p + 1;
		char e[8];
		switch (c) {
		case '\b': puts_(w, "\\b"); break;
		case '\n': puts_(w, "\\n"); break;
		case '\r': puts_(w, "\\r"); break;
		case '\t': puts_(w, "\\t"); break;
		case '\f': puts_(w, "\\f"); break;
		case '"': puts_(w, "\\\""); break;
		case '\\': puts_(w, "\\\\"); break;
		default:
			snprintf(e, sizeof(e), "\\u00%02x", c);
			puts_(w, e);
		}
	}
	puts_(w, run);
	put(w, "\"", 1);
}

void qp_jsonw_key(struct qp_jsonw *w, const char *key)
{
	if (w->children[w->depth - 1]++)
		put(w, ",", 1);
	put(w, "\n", 1);
	indent(w, w->depth);
	escaped(w, key);
	put(w, ": ", 2);
	w->after_key = true;
}

void qp_jsonw_str(struct qp_jsonw *w, const char *s)
{
	before(w);
	if (s)
		escaped(w, s);
	else
		put(w, "null", 4);
}

/* The decimal digits of v, as %PRIu64 writes them. */
static void digits(struct qp_jsonw *w, uint64_t v)
{
	char d[24];
	size_t i = sizeof(d);
	do
		d[--i] = (char)('0' + v % 10);
	while (v /= 10);
	put(w, d + i, sizeof(d) - i);
}

void qp_jsonw_int(struct qp_jsonw *w, int64_t v)
{
	before(w);
	if (v < 0) {
		put(w, "-", 1);
		digits(w, (uint64_t)0 - (uint64_t)v);
	} else {
		digits(w, (uint64_t)v);
	}
}

void qp_jsonw_uint(struct qp_jsonw *w, uint64_t v)
{
	before(w);
	digits(w, v);
}

void qp_jsonw_bool(struct qp_jsonw *w, bool v)
{
	before(w);
	puts_(w, v ? "true" : "false");
}

void qp_jsonw_null(struct qp_jsonw *w)
{
	before(w);
	put(w, "null", 4);
}

void qp_jsonw_ints(struct qp_jsonw *w, const int *v, size_t n)
{
	qp_jsonw_array(w);
	for (size_t i = 0; i < n; i++)
		qp_jsonw_int(w, v[i]);
	qp_jsonw_end(w);
}

void qp_jsonw_cpus(struct qp_jsonw *w, const struct qp_cpulist *l)
{
	qp_jsonw_ints(w, l->cpu, l->n);
}

void qp_jsonw_kstr(struct qp_jsonw *w, const char *key, const char *s)
{
	qp_jsonw_key(w, key);
	qp_jsonw_str(w, s);
}

void qp_jsonw_kint(struct qp_jsonw *w, const char *key, int64_t v)
{
	qp_jsonw_key(w, key);
	qp_jsonw_int(w, v);
}

void qp_jsonw_kuint(struct qp_jsonw *w, const char *key, uint64_t v)
{
	qp_jsonw_key(w, key);
	qp_jsonw_uint(w, v);
}

void qp_jsonw_kbool(struct qp_jsonw *w, const char *key, bool v)
{
	qp_jsonw_key(w, key);
	qp_jsonw_bool(w, v);
}

void qp_jsonw_kcpus(struct qp_jsonw *w, const char *key, const struct qp_cpulist *l)
{
	qp_jsonw_key(w, key);
	qp_jsonw_cpus(w, l);
}

int qp_jsonw_finish(struct qp_jsonw *w, struct qp_err **err)
{
	put(w, "\n", 1);
	flush(w);
	if (ferror(w->out))
		return qp_err_set(err, errno, "cannot write the output");
	return 0;
}
