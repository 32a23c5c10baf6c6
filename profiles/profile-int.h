/* The sections of a profile read by profile_devices.c, for profile.c's reader of the
 * whole profile. Each reads its keys of the top-level object into *p. */
#ifndef QP_PROFILE_INT_H
#define QP_PROFILE_INT_H

#include <json-c/json.h>

#include "profiles/keys.h"
#include "profiles/profile.h"

int qp_profile_read_passthrough(struct qp_keys *c, json_object *root, struct qp_profile *p);
int qp_profile_read_gpus(struct qp_keys *c, json_object *root, struct qp_profile *p);
int qp_profile_read_disks(struct qp_keys *c, json_object *root, struct qp_profile *p);
int qp_profile_read_network(struct qp_keys *c, json_object *root, struct qp_profile *p);
int qp_profile_read_display(struct qp_keys *c, json_object *root, struct qp_profile *p);
int qp_profile_read_devices(struct qp_keys *c, json_object *root, struct qp_profile *p);

#endif
