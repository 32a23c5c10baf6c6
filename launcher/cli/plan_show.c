#include "cli/plan_show.h"

#include <string.h>

#include "base/jsonout.h"
#include "base/util.h"
#include "core/argv.h"

static char *fmt_mib(uint64_t mib)
{
	if (mib >= 1024 && mib % 1024 == 0)
		return qp_xasprintf("%llu GiB", (unsigned long long)(mib / 1024));
	return qp_xasprintf("%llu MiB", (unsigned long long)mib);
}

/* Options one per line, each with its value, quoted for a POSIX shell. */
static void text_argv(struct qp_buf *b, const struct qp_plan *plan)
{
	for (size_t i = 0; i < plan->argc; i++) {
		qp_autofree char *q = qp_shell_quote(plan->argv[i]);
		if (i == 0) {
			qp_buf_add(b, q);
			continue;
		}
		bool opt = plan->argv[i][0] == '-';
		qp_buf_addf(b, "%s%s", opt ? " \\\n    " : " ", q);
	}
	qp_buf_addc(b, '\n');
}

char *qp_plan_text(const struct qp_plan *plan)
{
	const struct qp_profile *p = plan->profile;
	struct qp_buf b = { 0 };
	qp_autofree char *mem = fmt_mib(p->memory_mib);
	qp_buf_addf(&b, "VM %s (%s): %d vCPU%s, %s, %s, %s\n\n", p->name, p->file, p->vcpus,
		    p->vcpus == 1 ? "" : "s", mem, p->machine == QP_MACHINE_PC ? "pc" : "q35",
		    plan->tcg ? "TCG" : "KVM");
	if (plan->n_devs) {
		qp_buf_add(&b, "Devices\n");
		qp_buf_add(&b, "  HOST          GROUP  NODE  DRIVER NOW      GUEST\n");
		for (size_t i = 0; i < plan->n_devs; i++) {
			const struct qp_plan_dev *d = &plan->devs[i];
			char a[QP_PCI_ADDR_LEN];
			qp_pci_addr_fmt(&d->host, a);
			qp_autofree char *g = qp_plan_guest_addr(d);
			qp_buf_addf(&b, "  %s  %-5d  %-4d  %-15.15s %s%s%s\n", a, d->iommu_group,
				    d->numa_node, d->driver ? d->driver : "-", g,
				    d->multifunction ? " multifunction" : "",
				    d->picked ? " (picked)" : "");
		}
		qp_buf_addc(&b, '\n');
	}
	qp_buf_add(&b, "Placement\n");
	if (plan->span) {
		size_t k = plan->n_memory_nodes, per = plan->n_vcpus / k;
		qp_autofree char *share = fmt_mib(p->memory_mib / k);
		for (size_t g = 0; g < k; g++)
			qp_buf_addf(&b, "  guest node %zu: host node %d, vCPUs %zu-%zu, %s%s, GPUs "
				    "behind pxb.node%zu\n", g, plan->memory_nodes[g], g * per,
				    g * per + per - 1, share, p->hugepage_kb ? " hugepages" : "", g);
	} else if (plan->numa_node >= 0)
		qp_buf_addf(&b, "  NUMA node %d: memory bound to it%s\n", plan->numa_node,
			    p->hugepage_kb ? ", on hugepages" : "");
	else
		qp_buf_add(&b, "  no NUMA nodes on this host: no memory binding\n");
	struct qp_buf pins = { 0 };
	for (size_t v = 0; v < plan->n_vcpus; v++)
		qp_buf_addf(&pins, "%s%zu->%d", v ? " " : "", v, plan->vcpu_pins[v]);
	qp_autofree char *pin_text = qp_buf_steal(&pins);
	qp_buf_add_wrapped(&b, 80, "  vCPU->CPU  ", pin_text);
	qp_autofree char *emu = qp_cpulist_fmt(&plan->emulator_cpus);
	qp_autofree char *lock = fmt_mib(plan->memlock_bytes >> 20);
	qp_buf_addf(&b, "  emulator   CPUs %s\n  memlock    %s (RAM + 1 GiB per VFIO device)\n",
		    emu, lock);
	for (char **n = plan->notes; n && *n; n++)
		qp_buf_add_wrapped(&b, 80, "  note: ", *n);
	for (char **w = plan->warnings; w && *w; w++)
		qp_buf_add_wrapped(&b, 80, "  warning: ", *w);
	qp_buf_add(&b, "\nQEMU command line\n");
	text_argv(&b, plan);
	return qp_buf_steal(&b);
}

/* The 64-bit MMIO window (docs/plan-json.md), or NULL when none is needed. */
static json_object *mmio_json(const struct qp_plan *plan)
{
	if (!plan->mmio64_window)
		return NULL;
	json_object *m = json_object_new_object();
	qp_json_add(m, "need_bytes", json_object_new_int64((int64_t)plan->mmio64_need));
	qp_json_add(m, "window_bytes", json_object_new_int64((int64_t)plan->mmio64_window));
	qp_json_add(m, "address_bits", json_object_new_int((int)plan->mmio64_bits));
	qp_json_add(m, "set", json_object_new_boolean(plan->mmio64_window >
						      qp_plan_mmio_default(plan->profile)));
	return m;
}

json_object *qp_plan_json(const struct qp_plan *plan)
{
	const struct qp_profile *p = plan->profile;
	json_object *o = json_object_new_object();
	qp_json_add(o, "version", json_object_new_int(QP_PLAN_JSON_VERSION));
	qp_json_add(o, "name", json_object_new_string(p->name));
	qp_json_add(o, "profile", json_object_new_string(p->file));
	json_object *devs = json_object_new_array();
	for (size_t i = 0; i < plan->n_devs; i++) {
		const struct qp_plan_dev *d = &plan->devs[i];
		json_object *x = json_object_new_object();
		char a[QP_PCI_ADDR_LEN];
		qp_pci_addr_fmt(&d->host, a);
		qp_autofree char *g = qp_plan_guest_addr(d);
		qp_json_add(x, "host", json_object_new_string(a));
		qp_json_add(x, "guest", json_object_new_string(g));
		qp_json_add(x, "multifunction", json_object_new_boolean(d->multifunction));
		qp_json_add(x, "iommu_group", json_object_new_int(d->iommu_group));
		qp_json_add(x, "numa_node", json_object_new_int(d->numa_node));
		qp_json_add(x, "driver", qp_json_str(d->driver));
		qp_json_add(x, "name", qp_json_str(d->name));
		qp_json_add(x, "id", json_object_new_string(d->id));
		qp_json_add(x, "picked", json_object_new_boolean(d->picked));
		json_object_array_add(devs, x);
	}
	qp_json_add(o, "devices", devs);
	qp_json_add(o, "iommu_groups", qp_json_ints(plan->groups, plan->n_groups));
	qp_json_add(o, "numa_node", json_object_new_int(plan->numa_node));
	qp_json_add(o, "vcpu_pins", qp_json_ints(plan->vcpu_pins, plan->n_vcpus));
	qp_json_add(o, "emulator_cpus", qp_json_cpus(&plan->emulator_cpus));
	qp_json_add(o, "memory_nodes", qp_json_ints(plan->memory_nodes, plan->n_memory_nodes));
	qp_json_add(o, "mmio64", mmio_json(plan));
	qp_json_add(o, "memory_mib", json_object_new_uint64(p->memory_mib));
	qp_json_add(o, "memlock_bytes", json_object_new_uint64(plan->memlock_bytes));
	qp_json_add(o, "accel", json_object_new_string(plan->tcg ? "tcg" : "kvm"));
	json_object *fds = json_object_new_object();
	qp_json_add(fds, "qmp", json_object_new_int(QP_FD_QMP));
	json_object *taps = json_object_new_array();
	for (size_t i = 0; i < plan->n_taps; i++) {
		json_object *t = json_object_new_object();
		qp_json_add(t, "fd", json_object_new_int(plan->taps[i].fd));
		qp_json_add(t, "bridge", json_object_new_string(plan->taps[i].bridge));
		json_object_array_add(taps, t);
	}
	qp_json_add(fds, "taps", taps);
	qp_json_add(o, "fds", fds);
	json_object *ovmf = NULL;
	if (plan->ovmf_vars) {
		ovmf = json_object_new_object();
		qp_json_add(ovmf, "code", json_object_new_string(p->ovmf_code));
		qp_json_add(ovmf, "vars_template", json_object_new_string(p->ovmf_vars));
		qp_json_add(ovmf, "vars", json_object_new_string(plan->ovmf_vars));
	}
	qp_json_add(o, "ovmf", ovmf);
	json_object *life = json_object_new_object();
	qp_json_add(life, "on_poweroff", json_object_new_string(qp_action_name(p->on_poweroff)));
	qp_json_add(life, "on_reboot", json_object_new_string(qp_action_name(p->on_reboot)));
	qp_json_add(life, "on_crash", json_object_new_string(qp_action_name(p->on_crash)));
	qp_json_add(o, "lifecycle", life);
	qp_json_add(o, "shutdown_timeout", json_object_new_int(p->shutdown_timeout));
	qp_json_add(o, "run_as", qp_json_str(p->run_as));
	json_object *argv = json_object_new_array();
	for (size_t i = 0; i < plan->argc; i++)
		json_object_array_add(argv, json_object_new_string(plan->argv[i]));
	qp_json_add(o, "argv", argv);
	json_object *warn = json_object_new_array();
	for (char **w = plan->warnings; w && *w; w++)
		json_object_array_add(warn, json_object_new_string(*w));
	qp_json_add(o, "warnings", warn);
	json_object *notes = json_object_new_array();
	for (char **n = plan->notes; n && *n; n++)
		json_object_array_add(notes, json_object_new_string(*n));
	qp_json_add(o, "notes", notes);
	qp_json_add(o, "gpus_picked", json_object_new_boolean(plan->picked));
	return o;
}
