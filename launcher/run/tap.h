/* Tap devices on a host bridge, for `"network": [{"type": "bridge"}]`: qpass opens them
 * and hands QEMU the fds (QEMU's own bridge helper would need spawning, which its
 * -sandbox forbids, and privileges QEMU should not have). */
#ifndef QP_TAP_H
#define QP_TAP_H

#include <sys/types.h>

#include "base/err.h"

#define QP_IFNAMSIZ 16

/* Opens a new tap ("qptapN"), owned by `owner` when it is not (uid_t)-1, attaches it to
 * `bridge`, brings it up, and checks that it is the bridge's port. The tap is not
 * persistent: it goes when the last fd to it closes (QEMU's, at its exit). */
int qp_tap_open(const char *bridge, uid_t owner, char name[QP_IFNAMSIZ], struct qp_err **err);

#endif
