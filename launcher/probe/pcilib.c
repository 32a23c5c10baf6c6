#include "probe/pcilib.h"

#include <pci/pci.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "core/host.h"

/* libpci's error callback must not return (the library goes on as if it had exited).
 * It jumps back into qp_pcilib_annotate() instead; one libpci session at a time. */
static __thread sigjmp_buf *pci_jump;
static __thread char pci_msg[512];
static __thread struct qp_host *pci_host;

__attribute__((noreturn, format(printf, 1, 2))) static void on_error(char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(pci_msg, sizeof(pci_msg), fmt, ap);
	va_end(ap);
	if (pci_jump)
		siglongjmp(*pci_jump, 1);
	/* Unreachable: every libpci call is made under a jump buffer. */
	fprintf(stderr, "qpass: libpci: %s\n", pci_msg);
	abort();
}

__attribute__((format(printf, 1, 2))) static void on_warning(char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (pci_host)
		qp_strv_push(&pci_host->warnings, qp_xasprintf("libpci: %s", msg));
}

__attribute__((format(printf, 1, 2))) static void on_debug(char *fmt, ...)
{
}

static char *lookup(struct pci_access *pacc, int flags, int a, int b)
{
	char buf[256];
	const char *s = pci_lookup_name(pacc, buf, sizeof(buf), flags, a, b);
	return s ? qp_xstrdup(s) : NULL;
}

/* Runs under the jump buffer: no cleanup attribute here would run on libpci's error
 * (the jump skips them), so everything it allocates is owned by the caller or the host. */
static int annotate(struct pci_access *pacc, char *sysfs, struct qp_host *h, bool names,
		    struct qp_err **err)
{
	/* libpci wants a mutable string for both name and value. */
	char param[] = "sysfs.path";
	pci_set_param(pacc, param, sysfs);
	/* Names come from pci.ids alone: minimal hosts have no udev hwdb, and libpci 3.9's
	 * hwdb fallback leaks its udev handle on every name pci.ids lacks. */
	char hwdb[] = "hwdb.disable", one[] = "1";
	pci_set_param(pacc, hwdb, one);
	pacc->method = PCI_ACCESS_SYS_BUS_PCI;
	pci_init(pacc);
	pci_scan_bus(pacc);

	size_t seen = 0;
	for (struct pci_dev *p = pacc->devices; p; p = p->next) {
		pci_fill_info(p, PCI_FILL_IDENT | PCI_FILL_CLASS);
		struct qp_pci_addr a = { (uint32_t)p->domain, p->bus, p->dev, p->func };
		char name[QP_PCI_ADDR_LEN];
		qp_pci_addr_fmt(&a, name);
		struct qp_pci_dev *d = NULL;
		for (size_t i = 0; i < h->n_devs && !d; i++)
			if (!qp_pci_addr_cmp(&h->devs[i].addr, &a))
				d = &h->devs[i];
		if (!d)
			return qp_err_set(err, 0, "libpci sees %s in %s, but qpass does not", name,
					  sysfs);
		seen++;
		if (p->vendor_id != d->vendor || p->device_id != d->device ||
		    p->device_class != d->class >> 8)
			return qp_err_set(err, 0, "%s: libpci reads %04x:%04x class %04x where qpass "
					  "reads %04x:%04x class %04x", name, p->vendor_id,
					  p->device_id, p->device_class, d->vendor, d->device,
					  d->class >> 8);
		if (!names)
			continue;
		/* As lspci prints it: "NVIDIA Corporation TU102 [GeForce RTX 2080 Ti]". */
		d->name = lookup(pacc, PCI_LOOKUP_VENDOR | PCI_LOOKUP_DEVICE, d->vendor, d->device);
		d->vendor_name = lookup(pacc, PCI_LOOKUP_VENDOR | PCI_LOOKUP_NO_NUMBERS, d->vendor, 0);
		d->device_name = lookup(pacc, PCI_LOOKUP_DEVICE | PCI_LOOKUP_NO_NUMBERS, d->vendor,
					d->device);
		d->class_name = lookup(pacc, PCI_LOOKUP_CLASS, (int)(d->class >> 8), 0);
	}
	if (seen != h->n_devs)
		return qp_err_set(err, 0, "libpci sees %zu devices in %s, qpass %zu", seen, sysfs,
				  h->n_devs);
	return 0;
}

int qp_pcilib_annotate(const struct qp_root *root, struct qp_host *h, bool names,
		       struct qp_err **err)
{
	struct pci_access *pacc = pci_alloc();
	if (!pacc)
		return qp_err_set(err, 0, "libpci: cannot allocate its state");
	pacc->error = on_error;
	pacc->warning = on_warning;
	pacc->debug = on_debug;

	sigjmp_buf jump;
	/* volatile: read after a longjmp. */
	volatile int rc = 0;
	qp_autofree char *sysfs = qp_root_display(root, "sys/bus/pci");
	pci_host = h;
	if (sigsetjmp(jump, 0) == 0) {
		pci_jump = &jump;
		rc = annotate(pacc, sysfs, h, names, err);
	} else {
		rc = qp_err_set(err, 0, "libpci: %s", pci_msg);
	}
	pci_jump = NULL;
	pci_host = NULL;
	/* pci_cleanup can report errors too; they are of no use any more. */
	if (sigsetjmp(jump, 0) == 0) {
		pci_jump = &jump;
		pci_cleanup(pacc);
	}
	pci_jump = NULL;
	return rc;
}
