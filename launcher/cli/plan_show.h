/* `qpass plan`: a plan as text for people (docs in the README) or JSON for scripts
 * (docs/plan-json.md). Pure. */
#ifndef QP_PLAN_SHOW_H
#define QP_PLAN_SHOW_H

#include <json-c/json.h>

#include "core/plan.h"

#define QP_PLAN_JSON_VERSION 1

char *qp_plan_text(const struct qp_plan *plan);
json_object *qp_plan_json(const struct qp_plan *plan);

#endif
