/* The host files a profile names (disk images, the OVMF firmware and its variables
 * template, option ROMs, the VNC password file, a serial log's directory), looked at
 * under the system root before anything is taken: each there, of the right kind, and
 * usable by the user QEMU runs as (run_as; root when unset), as QEMU will use it
 * (a disk written unless read-only). Reads only. */
#ifndef QP_FILES_PROBE_H
#define QP_FILES_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/root.h"
#include "profiles/profile.h"

/* What is wrong, one line per file ("disks[0].file /var/lib/vm.qcow2: does not
 * exist"), NULL-terminated; NULL when every file is fine. Caller frees (qp_strv_free).
 * *n_files: how many files were looked at. Without ovmf, the OVMF files are left to
 * the caller (check has a row of their own). */
char **qp_probe_profile_files(const struct qp_root *root, const struct qp_profile *p,
			      bool ovmf, size_t *n_files);

#endif
