/* VM profiles: JSON files (comments allowed) that say what a VM is. Documented key by
 * key in docs/profile.md. Parsing is pure: text in, a profile or an error naming
 * FILE:LINE:COLUMN and the key's path out. */
#ifndef QP_PROFILE_H
#define QP_PROFILE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/cpulist.h"
#include "base/err.h"
#include "base/pciaddr.h"

enum qp_machine { QP_MACHINE_Q35, QP_MACHINE_PC };
enum qp_firmware { QP_FW_BIOS, QP_FW_OVMF };
enum qp_accel { QP_ACCEL_KVM, QP_ACCEL_TCG, QP_ACCEL_AUTO };
enum qp_action { QP_ACT_DESTROY, QP_ACT_RESTART, QP_ACT_PRESERVE };
enum qp_disk_bus { QP_DISK_VIRTIO, QP_DISK_SATA };
enum qp_net_type { QP_NET_BRIDGE, QP_NET_USER };
enum qp_display { QP_DISPLAY_VNC, QP_DISPLAY_NONE };
enum qp_video { QP_VIDEO_STD, QP_VIDEO_CIRRUS, QP_VIDEO_VIRTIO, QP_VIDEO_QXL, QP_VIDEO_NONE };
enum qp_usb { QP_USB_XHCI, QP_USB_EHCI, QP_USB_NONE };
enum qp_serial { QP_SERIAL_NONE, QP_SERIAL_PTY, QP_SERIAL_FILE };
enum qp_cache { QP_CACHE_NONE, QP_CACHE_WRITEBACK, QP_CACHE_WRITETHROUGH,
		QP_CACHE_DIRECTSYNC, QP_CACHE_UNSAFE };
enum qp_aio { QP_AIO_THREADS, QP_AIO_NATIVE, QP_AIO_IO_URING };
/* Where the passed devices' host interrupts (their vfio vectors) go once the guest runs. */
/* "numa": "span": one guest NUMA node per host node of the VM's devices. */
#define QP_NUMA_SPAN (-2)

enum qp_irq_cpus { QP_IRQ_EMULATOR, QP_IRQ_VCPUS, QP_IRQ_LEAVE };

struct qp_passthrough {
	struct qp_pci_addr addr;
	bool all_functions;   /* "04:00": every function of the device */
	int guest_slot;       /* -1: the planner chooses */
	int rombar;           /* -1: QEMU's default; 0 or 1 */
	char *romfile;        /* NULL: the device's own ROM */
	char *key;            /* where it was written: "passthrough[0]" */
};

/* "gpus": GPUs picked by need when the VM starts (core/pool.h), not named. */
struct qp_gpu_request {
	int count;            /* 0: none asked for */
	int vendor;           /* a PCI vendor id; -1: any */
	char *model;          /* NULL: any; else found in the device's name, in any case */
	int device;           /* the model as a PCI device id ("1e04"); -1: it is a name */
	int node;             /* -1: any node */
};

struct qp_disk {
	char *file;
	bool qcow2;           /* else raw */
	enum qp_disk_bus bus;
	enum qp_cache cache;
	enum qp_aio aio;
	bool readonly;
};

struct qp_net {
	enum qp_net_type type;
	char *bridge;         /* QP_NET_BRIDGE */
	char *mac;            /* NULL: derived from the VM's name */
	char *model;          /* "virtio-net-pci", "e1000e"... */
};

struct qp_hv {
	char *name;           /* "relaxed" */
	char *value;          /* NULL, or "0x1fff" for spinlocks */
};

struct qp_profile {
	char *file;           /* where it was read from, for messages */
	char *name;
	uint64_t memory_mib;
	int vcpus;
	struct qp_passthrough *pt;
	size_t n_pt;
	struct qp_gpu_request gpus;
	int numa;             /* -1: auto; QP_NUMA_SPAN: the nodes of its devices */
	enum qp_machine machine;
	enum qp_firmware firmware;
	char *ovmf_code, *ovmf_vars;
	char *uuid;
	char *cpu_model;
	char **cpu_flags;     /* NULL-terminated */
	bool hide_hypervisor;
	char *hv_vendor_id;
	struct qp_hv *hv;
	size_t n_hv;
	int sockets, cores, threads;  /* 0: not given */
	bool clock_localtime;
	bool hypervclock;
	enum qp_action on_poweroff, on_reboot, on_crash;
	struct qp_disk *disks;
	size_t n_disks;
	struct qp_net *nets;
	size_t n_nets;
	enum qp_display display;
	char *vnc_listen;
	int vnc_port;
	char *vnc_password_file;
	enum qp_video video;
	enum qp_usb usb;
	bool usb_tablet;
	enum qp_serial serial;
	char *serial_path;
	bool memballoon;
	uint64_t hugepage_kb;  /* 0: none */
	char *hugepage_path;
	bool prealloc;         /* every page of guest RAM allocated before the guest runs */
	int prealloc_threads;  /* 0: the planner chooses */
	int *vcpu_pins;        /* NULL: automatic */
	size_t n_vcpu_pins;
	bool has_emulator_cpus;
	struct qp_cpulist emulator_cpus;
	bool share_cpus;       /* other VMs may pin to this one's CPUs, and it to theirs */
	enum qp_irq_cpus irq_cpus;
	char *run_as;
	enum qp_accel accel;
	bool allow_boot_vga;
	char **extra_args;     /* NULL-terminated */
	char *qemu;
	int shutdown_timeout;
	/* Not a key: where per-VM state goes (the OVMF variables), set by the caller;
	 * NULL means QP_STATE_DIR. Kept here so that the planner stays pure. */
	const char *state_dir;
};

/* Parses a profile from text; `file` names it in messages. On failure *out is empty. */
int qp_profile_parse(const char *text, const char *file, struct qp_profile *out,
		     struct qp_err **err);
/* Reads and parses a profile file. */
int qp_profile_load(const char *file, struct qp_profile *out, struct qp_err **err);
void qp_profile_free(struct qp_profile *p);

/* Parses "64G", "512M", "1T" (also "64GiB"), or a plain number of MiB. */
int qp_parse_size_mib(const char *s, uint64_t *mib, struct qp_err **err);

const char *qp_action_name(enum qp_action a);

#endif
