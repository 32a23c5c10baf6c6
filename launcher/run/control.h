/* The client side of a running VM's control socket (RUNDIR/NAME/control.sock):
 * one JSON request, one JSON reply. */
#ifndef QP_CTL_H
#define QP_CTL_H

#include <json-c/json.h>

#include "base/err.h"

/* Sends req (taken) to the supervisor of VM `name`; *reply is its answer, whose "ok"
 * is true, or an error is set (with "error" from the supervisor when it said no). */
int qp_ctl_call(const char *name, json_object *req, json_object **reply, struct qp_err **err);

/* The names of the VMs that have a runtime directory, sorted (NULL-terminated). */
char **qp_ctl_names(void);

#endif
