/* Small helpers for building JSON output with json-c. */
#ifndef QP_JSONOUT_H
#define QP_JSONOUT_H

#include <json-c/json.h>
#include <stdio.h>

#include "base/cpulist.h"
#include "base/err.h"

/* Adds key = value (NULL adds a JSON null); takes ownership of value. */
void qp_json_add(json_object *o, const char *key, json_object *value);
/* A string, or null for NULL. */
json_object *qp_json_str(const char *s);
/* An array of integers. */
json_object *qp_json_ints(const int *v, size_t n);
/* An array of CPU numbers. */
json_object *qp_json_cpus(const struct qp_cpulist *l);
/* Writes o pretty-printed with a final newline; drops the reference. */
int qp_json_print(FILE *out, json_object *o, struct qp_err **err);

#endif
