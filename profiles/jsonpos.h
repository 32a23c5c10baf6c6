/* Where each value of a JSON text stands, so that errors found after json-c has parsed
 * it (an unknown key, a wrong type) can name a line and column. json-c keeps no
 * positions; this small scanner walks the same text (comments allowed) and records,
 * for every value, its path ("disks[0].file") and offset. It is also where a profile
 * is held to strict JSON, which json-c's lenient mode (the one that takes comments) is
 * not: duplicate keys, compared as json-c decodes them ("run\u005fas" is "run_as"),
 * which json-c would collapse into the last one; single quotes; trailing commas; NaN,
 * Infinity and other words; a NUL (\u0000) in a string. */
#ifndef QP_JSONPOS_H
#define QP_JSONPOS_H

#include <stddef.h>

#include "base/err.h"

struct qp_jsonpos_entry {
	char *path;    /* "" for the top level, "cpu.flags", "disks[0].file" */
	size_t off;    /* the key's offset for members, the value's for elements */
};

struct qp_jsonpos {
	struct qp_jsonpos_entry *v;
	size_t n;
};

/* Indexes text, which json-c has already accepted. What strict JSON refuses is an
 * error whose message starts with "LINE:COL: ". */
int qp_jsonpos_index(const char *text, struct qp_jsonpos *out, struct qp_err **err);
void qp_jsonpos_free(struct qp_jsonpos *p);

/* The offset of path, or of its nearest indexed ancestor; 0 when none is indexed. */
size_t qp_jsonpos_find(const struct qp_jsonpos *p, const char *path);

/* 1-based line and column (in bytes) of an offset. */
void qp_jsonpos_linecol(const char *text, size_t off, unsigned *line, unsigned *col);

#endif
