/* The names of the devices read (pci.ids, as lspci shows them), and libpci at the edge:
 * it says where this system's pci.ids is, and answers for a compressed one. A plain
 * pci.ids is read by need (probe/pciids.h): libpci parses all of it first, which costs
 * more than reading a host. libpci is loaded (dlopen) by the first call, not linked:
 * commands that show no names never load it. The only file that includes <pci/pci.h>. */
#ifndef QP_PCILIB_H
#define QP_PCILIB_H

#include "base/err.h"

struct qp_host;

/* Fills the name fields of every device of the host, from pci.ids at `path` (NULL:
 * where libpci reads it). A missing file gives no names, as with lspci. */
int qp_pcilib_names(const char *path, struct qp_host *host, struct qp_err **err);

#endif
