/* Pure parsers for the values Linux shows in sysfs and procfs.
 *
 * They take content, never paths (crun's read_proc_cgroup() lesson), so the unit tests
 * feed them strings. They are strict: anything but the exact form the kernel writes is
 * an error, never a silent zero. The caller names the file in the message. */
#ifndef QP_SYSPARSE_H
#define QP_SYSPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

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

/* The per-node meminfo file: lines "Node N Key: value kB". Returns MemTotal, MemFree,
 * and what the kernel can reclaim for a new allocation: the page cache (Active(file),
 * Inactive(file)) and the reclaimable slab (SReclaimable); 0 where those lines lack. */
int qp_parse_node_meminfo(const char *content, int node, uint64_t *total_kb, uint64_t *free_kb,
			  uint64_t *reclaim_kb, struct qp_err **err);

/* A PCI function's BAR as sysfs `resource` gives it. */
struct qp_bar {
	unsigned index;   /* 0-5 */
	uint64_t size;    /* bytes */
	bool io;          /* an I/O port BAR */
	bool mem64;       /* a 64-bit memory BAR */
	bool prefetch;
	uint64_t resize_mask;  /* Resizable BAR: bit n = 2^n MiB supported (its sysfs
	                        * resourceN_resize); 0: not resizable */
};

/* The BARs (index 0-5, those with a size) of a sysfs `resource` file: a line per
 * resource, "0xSTART 0xEND 0xFLAGS". Returns how many, into bars[6]; -1 on a malformed
 * line. */
int qp_parse_pci_resource(const char *content, struct qp_bar bars[6], struct qp_err **err);

/* The CPU's physical address bits from /proc/cpuinfo ("address sizes : 46 bits
 * physical, 57 bits virtual"); 0 when it does not say. */
unsigned qp_parse_phys_bits(const char *cpuinfo);

/* /proc/modules: one module a line, "name size refs deps state addr". Returns the names
 * as a NULL-terminated array. */
int qp_parse_proc_modules(const char *content, char ***names, struct qp_err **err);

/* The value of the last `key=value` word of a kernel command line (the kernel takes the
 * last one); "" for a bare `key`; NULL when absent. Double quotes group words. */
char *qp_cmdline_get(const char *cmdline, const char *key);

/* The header type byte of a PCI configuration space (offset 0x0e): the layout (0
 * endpoint, 1 bridge, 2 cardbus) and the multi-function bit. */
int qp_parse_pci_header_type(uint8_t byte, uint8_t *type, bool *multifunction,
			     struct qp_err **err);

/* Field `field` (counted as proc(5) does, 1 = the pid) of a /proc/PID/stat text, as a
 * number: the command's name may hold spaces and parentheses, so the fields are counted
 * from its last ')'. Also the state (field 3) as a character. -1 when absent. */
int qp_parse_stat_field(const char *stat, int field, unsigned long long *out);
char qp_parse_stat_state(const char *stat);

#endif
