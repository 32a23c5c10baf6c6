/* The crash-safe journal of vfio-pci binding: per owner (a VM's name, or "manual" for
 * `qpass bind`), what each bound function had before qpass touched it, in
 * RUNDIR/journal/OWNER.json. qpass records a function here before it changes it, so
 * that `qpass restore` can put the host back after a crash at any point. */
#ifndef QP_JOURNAL_H
#define QP_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "base/pciaddr.h"

struct qp_journal_entry {
	struct qp_pci_addr addr;
	char *driver;    /* the driver it had; NULL: none */
	char *override;  /* the driver_override it had; NULL: none */
};

/* A VFIO group node qpass gave to a VM's user (run_as): its owner before. */
struct qp_journal_node {
	int group;  /* /dev/vfio/GROUP */
	unsigned uid, gid;
};

struct qp_journal {
	char *path;
	struct qp_journal_entry *e;
	size_t n;
	struct qp_journal_node *nodes;
	size_t n_nodes;
};

/* Reads owner's journal; a missing one is an empty journal. An unreadable one is an
 * error that says what to do. */
int qp_journal_load(const char *owner, struct qp_journal *j, struct qp_err **err);

/* Writes the journal so that a crash leaves either the old or the new one: a temporary
 * file, fsync'd, renamed over, and the directory fsync'd. An empty journal is removed. */
int qp_journal_save(const struct qp_journal *j, struct qp_err **err);

/* The entry of function a, or NULL. */
struct qp_journal_entry *qp_journal_find(struct qp_journal *j, const struct qp_pci_addr *a);
void qp_journal_free(struct qp_journal *j);

/* Whether owner's journal records function a (with a NULL: whether it has a journal). */
bool qp_vfio_journaled(const char *owner, const struct qp_pci_addr *a);

/* The owners that have a journal (NULL-terminated, sorted). */
char **qp_vfio_journals(void);

#endif
