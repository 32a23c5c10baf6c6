/* `qpass check`, the edge: the facts beyond the host model (core/check.h's struct
 * qp_check_facts), read under the system root; what the QEMU binary says of itself
 * (-version, -device help), asked under a deadline; this process's memlock limit and
 * capabilities. Changes nothing. */
#ifndef QP_CHECKPROBE_H
#define QP_CHECKPROBE_H

#include "base/root.h"
#include "core/check.h"
#include "core/host.h"

void qp_check_probe(const struct qp_root *root, const struct qp_host *h,
		    const struct qp_check_target *t, struct qp_check_facts *f);
void qp_check_facts_free(struct qp_check_facts *f);

/* 1 when /proc/interrupts shows interrupt chips behind remapping ("IR-PCI-MSI"...). */
int qp_check_parse_interrupts(const char *text);

/* "7.2.19" from "QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)". */
char *qp_check_parse_qemu_version(const char *text);

/* What `qemu -version` says of the binary named qemu (found in PATH), "7.2.22"; NULL
 * when it cannot be run or says nothing. Caller frees. */
char *qp_probe_qemu_version(const char *qemu);

#endif
