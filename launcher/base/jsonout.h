/* JSON output: small helpers for building documents with json-c, and a writer that
 * writes a document as it is made, in the same form, for one too large to hold as a
 * tree (`list --json` of a host with thousands of devices). */
#ifndef QP_JSONOUT_H
#define QP_JSONOUT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/cpulist.h"
#include "base/err.h"
#include "base/pciaddr.h"

/* Adds key = value (NULL adds a JSON null); takes ownership of value. */
void qp_json_add(json_object *o, const char *key, json_object *value);
/* A string, or null for NULL. */
json_object *qp_json_str(const char *s);
/* An array of integers. */
json_object *qp_json_ints(const int *v, size_t n);
/* An array of CPU numbers. */
json_object *qp_json_cpus(const struct qp_cpulist *l);
/* An array of PCI addresses, "0000:04:00.0". */
json_object *qp_json_pci_addrs(const struct qp_pci_addr *a, size_t n);
/* Writes o pretty-printed with a final newline; drops the reference. */
int qp_json_print(FILE *out, json_object *o, struct qp_err **err);

/* The writer: every byte as qp_json_print would write the same document (json-c 0.16's
 * pretty, spaced form, '/' unescaped), written as it goes. A value goes after a key in
 * an object, or as the next element of an array. */
#define QP_JSONW_DEPTH 16
struct qp_jsonw {
	FILE *out;
	int depth;                          /* open containers */
	char kind[QP_JSONW_DEPTH];          /* '{' or '[' */
	size_t children[QP_JSONW_DEPTH];
	bool after_key;
	char buf[65536];                    /* written to out when full */
	size_t len;
};

void qp_jsonw_init(struct qp_jsonw *w, FILE *out);
void qp_jsonw_object(struct qp_jsonw *w);
void qp_jsonw_array(struct qp_jsonw *w);
/* Closes the innermost object or array. */
void qp_jsonw_end(struct qp_jsonw *w);
void qp_jsonw_key(struct qp_jsonw *w, const char *key);
/* A string; NULL writes null. */
void qp_jsonw_str(struct qp_jsonw *w, const char *s);
void qp_jsonw_int(struct qp_jsonw *w, int64_t v);
void qp_jsonw_uint(struct qp_jsonw *w, uint64_t v);
void qp_jsonw_bool(struct qp_jsonw *w, bool v);
void qp_jsonw_null(struct qp_jsonw *w);
/* An array of ints, and of a CPU list's CPUs. */
void qp_jsonw_ints(struct qp_jsonw *w, const int *v, size_t n);
void qp_jsonw_cpus(struct qp_jsonw *w, const struct qp_cpulist *l);
/* A member of an object: its key, then its value. */
void qp_jsonw_kstr(struct qp_jsonw *w, const char *key, const char *s);
void qp_jsonw_kint(struct qp_jsonw *w, const char *key, int64_t v);
void qp_jsonw_kuint(struct qp_jsonw *w, const char *key, uint64_t v);
void qp_jsonw_kbool(struct qp_jsonw *w, const char *key, bool v);
void qp_jsonw_kcpus(struct qp_jsonw *w, const char *key, const struct qp_cpulist *l);
/* The final newline, and whether every byte was written. */
int qp_jsonw_finish(struct qp_jsonw *w, struct qp_err **err);

#endif
