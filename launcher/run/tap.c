#include "run/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/util.h"

int qp_tap_open(const char *bridge, uid_t owner, char name[QP_IFNAMSIZ], struct qp_err **err)
{
	unsigned br = if_nametoindex(bridge);
	if (!br) {
		qp_err_set(err, 0, "there is no network interface %s on this host", bridge);
		return qp_err_hint(err, "create the bridge (ip link add %s type bridge; ip link "
				   "set %s up), or fix \"bridge\" in the profile", bridge, bridge);
	}
	qp_autoclose int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return qp_err_set(err, errno, "cannot open /dev/net/tun");
	struct ifreq ifr = { 0 };
	/* A virtio-net header, as QEMU's virtio-net wants it; no packet info. */
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "qptap%%d");
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		return qp_err_set(err, errno, "cannot create a tap device");
	snprintf(name, QP_IFNAMSIZ, "%s", ifr.ifr_name);
	if (owner != (uid_t)-1 && ioctl(fd, TUNSETOWNER, (unsigned long)owner) < 0)
		return qp_err_set(err, errno, "%s: cannot give it to uid %u", name, (unsigned)owner);
	qp_autoclose int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return qp_err_set(err, errno, "socket");
	struct ifreq add = { 0 };
	snprintf(add.ifr_name, sizeof(add.ifr_name), "%s", bridge);
	add.ifr_ifindex = (int)if_nametoindex(name);
	if (ioctl(s, SIOCBRADDIF, &add) < 0) {
		int e = errno;
		qp_err_set(err, e, "cannot attach %s to %s", name, bridge);
		return e == EOPNOTSUPP || e == EINVAL ?
			qp_err_hint(err, "%s is not a bridge (ip -d link show %s)", bridge, bridge) : -1;
	}
	struct ifreq up = { 0 };
	snprintf(up.ifr_name, sizeof(up.ifr_name), "%s", name);
	if (ioctl(s, SIOCGIFFLAGS, &up) < 0)
		return qp_err_set(err, errno, "%s: cannot read its flags", name);
	up.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &up) < 0)
		return qp_err_set(err, errno, "%s: cannot bring it up", name);
	/* Checked as the kernel shows it: the tap's master is the bridge. */
	char link[64], target[PATH_MAX];
	snprintf(link, sizeof(link), "/sys/class/net/%s/master", name);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return qp_err_set(err, errno, "%s is not on %s after all", name, bridge);
	target[n] = '\0';
	const char *base = strrchr(target, '/');
	if (strcmp(base ? base + 1 : target, bridge))
		return qp_err_set(err, 0, "%s is on %s, not %s", name, target, bridge);
	return qp_steal_fd(&fd);
}
