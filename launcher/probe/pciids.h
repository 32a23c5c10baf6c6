/* PCI names from pci.ids, as lspci shows them, looked up by need.
 *
 * libpci parses the whole database (some 36,000 lines) before its first answer, which
 * costs more than reading a host; a command shows the names of a few devices. This
 * reads the file once and looks only at the vendors and classes asked for: a vendor's
 * block is indexed the first time one of its devices is asked for, so that `list` of
 * thousands of functions reads each block once. The lines are read by libpci's rules
 * (lib/names-parse.c), and the names made by its formats (lib/names.c), so that they
 * are lspci's; tests/unit/test_host.c holds every entry of this machine's pci.ids
 * against libpci's own answers. Pure: the text in, names out. */
#ifndef QP_PCIIDS_H
#define QP_PCIIDS_H

#include <stddef.h>
#include <stdint.h>

struct qp_pciids;

/* Reads a pci.ids file's content, text (len bytes, which it borrows: it need not end
 * in a NUL; may be empty). */
struct qp_pciids *qp_pciids_new(const char *text, size_t len);
void qp_pciids_free(struct qp_pciids *ids);

/* The names lspci shows, made as libpci makes them. Caller frees.
 * "NVIDIA Corporation TU102 [GeForce RTX 2080 Ti]"; "NVIDIA Corporation Device 1af0";
 * "Device 1234:5678" (libpci's PCI_LOOKUP_VENDOR | PCI_LOOKUP_DEVICE). */
char *qp_pciids_name(struct qp_pciids *ids, uint16_t vendor, uint16_t device);
/* The vendor's and the device's own entries; NULL when pci.ids has none
 * (PCI_LOOKUP_NO_NUMBERS). */
char *qp_pciids_vendor_name(struct qp_pciids *ids, uint16_t vendor);
char *qp_pciids_device_name(struct qp_pciids *ids, uint16_t vendor, uint16_t device);
/* "VGA compatible controller"; "Display controller [0380]"; "Class 1234"
 * (PCI_LOOKUP_CLASS of base << 8 | sub). */
char *qp_pciids_class_name(struct qp_pciids *ids, uint16_t cls);

#endif
