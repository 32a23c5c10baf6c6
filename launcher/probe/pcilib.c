/* libpci is loaded here, when a command first shows names (dlopen), not linked: most
 * runs of qpass (plan, up, bind) never show a name, and loading libpci with libz and
 * libudev costs each of them about 0.15 ms, an eighth of qpass's own start
 * (bench/host_scale.py). */
#include "probe/pcilib.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pci/pci.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "core/host.h"
#include "probe/pciids.h"

/* The soname: libpci's ABI has been 3 since pciutils 3.0 (2008). */
#define LIBPCI_SONAME "libpci.so.3"

/* The calls qpass makes, looked up once. */
struct libpci {
	void *so;
	struct pci_access *(*alloc)(void);
	void (*init)(struct pci_access *);
	void (*cleanup)(struct pci_access *);
	int (*set_param)(struct pci_access *, char *, char *);
	void (*set_name_list_path)(struct pci_access *, char *, int);
	char *(*lookup_name)(struct pci_access *, char *, int, int, ...);
};

static int load(struct libpci *l, struct qp_err **err)
{
	l->so = dlopen(LIBPCI_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!l->so) {
		qp_err_set(err, 0, "cannot load libpci (it finds pci.ids for the names): %s",
			   dlerror());
		return qp_err_hint(err, "install it (apt-get install libpci3)");
	}
	struct {
		const char *name;
		void **fn;
	} want[] = {
		{ "pci_alloc", (void **)&l->alloc },
		{ "pci_init", (void **)&l->init },
		{ "pci_cleanup", (void **)&l->cleanup },
		{ "pci_set_param", (void **)&l->set_param },
		{ "pci_set_name_list_path", (void **)&l->set_name_list_path },
		{ "pci_lookup_name", (void **)&l->lookup_name },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		*want[i].fn = dlsym(l->so, want[i].name);
		if (!*want[i].fn) {
			qp_err_set(err, 0, "%s has no %s: %s", LIBPCI_SONAME, want[i].name,
				   dlerror());
			dlclose(l->so);
			l->so = NULL;
			return -1;
		}
	}
	return 0;
}

/* libpci's error callback must not return (the library goes on as if it had exited).
 * It jumps back into names_by_libpci() instead; one libpci session at a time. */
static __thread sigjmp_buf *pci_jump;
static __thread char pci_msg[512];

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

__attribute__((format(printf, 1, 2))) static void on_quiet(char *fmt, ...)
{
}

static char *lookup(const struct libpci *l, struct pci_access *pacc, int flags, int a, int b)
{
	char buf[256];
	const char *s = l->lookup_name(pacc, buf, sizeof(buf), flags, a, b);
	return s ? qp_xstrdup(s) : NULL;
}

/* Runs under the jump buffer: everything it allocates is owned by the host. */
static void annotate(const struct libpci *l, struct pci_access *pacc, struct qp_host *h)
{
	for (size_t i = 0; i < h->n_devs; i++) {
		struct qp_pci_dev *d = &h->devs[i];
		/* As lspci prints it: "NVIDIA Corporation TU102 [GeForce RTX 2080 Ti]". */
		d->name = lookup(l, pacc, PCI_LOOKUP_VENDOR | PCI_LOOKUP_DEVICE, d->vendor,
				 d->device);
		d->vendor_name =
			lookup(l, pacc, PCI_LOOKUP_VENDOR | PCI_LOOKUP_NO_NUMBERS, d->vendor, 0);
		d->device_name = lookup(l, pacc, PCI_LOOKUP_DEVICE | PCI_LOOKUP_NO_NUMBERS,
					d->vendor, d->device);
		d->class_name = lookup(l, pacc, PCI_LOOKUP_CLASS, (int)(d->class >> 8), 0);
	}
}

/* libpci's own lookups, for a compressed pci.ids: it parses all of it first. */
static int names_by_libpci(const struct libpci *l, struct pci_access *pacc, struct qp_host *h,
			   struct qp_err **err)
{
	/* Names come from pci.ids alone: minimal hosts have no udev hwdb, and libpci 3.9's
	 * hwdb fallback leaks its udev handle on every name pci.ids lacks. */
	char hwdb[] = "hwdb.disable", one[] = "1";
	l->set_param(pacc, hwdb, one);
	/* The sysfs method is only named: nothing of the tree is read. */
	pacc->method = PCI_ACCESS_SYS_BUS_PCI;
	sigjmp_buf jump;
	/* volatile: read after a longjmp. */
	volatile int rc = 0;
	if (sigsetjmp(jump, 0) == 0) {
		pci_jump = &jump;
		l->init(pacc);
		annotate(l, pacc, h);
	} else {
		rc = qp_err_set(err, 0, "libpci: %s", pci_msg);
	}
	pci_jump = NULL;
	return rc;
}

/* The file libpci would read: its compiled-in name, or that name without ".gz" when
 * there is no such file (libpci does the same). */
static char *ids_path(const struct pci_access *pacc)
{
	const char *name = pacc->id_file_name;
	size_t n = strlen(name);
	if (n > 3 && !strcmp(name + n - 3, ".gz") && access(name, F_OK) < 0)
		return qp_xstrndup(name, n - 3);
	return qp_xstrdup(name);
}

/* The file, mapped (*map NULL when it is missing or empty: no names, as lspci). */
static int map_ids(const char *path, void **map, size_t *len, struct qp_err **err)
{
	*map = NULL;
	*len = 0;
	qp_autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return qp_err_set(err, errno, "cannot open %s", path);
	if (!st.st_size)
		return 0;
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		return qp_err_set(err, errno, "cannot read %s", path);
	*map = m;
	*len = (size_t)st.st_size;
	return 0;
}

int qp_pcilib_names(const char *file, struct qp_host *h, struct qp_err **err)
{
	struct libpci l;
	if (load(&l, err) < 0)
		return -1;
	struct pci_access *pacc = l.alloc();
	if (!pacc) {
		dlclose(l.so);
		return qp_err_set(err, 0, "libpci: cannot allocate its state");
	}
	pacc->error = on_error;
	pacc->warning = on_quiet;
	pacc->debug = on_quiet;
	qp_autofree char *path = file ? qp_xstrdup(file) : ids_path(pacc);
	if (file)
		l.set_name_list_path(pacc, path, 0);
	void *map;
	size_t len;
	int rc = map_ids(path, &map, &len, err);
	const char *text = map ? map : "";
	if (rc == 0 && len >= 2 && (unsigned char)text[0] == 0x1f &&
	    (unsigned char)text[1] == 0x8b) {
		rc = names_by_libpci(&l, pacc, h, err);
	} else if (rc == 0) {
		struct qp_pciids *ids = qp_pciids_new(text, len);
		for (size_t i = 0; i < h->n_devs; i++) {
			struct qp_pci_dev *d = &h->devs[i];
			d->name = qp_pciids_name(ids, d->vendor, d->device);
			d->vendor_name = qp_pciids_vendor_name(ids, d->vendor);
			d->device_name = qp_pciids_device_name(ids, d->vendor, d->device);
			d->class_name = qp_pciids_class_name(ids, (uint16_t)(d->class >> 8));
		}
		qp_pciids_free(ids);
	}
	if (map)
		munmap(map, len);
	sigjmp_buf jump;
	/* pci_cleanup can report errors too; they are of no use any more. */
	if (sigsetjmp(jump, 0) == 0) {
		pci_jump = &jump;
		l.cleanup(pacc);
	}
	pci_jump = NULL;
	dlclose(l.so);
	return rc;
}
