/* Pure parsers for the values Linux shows in sysfs and procfs, and for PCI addresses.
 *
 * They take content, never paths (crun's read_proc_cgroup() lesson), so the unit tests
 * feed them strings. They are strict: anything but the exact form the kernel writes is
 * an error, never a silent zero. The caller names the file in the message. */
#ifndef QP_PARSE_H
#define QP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
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

/* Checks that content is one line: no NUL or newline but an optional final '\n'.
 * Returns a copy without the newline. */
int qp_parse_line(const char *content, size_t len, char **out, struct qp_err **err);

/* "0x10de\n": "0x", 1 to (bits/4) hex digits, optional final newline; value < 2^bits. */
int qp_parse_sysfs_hex(const char *content, unsigned bits, uint32_t *out, struct qp_err **err);

/* A decimal integer in [min, max], optional final newline. */
int qp_parse_sysfs_int(const char *content, long min, long max, long *out, struct qp_err **err);

/* A decimal unsigned 64-bit integer, optional final newline. */
int qp_parse_sysfs_u64(const char *content, uint64_t *out, struct qp_err **err);

/* Checks that `target` (a symlink's content) ends in "/<dir>/<name>" and returns <name>.
 * Used for driver ("drivers") and iommu_group ("iommu_groups") links. */
int qp_parse_link_name(const char *target, const char *dir, char **name, struct qp_err **err);

/* The per-node meminfo file: lines "Node N Key: value kB". Returns MemTotal and MemFree. */
int qp_parse_node_meminfo(const char *content, int node, uint64_t *total_kb, uint64_t *free_kb,
			  struct qp_err **err);

/* /proc/modules: one module a line, "name size refs deps state addr". Returns the names
 * as a NULL-terminated array. */
int qp_parse_proc_modules(const char *content, char ***names, struct qp_err **err);
void qp_strv_free(char **v);
bool qp_strv_contains(char *const *v, const char *s);

/* The value of the last `key=value` word of a kernel command line (the kernel takes the
 * last one); "" for a bare `key`; NULL when absent. Double quotes group words. */
char *qp_cmdline_get(const char *cmdline, const char *key);

/* The header type byte of a PCI configuration space (offset 0x0e): the layout (0
 * endpoint, 1 bridge, 2 cardbus) and the multi-function bit. */
int qp_parse_pci_header_type(uint8_t byte, uint8_t *type, bool *multifunction,
			     struct qp_err **err);

#endif
