#include "profiles/keys.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

char *qp_key_join(const char *path, const char *key)
{
	return *path ? qp_xasprintf("%s.%s", path, key) : qp_xstrdup(key);
}

int qp_key_fail(struct qp_keys *c, const char *path,
		const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	qp_autofree char *msg = qp_xvasprintf(fmt, ap);
	va_end(ap);
	unsigned line, col;
	qp_jsonpos_linecol(c->text, qp_jsonpos_find(&c->pos, path), &line, &col);
	if (*path)
		return qp_err_set(c->err, 0, "%s:%u:%u: %s: %s", c->file, line, col, path, msg);
	return qp_err_set(c->err, 0, "%s:%u:%u: %s", c->file, line, col, msg);
}

const char *qp_key_type_name(json_object *v)
{
	return v ? json_type_to_name(json_object_get_type(v)) : "null";
}

int qp_keys_check(struct qp_keys *c, json_object *o, const char *path,
		  const char *const *known)
{
	json_object_object_foreach(o, key, val)
	{
		(void)val;
		bool ok = false;
		for (const char *const *k = known; *k && !ok; k++)
			ok = !strcmp(*k, key);
		if (ok)
			continue;
		const char *best = NULL;
		size_t best_d = 3;
		for (const char *const *k = known; *k; k++) {
			size_t dd = qp_edit_distance(*k, key, false);
			if (dd < best_d) {
				best_d = dd;
				best = *k;
			}
		}
		qp_autofree char *sub = qp_key_join(path, key);
		struct qp_buf b = { 0 };
		for (const char *const *k = known; *k; k++)
			qp_buf_addf(&b, "%s%s", k == known ? "" : ", ", *k);
		qp_autofree char *list = qp_buf_steal(&b);
		qp_key_fail(c, sub, "unknown key%s%s%s", best ? " (did you mean '" : "",
			    best ? best : "", best ? "'?)" : "");
		return qp_err_hint(c->err, "the keys %s%s are: %s (docs/profile.md)",
				   *path ? "of " : "at the top level", path, list);
	}
	return 0;
}

bool qp_key_member(json_object *o, const char *key, json_object **v)
{
	return json_object_object_get_ex(o, key, v);
}

int qp_key_str(struct qp_keys *c, json_object *o, const char *path, const char *key,
	       bool required, char **out)
{
	json_object *v;
	qp_autofree char *sub = qp_key_join(path, key);
	if (!qp_key_member(o, key, &v)) {
		if (required)
			return qp_key_fail(c, path, "the key '%s' is required", key);
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return qp_key_fail(c, sub, "expected a string, got %s", qp_key_type_name(v));
	const char *s = json_object_get_string(v);
	if (!*s || strlen(s) != (size_t)json_object_get_string_len(v))
		return qp_key_fail(c, sub, "expected a non-empty string without NUL bytes");
	free(*out);
	*out = qp_xstrdup(s);
	return 0;
}

int qp_key_int_value(struct qp_keys *c, json_object *v, const char *sub, long min, long max,
		     int *out)
{
	if (!json_object_is_type(v, json_type_int))
		return qp_key_fail(c, sub, "expected an integer, got %s", qp_key_type_name(v));
	errno = 0;
	int64_t x = json_object_get_int64(v);
	if (errno || x < min || x > max)
		return qp_key_fail(c, sub, "expected an integer from %ld to %ld", min, max);
	*out = (int)x;
	return 0;
}

int qp_key_int(struct qp_keys *c, json_object *o, const char *path, const char *key, long min,
	       long max, int *out)
{
	json_object *v;
	if (!qp_key_member(o, key, &v))
		return 0;
	qp_autofree char *sub = qp_key_join(path, key);
	return qp_key_int_value(c, v, sub, min, max, out);
}

int qp_key_bool(struct qp_keys *c, json_object *o, const char *path, const char *key,
		bool *out)
{
	json_object *v;
	if (!qp_key_member(o, key, &v))
		return 0;
	qp_autofree char *sub = qp_key_join(path, key);
	if (!json_object_is_type(v, json_type_boolean))
		return qp_key_fail(c, sub, "expected true or false, got %s", qp_key_type_name(v));
	*out = json_object_get_boolean(v);
	return 0;
}

int qp_key_enum(struct qp_keys *c, json_object *o, const char *path, const char *key,
		const char *const *names, int *out)
{
	qp_autofree char *s = NULL;
	if (qp_key_str(c, o, path, key, false, &s) < 0)
		return -1;
	if (!s)
		return 0;
	struct qp_buf b = { 0 };
	for (int i = 0; names[i]; i++) {
		if (!strcmp(names[i], s)) {
			qp_buf_free(&b);
			*out = i;
			return 0;
		}
		qp_buf_addf(&b, "%s%s", i ? ", " : "", names[i]);
	}
	qp_autofree char *list = qp_buf_steal(&b);
	qp_autofree char *sub = qp_key_join(path, key);
	qp_autofree char *q = qp_quote(s);
	return qp_key_fail(c, sub, "%s is not one of: %s", q, list);
}

int qp_key_object(struct qp_keys *c, json_object *o, const char *path, const char *key,
		  json_object **out)
{
	*out = NULL;
	json_object *v;
	if (!qp_key_member(o, key, &v))
		return 0;
	qp_autofree char *sub = qp_key_join(path, key);
	if (!json_object_is_type(v, json_type_object))
		return qp_key_fail(c, sub, "expected an object, got %s", qp_key_type_name(v));
	*out = v;
	return 0;
}

int qp_key_array(struct qp_keys *c, json_object *o, const char *path, const char *key,
		 json_object **out)
{
	*out = NULL;
	json_object *v;
	if (!qp_key_member(o, key, &v))
		return 0;
	qp_autofree char *sub = qp_key_join(path, key);
	if (!json_object_is_type(v, json_type_array))
		return qp_key_fail(c, sub, "expected an array, got %s", qp_key_type_name(v));
	*out = v;
	return 0;
}

int qp_key_strv(struct qp_keys *c, json_object *o, const char *path, const char *key,
		char ***out)
{
	json_object *a;
	if (qp_key_array(c, o, path, key, &a) < 0)
		return -1;
	if (!a)
		return 0;
	size_t n = json_object_array_length(a);
	char **v = qp_xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(a, i);
		qp_autofree char *sub = qp_xasprintf("%s%s%s[%zu]", path, *path ? "." : "", key, i);
		if (!json_object_is_type(e, json_type_string)) {
			qp_strv_free(v);
			return qp_key_fail(c, sub, "expected a string, got %s",
					   qp_key_type_name(e));
		}
		v[i] = qp_xstrdup(json_object_get_string(e));
	}
	*out = v;
	return 0;
}
