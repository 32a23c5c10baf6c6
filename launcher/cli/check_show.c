#include "cli/check_show.h"

#include <string.h>

#include "base/util.h"

#define WIDTH 80

char *qp_check_text(const struct qp_check_report *r)
{
	struct qp_buf b = { 0 };
	const char *section = NULL;
	for (size_t i = 0; i < r->n_rows; i++) {
		const struct qp_check_row *w = &r->rows[i];
		bool host = !strcmp(w->subject, "host");
		const char *sec = host ? "Host" : r->vm_title ? r->vm_title : "VM";
		if (!section || strcmp(section, sec)) {
			section = sec;
			qp_buf_addf(&b, "%s%s\n", i ? "\n" : "", sec);
		}
		/* "  FAIL  IOMMU                off: ..." ; a VM's rows name their subject. */
		qp_autofree char *label = host ? qp_xstrdup(w->title) : qp_xstrdup(w->subject);
		qp_autofree char *prefix = qp_xasprintf("  %-4s  %-19s ", qp_check_status_name(w->status),
							label);
		if (strlen(prefix) > 28) {
			qp_buf_addf(&b, "  %-4s  %s\n", qp_check_status_name(w->status), label);
			free(prefix);
			prefix = qp_xasprintf("%28s", "");
		}
		qp_autofree char *text = host ? qp_xstrdup(w->detail)
					       : qp_xasprintf("%s: %s", w->title, w->detail);
		/* The detail may hold lines of its own (a group's members). */
		char *save = NULL;
		for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			qp_buf_add_wrapped(&b, WIDTH, prefix, l);
			free(prefix);
			prefix = qp_xasprintf("%28s", "");
		}
		if (!w->fix)
			continue;
		qp_autofree char *fix = qp_xstrdup(w->fix);
		const char *fp = "        fix: ";
		save = NULL;
		for (char *l = strtok_r(fix, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			/* Indented lines are commands and file lines: never broken. */
			if (!strncmp(l, "    ", 4))
				qp_buf_addf(&b, "%s%s\n", fp, l + 2);
			else
				qp_buf_add_wrapped(&b, WIDTH, fp, l);
			fp = "             ";
		}
	}
	qp_buf_addf(&b, "\n%zu OK, %zu WARN, %zu FAIL%s%s\n", r->n[QP_CHECK_OK],
		    r->n[QP_CHECK_WARN], r->n[QP_CHECK_FAIL], r->n[QP_CHECK_SKIP] ? ", " : "",
		    r->n[QP_CHECK_SKIP] ? "some skipped" : "");
	return qp_buf_steal(&b);
}

struct json_object *qp_check_json(const struct qp_check_report *r)
{
	json_object *doc = json_object_new_object(), *rows = json_object_new_array();
	for (size_t i = 0; i < r->n_rows; i++) {
		const struct qp_check_row *w = &r->rows[i];
		json_object *o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_string(w->id));
		json_object_object_add(o, "subject", json_object_new_string(w->subject));
		json_object_object_add(o, "status",
				       json_object_new_string(qp_check_status_name(w->status)));
		json_object_object_add(o, "title", json_object_new_string(w->title));
		json_object_object_add(o, "detail", json_object_new_string(w->detail));
		json_object_object_add(o, "fix", w->fix ? json_object_new_string(w->fix) : NULL);
		json_object_array_add(rows, o);
	}
	json_object_object_add(doc, "checks", rows);
	json_object *counts = json_object_new_object();
	static const char *const keys[] = { "ok", "skip", "warn", "fail" };
	for (int s = QP_CHECK_OK; s <= QP_CHECK_FAIL; s++)
		json_object_object_add(counts, keys[s], json_object_new_int64((int64_t)r->n[s]));
	json_object_object_add(doc, "counts", counts);
	json_object_object_add(doc, "ok", json_object_new_boolean(!r->n[QP_CHECK_FAIL]));
	return doc;
}
