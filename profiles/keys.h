/* Reading the keys of a profile's JSON: each member of an object by its type, checked,
 * and every error at FILE:LINE:COLUMN with the key's path ("disks[0].file"), found with
 * jsonpos.h's index. For the profile parser's files.
 *
 * Each qp_key_*(c, o, path, key, ...) reads member `key` of object o, which stands at
 * `path`; an absent key leaves *out alone and is not an error (unless required). They
 * return 0, or -1 with *c->err set. */
#ifndef QP_KEYS_H
#define QP_KEYS_H

#include <json-c/json.h>
#include <stdbool.h>

#include "base/err.h"
#include "profiles/jsonpos.h"

/* One profile being read: where its errors point to. */
struct qp_keys {
	const char *file;
	const char *text;
	struct qp_jsonpos pos;
	struct qp_err **err;
};

/* Sets "FILE:LINE:COL: PATH: message" (PATH's position); returns -1. */
int qp_key_fail(struct qp_keys *c, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "path.key", or "key" at the top level. Caller frees. */
char *qp_key_join(const char *path, const char *key);

/* The JSON type of v for messages: "string", "int"... "null" for NULL. */
const char *qp_key_type_name(json_object *v);

/* Fails on any member of o that is not in known (NULL-terminated), with "did you mean"
 * and the keys that are known. */
int qp_keys_check(struct qp_keys *c, json_object *o, const char *path,
		  const char *const *known);

/* The member `key` of o: *v NULL when absent. A JSON null counts as present. */
bool qp_key_member(json_object *o, const char *key, json_object **v);

/* A non-empty string without NUL bytes; *out is replaced (the old one freed). */
int qp_key_str(struct qp_keys *c, json_object *o, const char *path, const char *key,
	       bool required, char **out);
/* v itself (at path sub) as an integer in [min, max]. */
int qp_key_int_value(struct qp_keys *c, json_object *v, const char *sub, long min, long max,
		     int *out);
int qp_key_int(struct qp_keys *c, json_object *o, const char *path, const char *key, long min,
	       long max, int *out);
int qp_key_bool(struct qp_keys *c, json_object *o, const char *path, const char *key,
		bool *out);
/* A string that must be one of names (NULL-terminated); *out is its index. */
int qp_key_enum(struct qp_keys *c, json_object *o, const char *path, const char *key,
		const char *const *names, int *out);
/* An object or an array, borrowed; *out NULL when absent. */
int qp_key_object(struct qp_keys *c, json_object *o, const char *path, const char *key,
		  json_object **out);
int qp_key_array(struct qp_keys *c, json_object *o, const char *path, const char *key,
		 json_object **out);
/* An array of strings into a NULL-terminated vector. */
int qp_key_strv(struct qp_keys *c, json_object *o, const char *path, const char *key,
		char ***out);

#endif
