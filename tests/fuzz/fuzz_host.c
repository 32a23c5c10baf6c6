/* The parsers of what the kernel writes in sysfs and procfs: the first byte picks one,
 * the rest is the file's text. */
#include "fuzz.h"

#include "base/cpulist.h"
#include "base/err.h"
#include "base/pciaddr.h"
#include "base/sysparse.h"
#include "base/util.h"
#include "core/placement.h"
#include "probe/checkprobe.h"

enum { CPULIST, RESOURCE, NUMA_MAPS, INTERRUPTS, MEMINFO, MODULES, STATUS, STAT, CMDLINE,
       CPUINFO, SCALARS, N_PARSERS };

static void numa_maps(const char *s)
{
	uint64_t *pages = NULL, page_kb = 0;
	size_t n = 0;
	int bind = -1;
	/* The mapping looked for: the first address in the text, or 0. */
	uint64_t start = strtoull(s, NULL, 16);
	if (qp_parse_numa_maps(s, start, &pages, &n, &page_kb, &bind) == 0)
		free(pages);
}

static void interrupts(const char *s)
{
	struct qp_pci_addr devs[2] = { { 0, 0x04, 0, 0 }, { 0, 0x08, 0, 1 } };
	struct qp_irq *irqs = NULL;
	size_t n = 0;
	qp_parse_vfio_irqs(s, devs, 2, &irqs, &n);
	for (size_t i = 0; i < n; i++) {
		free(irqs[i].name);
		qp_cpulist_free(&irqs[i].affinity);
	}
	free(irqs);
	(void)qp_check_parse_interrupts(s);
}

static void scalars(const char *s, size_t len)
{
	struct qp_err *err = NULL;
	char *line = NULL;
	if (qp_parse_line(s, len, &line, &err) == 0)
		free(line);
	qp_err_free(err), err = NULL;
	uint32_t h;
	long l;
	uint64_t u;
	(void)qp_parse_sysfs_hex(s, 16, &h, &err);
	qp_err_free(err), err = NULL;
	(void)qp_parse_sysfs_int(s, -1, 1 << 20, &l, &err);
	qp_err_free(err), err = NULL;
	(void)qp_parse_sysfs_u64(s, &u, &err);
	qp_err_free(err), err = NULL;
	char *name = NULL;
	if (qp_parse_link_name(s, "drivers", &name, &err) == 0)
		free(name);
	qp_err_free(err), err = NULL;
	struct qp_pci_addr a;
	(void)qp_parse_pci_addr(s, &a, &err);
	qp_err_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	char *s = qp_fuzz_text(data + 1, size - 1);
	struct qp_err *err = NULL;
	struct qp_cpulist cl = { 0 };
	switch (data[0] % N_PARSERS) {
	case CPULIST:
		if (qp_cpulist_parse(s, &cl, &err) == 0) {
			free(qp_cpulist_fmt(&cl));
			qp_cpulist_free(&cl);
		}
		break;
	case RESOURCE: {
		struct qp_bar bars[6];
		(void)qp_parse_pci_resource(s, bars, &err);
		break;
	}
	case NUMA_MAPS:
		numa_maps(s);
		break;
	case INTERRUPTS:
		interrupts(s);
		break;
	case MEMINFO: {
		uint64_t t, f, r;
		(void)qp_parse_node_meminfo(s, 1, &t, &f, &r, &err);
		break;
	}
	case MODULES: {
		char **names = NULL;
		if (qp_parse_proc_modules(s, &names, &err) == 0)
			qp_strv_free(names);
		break;
	}
	case STATUS:
		if (qp_parse_status_allowed(s, &cl, &err) == 0)
			qp_cpulist_free(&cl);
		break;
	case STAT: {
		unsigned long long v;
		(void)qp_parse_stat_field(s, 39, &v);
		(void)qp_parse_stat_state(s);
		(void)qp_parse_stat_cpu(s);
		break;
	}
	case CMDLINE:
		free(qp_cmdline_get(s, "intel_iommu"));
		break;
	case CPUINFO:
		(void)qp_parse_phys_bits(s);
		break;
	default:
		scalars(s, size - 1);
		break;
	}
	qp_err_free(err);
	free(s);
	return 0;
}
