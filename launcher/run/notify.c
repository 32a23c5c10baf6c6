/* The notify protocol through libsystemd's sd_notify(3), which checks $NOTIFY_SOCKET
 * and says nothing when it is not set. The unit's ready line is sent once: a relaunch
 * (on_reboot restart) only updates STATUS=. */
#include "run/notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "qp-config.h"
#if QP_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

/* One message: a state line (or none), then STATUS= from fmt. */
__attribute__((format(printf, 2, 0))) static void notify_send(const char *state, const char *fmt,
							      va_list ap)
{
#if QP_HAVE_SYSTEMD
	char status[512];
	vsnprintf(status, sizeof(status), fmt, ap);
	sd_notifyf(0, "%s%sSTATUS=%s", state ? state : "", state ? "\n" : "", status);
#else
	(void)state;
	(void)fmt;
	(void)ap;
#endif
}

void qp_notify_status(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	notify_send(NULL, fmt, ap);
	va_end(ap);
}

void qp_notify_ready(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	notify_send("READY=1", fmt, ap);
	va_end(ap);
}

void qp_notify_stopping(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	notify_send("STOPPING=1", fmt, ap);
	va_end(ap);
}

int64_t qp_notify_watchdog_ms(void)
{
#if QP_HAVE_SYSTEMD
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) > 0 && usec >= 2000)
		return (int64_t)(usec / 2000);
#endif
	return 0;
}

void qp_notify_watchdog(void)
{
#if QP_HAVE_SYSTEMD
	sd_notify(0, "WATCHDOG=1");
#endif
}

bool qp_notify_on(void)
{
#if QP_HAVE_SYSTEMD
	const char *s = getenv("NOTIFY_SOCKET");
	return s && *s;
#else
	return false;
#endif
}
