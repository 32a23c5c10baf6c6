#include "profiles/jsonpos.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

struct scan {
	const char *s;
	size_t i;
	struct qp_jsonpos *out;
	size_t cap;
	struct qp_err **err;
	int depth;
};

void qp_jsonpos_linecol(const char *text, size_t off, unsigned *line, unsigned *col)
{
	unsigned l = 1, c = 1;
	for (size_t i = 0; i < off && text[i]; i++) {
		if (text[i] == '\n') {
			l++;
			c = 1;
		} else {
			c++;
		}
	}
	*line = l;
	*col = c;
}

static void skip_space(struct scan *sc)
{
	for (;;) {
		char c = sc->s[sc->i];
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			sc->i++;
		} else if (c == '/' && sc->s[sc->i + 1] == '/') {
			while (sc->s[sc->i] && sc->s[sc->i] != '\n')
				sc->i++;
		} else if (c == '/' && sc->s[sc->i + 1] == '*') {
			const char *end = strstr(sc->s + sc->i + 2, "*/");
			sc->i = end ? (size_t)(end - sc->s) + 2 : strlen(sc->s);
		} else {
			return;
		}
	}
}

static void record(struct scan *sc, const char *path, size_t off)
{
	struct qp_jsonpos *o = sc->out;
	o->v = qp_xgrow(o->v, &sc->cap, o->n + 1, sizeof(*o->v));
	o->v[o->n].path = qp_xstrdup(path);
	o->v[o->n].off = off;
	o->n++;
}

/* An error at offset off: "LINE:COL: ...". */
__attribute__((format(printf, 3, 4))) static int fail_at(struct scan *sc, size_t off,
							 const char *fmt, ...)
{
	unsigned line, col;
	qp_jsonpos_linecol(sc->s, off, &line, &col);
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return qp_err_set(sc->err, 0, "%u:%u: %s", line, col, msg);
}

static int hex4(const char *p)
{
	int v = 0;
	for (int k = 0; k < 4; k++) {
		char c = p[k];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
			c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

static void put_utf8(struct qp_buf *b, unsigned cp)
{
	if (cp < 0x80) {
		qp_buf_addc(b, (char)cp);
	} else if (cp < 0x800) {
		qp_buf_addc(b, (char)(0xc0 | cp >> 6));
		qp_buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		qp_buf_addc(b, (char)(0xe0 | cp >> 12));
		qp_buf_addc(b, (char)(0x80 | (cp >> 6 & 0x3f)));
		qp_buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	} else {
		qp_buf_addc(b, (char)(0xf0 | cp >> 18));
		qp_buf_addc(b, (char)(0x80 | (cp >> 12 & 0x3f)));
		qp_buf_addc(b, (char)(0x80 | (cp >> 6 & 0x3f)));
		qp_buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	}
}

/* Reads a string at sc->i (a '"') into *out, its escapes decoded as json-c decodes them
 * (keys are compared as json-c will see them: "run\u005fas" is "run_as"). A NUL in it
 * is an error: C strings would cut it there. */
static int read_string(struct scan *sc, char **out)
{
	size_t start = sc->i++;
	struct qp_buf b = { 0 };
	qp_buf_add(&b, "");
	while (sc->s[sc->i] && sc->s[sc->i] != '"') {
		char c = sc->s[sc->i];
		if (c != '\\') {
			qp_buf_addc(&b, c);
			sc->i++;
			continue;
		}
		char e = sc->s[sc->i + 1];
		const char *simple = strchr("\"\\/bfnrt", e);
		if (e && simple) {
			qp_buf_addc(&b, "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"]);
			sc->i += 2;
			continue;
		}
		int cp = e == 'u' ? hex4(sc->s + sc->i + 2) : -1;
		size_t esc = sc->i;
		sc->i += 6;
		if (cp >= 0xd800 && cp < 0xdc00 && sc->s[sc->i] == '\\' && sc->s[sc->i + 1] == 'u') {
			int lo = hex4(sc->s + sc->i + 2);
			if (lo >= 0xdc00 && lo < 0xe000) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				sc->i += 6;
			}
		}
		if (cp == 0) {
			qp_buf_free(&b);
			return fail_at(sc, esc, "a NUL character (\\u0000) in a string");
		}
		if (cp > 0)
			put_utf8(&b, (unsigned)cp);
		else
			sc->i = esc + 2;  /* json-c accepted it: keep on */
	}
	if (!sc->s[sc->i]) {
		qp_buf_free(&b);
		return fail_at(sc, start, "a string that never ends");
	}
	sc->i++;
	*out = qp_buf_steal(&b);
	return 0;
}

static int value(struct scan *sc, const char *path);

/* After a ',': another member or element must follow, not the end. */
static int no_trailing_comma(struct scan *sc, size_t comma, char close)
{
	skip_space(sc);
	if (sc->s[sc->i] == close)
		return fail_at(sc, comma, "a comma before '%c': JSON has none there", close);
	return 0;
}

static int object(struct scan *sc, const char *path)
{
	sc->i++;
	char **keys = NULL;
	size_t nkeys = 0;
	int rc = 0;
	for (;;) {
		skip_space(sc);
		char c = sc->s[sc->i];
		if (c == '}' || !c) {
			sc->i += c ? 1 : 0;
			break;
		}
		if (c == ',' && nkeys) {
			if ((rc = no_trailing_comma(sc, sc->i++, '}')) < 0)
				goto out;
			continue;
		}
		if (c != '"') {
			rc = fail_at(sc, sc->i, c == '\'' ? "strings take double quotes (\"), not '"
					 : "expected a key in double quotes");
			goto out;
		}
		size_t key_off = sc->i;
		char *key;
		if ((rc = read_string(sc, &key)) < 0)
			goto out;
		for (size_t k = 0; k < nkeys; k++) {
			if (!strcmp(keys[k], key)) {
				qp_autofree char *full = *path ? qp_xasprintf("%s.%s", path, key)
								: qp_xstrdup(key);
				qp_autofree char *q = qp_quote(full);
				rc = fail_at(sc, key_off, "%s appears twice", q);
				free(key);
				goto out;
			}
		}
		keys = qp_xrealloc(keys, (nkeys + 1) * sizeof(*keys));
		keys[nkeys++] = key;
		qp_autofree char *sub = *path ? qp_xasprintf("%s.%s", path, key) : qp_xstrdup(key);
		record(sc, sub, key_off);
		skip_space(sc);
		if (sc->s[sc->i] == ':')
			sc->i++;
		skip_space(sc);
		if ((rc = value(sc, sub)) < 0)
			goto out;
	}
out:
	for (size_t k = 0; k < nkeys; k++)
		free(keys[k]);
	free(keys);
	return rc;
}

static int array(struct scan *sc, const char *path)
{
	sc->i++;
	for (size_t idx = 0;; idx++) {
		skip_space(sc);
		char c = sc->s[sc->i];
		if (c == ']' || !c) {
			sc->i += c ? 1 : 0;
			return 0;
		}
		if (c == ',') {
			if (no_trailing_comma(sc, sc->i++, ']') < 0)
				return -1;
		}
		qp_autofree char *sub = qp_xasprintf("%s[%zu]", path, idx);
		record(sc, sub, sc->i);
		if (value(sc, sub) < 0)
			return -1;
	}
}

/* A number as JSON writes it: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool json_number(const char *s, size_t n)
{
	size_t i = 0;
	if (i < n && s[i] == '-')
		i++;
	if (i < n && s[i] == '0')
		i++;
	else if (i < n && s[i] >= '1' && s[i] <= '9')
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	else
		return false;
	if (i < n && s[i] == '.') {
		size_t d = ++i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d)
			return false;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		size_t d = i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d)
			return false;
	}
	return i == n;
}

static int value(struct scan *sc, const char *path)
{
	if (++sc->depth > 64) {
		sc->depth--;
		return fail_at(sc, sc->i, "nested more than 64 levels deep");
	}
	skip_space(sc);
	int rc = 0;
	char c = sc->s[sc->i];
	if (c == '{') {
		rc = object(sc, path);
	} else if (c == '[') {
		rc = array(sc, path);
	} else if (c == '"') {
		char *v = NULL;
		rc = read_string(sc, &v);
		free(v);
	} else if (c == '\'') {
		rc = fail_at(sc, sc->i, "strings take double quotes (\"), not '");
	} else {
		/* A number or a literal: up to the next delimiter, as JSON spells them. */
		size_t start = sc->i;
		while (sc->s[sc->i] && !strchr(",]} \t\r\n/", sc->s[sc->i]))
			sc->i++;
		size_t n = sc->i - start;
		const char *w = sc->s + start;
		if (!json_number(w, n) && !(n == 4 && !strncmp(w, "true", 4)) &&
		    !(n == 5 && !strncmp(w, "false", 5)) && !(n == 4 && !strncmp(w, "null", 4)))
			rc = fail_at(sc, start, "%.*s is not a JSON value (numbers as 12 or 1.5, "
				     "true, false, null)", (int)(n > 40 ? 40 : n), w);
	}
	sc->depth--;
	return rc;
}

int qp_jsonpos_index(const char *text, struct qp_jsonpos *out, struct qp_err **err)
{
	memset(out, 0, sizeof(*out));
	struct scan sc = { .s = text, .out = out, .err = err };
	skip_space(&sc);
	record(&sc, "", sc.i);
	if (value(&sc, "") < 0) {
		qp_jsonpos_free(out);
		return -1;
	}
	return 0;
}

void qp_jsonpos_free(struct qp_jsonpos *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].path);
	free(p->v);
	memset(p, 0, sizeof(*p));
}

size_t qp_jsonpos_find(const struct qp_jsonpos *p, const char *path)
{
	qp_autofree char *want = qp_xstrdup(path);
	for (;;) {
		for (size_t i = 0; i < p->n; i++)
			if (!strcmp(p->v[i].path, want))
				return p->v[i].off;
		/* Up one level: drop the last ".key" or "[n]". */
		char *dot = strrchr(want, '.'), *br = strrchr(want, '[');
		char *cut = dot > br ? dot : br;
		if (!cut)
			return p->n ? p->v[0].off : 0;
		*cut = '\0';
	}
}
