#include "profiles/jsonpos.h"

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

/* Reads a string at sc->i (a '"'), returning its raw contents (escapes kept: keys in
 * paths are compared as written). */
static char *read_string(struct scan *sc)
{
	size_t start = ++sc->i;
	while (sc->s[sc->i] && sc->s[sc->i] != '"') {
		if (sc->s[sc->i] == '\\' && sc->s[sc->i + 1])
			sc->i++;
		sc->i++;
	}
	char *r = qp_xstrndup(sc->s + start, sc->i - start);
	if (sc->s[sc->i])
		sc->i++;
	return r;
}

static int value(struct scan *sc, const char *path);

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
		if (c == ',') {
			sc->i++;
			continue;
		}
		if (c != '"') {
			/* json-c accepted it, so this is a form the scanner does not know. */
			sc->i++;
			continue;
		}
		size_t key_off = sc->i;
		char *key = read_string(sc);
		for (size_t k = 0; k < nkeys; k++) {
			if (!strcmp(keys[k], key)) {
				unsigned line, col;
				qp_jsonpos_linecol(sc->s, key_off, &line, &col);
				qp_autofree char *full = *path ? qp_xasprintf("%s.%s", path, key)
								: qp_xstrdup(key);
				qp_autofree char *q = qp_quote(full);
				rc = qp_err_set(sc->err, 0, "%u:%u: %s appears twice", line, col, q);
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
			sc->i++;
			skip_space(sc);
			if (sc->s[sc->i] == ']')
				continue;
		}
		qp_autofree char *sub = qp_xasprintf("%s[%zu]", path, idx);
		record(sc, sub, sc->i);
		if (value(sc, sub) < 0)
			return -1;
	}
}

static int value(struct scan *sc, const char *path)
{
	if (++sc->depth > 64) {
		sc->depth--;
		return qp_err_set(sc->err, 0, "nested more than 64 levels deep");
	}
	skip_space(sc);
	int rc = 0;
	char c = sc->s[sc->i];
	if (c == '{') {
		rc = object(sc, path);
	} else if (c == '[') {
		rc = array(sc, path);
	} else if (c == '"') {
		free(read_string(sc));
	} else {
		/* A number or a literal: up to the next delimiter. */
		while (sc->s[sc->i] && !strchr(",]} \t\r\n/", sc->s[sc->i]))
			sc->i++;
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
