/* PCI addresses, the most shared domain type: as sysfs names them ("0000:04:00.0"), as
 * users write them ("04:00", "04:00.1"), formatted, compared. Pure. */
#ifndef QP_PCIADDR_H
#define QP_PCIADDR_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"

struct qp_pci_addr {
	uint32_t domain;  /* 4 hex digits, or more: Intel VMD adds domains from 10000 */
	uint8_t bus;
	uint8_t slot;  /* 0..31 */
	uint8_t func;  /* 0..7 */
};

/* "0000:04:00.0" plus NUL, with room for an 8-digit domain */
#define QP_PCI_ADDR_LEN 17
/* "0000:04:00" plus NUL, with room for an 8-digit domain */
#define QP_PCI_SLOT_LEN 15

/* Parses a sysfs device name: exactly "DDDD:BB:SS.F" in lower-case hex (a VMD domain
 * has 5 to 8 digits: "10000:00:00.0"). */
int qp_parse_pci_addr(const char *s, struct qp_pci_addr *out, struct qp_err **err);

/* Parses what a user writes: "[DDDD:]BB:SS[.F]", either case. *has_func says whether a
 * function was given ("04:00" means every function of that device). */
int qp_parse_pci_selector(const char *s, struct qp_pci_addr *out, bool *has_func,
			  struct qp_err **err);

void qp_pci_addr_fmt(const struct qp_pci_addr *a, char buf[QP_PCI_ADDR_LEN]);
void qp_pci_slot_fmt(const struct qp_pci_addr *a, char buf[QP_PCI_SLOT_LEN]);
int qp_pci_addr_cmp(const struct qp_pci_addr *a, const struct qp_pci_addr *b);
bool qp_pci_same_slot(const struct qp_pci_addr *a, const struct qp_pci_addr *b);

#endif
