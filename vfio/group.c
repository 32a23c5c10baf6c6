#include "vfio/group.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "base/kernel.h"
#include "base/util.h"

#define GROUP_WAIT_MS 5000

/* The kernel's answer through the ioctls, as QEMU will ask. */
static int real_check(const struct qp_root *root, int group)
{
	qp_autofree char *rel = qp_xasprintf("dev/vfio/%d", group);
	qp_autoclose int fd = qp_root_openat(root, rel, O_RDWR);
	if (fd < 0)
		return errno;
	struct vfio_group_status st = { .argsz = sizeof(st) };
	if (ioctl(fd, VFIO_GROUP_GET_STATUS, &st) < 0)
		return errno;
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE))
		return EINVAL;
	qp_autoclose int c = qp_root_openat(root, "dev/vfio/vfio", O_RDWR);
	if (c < 0)
		return errno;
	if (ioctl(c, VFIO_GET_API_VERSION) != VFIO_API_VERSION)
		return EPROTO;
	if (ioctl(c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0 &&
	    ioctl(c, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) <= 0)
		return ENOTSUP;
	return 0;
}

int qp_vfio_check_group(const struct qp_root *root, int group, struct qp_err **err)
{
	qp_autofree char *rel = qp_xasprintf("dev/vfio/%d", group);
	qp_autofree char *where = qp_root_display(root, rel);
	/* udev may make the node a moment after the bind. */
	for (int waited = 0; !qp_root_exists(root, rel); waited += 20) {
		if (waited >= GROUP_WAIT_MS)
			return qp_err_set(err, 0, "%s did not appear within %d s of binding the "
					  "group to vfio-pci", where, GROUP_WAIT_MS / 1000);
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	int e = qp_kernel_vfio_check ? qp_kernel_vfio_check(root, group) : real_check(root, group);
	switch (e) {
	case 0:
		return 0;
	case EINVAL:
		qp_err_set(err, 0, "IOMMU group %d is not viable: a device in it is still on a "
			   "host driver", group);
		return qp_err_hint(err, "`qpass list` shows the group's members and drivers");
	case EBUSY:
		return qp_err_set(err, 0, "%s is already open: another VM or program uses the "
				  "group", where);
	case ENOTSUP:
		return qp_err_set(err, 0, "the kernel's VFIO has no type1 IOMMU support (load "
				  "vfio_iommu_type1)");
	default:
		return qp_err_set(err, e, "cannot check %s", where);
	}
}
