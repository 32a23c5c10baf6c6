/* A set of CPU numbers, kept sorted and unique: the kernel's "0-13,28-41" lists. */
#ifndef QP_CPULIST_H
#define QP_CPULIST_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

/* CPU numbers above this are refused: no Linux build has more (NR_CPUS <= 8192). */
#define QP_MAX_CPU 8191

struct qp_cpulist {
	int *cpu;
	size_t n;
};

/* Parses "0-13,28-41" (an optional final newline; "" or "\n" is the empty set).
 * Ranges must ascend (a-b with a <= b); duplicates merge. On error *out is untouched. */
int qp_cpulist_parse(const char *s, struct qp_cpulist *out, struct qp_err **err);
/* Formats as the kernel does: "0-13,28-41"; "" for the empty set. Caller frees. */
char *qp_cpulist_fmt(const struct qp_cpulist *l);
bool qp_cpulist_has(const struct qp_cpulist *l, int cpu);
void qp_cpulist_add(struct qp_cpulist *l, int cpu);
void qp_cpulist_copy(struct qp_cpulist *dst, const struct qp_cpulist *src);
bool qp_cpulist_equal(const struct qp_cpulist *a, const struct qp_cpulist *b);
void qp_cpulist_free(struct qp_cpulist *l);

#endif
