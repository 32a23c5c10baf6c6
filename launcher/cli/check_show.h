/* `qpass check`'s report as text for people (80 columns) or JSON for scripts
 * (docs/check-json.md). Pure. */
#ifndef QP_CHECK_SHOW_H
#define QP_CHECK_SHOW_H

#include <json-c/json.h>

#include "core/check.h"

char *qp_check_text(const struct qp_check_report *r);
json_object *qp_check_json(const struct qp_check_report *r);

#endif
