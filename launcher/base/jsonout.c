#include "base/jsonout.h"

#include <errno.h>

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

int qp_json_print(FILE *out, json_object *o, struct qp_err **err)
{
	const char *s = json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
	int rc = fprintf(out, "%s\n", s);
	json_object_put(o);
	if (rc < 0)
		return qp_err_set(err, errno, "cannot write the output");
	return 0;
}
