/* Who holds a PCI device open: when unbinding a GPU's driver hangs, that is the reason,
 * and the user needs to know whom to stop. */
#ifndef QP_HOLDERS_H
#define QP_HOLDERS_H

#include "base/root.h"

/* The processes with an open fd on the device's DRM nodes (/dev/dri/by-path/pci-ADDR-*)
 * or, for an NVIDIA device, on /dev/nvidia*: "1234 (Xorg), 5678 (nvidia-smi)", or NULL
 * when none is found. Reads proc and dev under the root. */
char *qp_vfio_holders(const struct qp_root *root, const char *addr);

#endif
