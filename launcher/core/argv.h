/* A plan's exact QEMU command line, and quoting it for a shell. Pure. */
#ifndef QP_ARGV_H
#define QP_ARGV_H

#include "core/host.h"
#include "core/plan.h"

/* Builds plan->argv (and argc) from the rest of the plan; qp_plan_make calls it last. */
void qp_plan_build_argv(struct qp_plan *plan, const struct qp_host *h);

/* Quotes an argument for a POSIX shell (only when it needs it). Caller frees. */
char *qp_shell_quote(const char *s);

#endif
