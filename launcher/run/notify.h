/* Telling the service manager how the VM goes: systemd's notify protocol, when qpass
 * runs in a Type=notify unit ($NOTIFY_SOCKET; tools/systemd/qpass@.service). Built
 * without libsystemd, or run outside such a unit, every call does nothing. */
#ifndef QP_RUN_NOTIFY_H
#define QP_RUN_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* STATUS=, the line `systemctl status` shows. */
void qp_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* READY=1 with a STATUS=: the VM runs as planned (vCPUs pinned, the guest started). */
void qp_notify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* STOPPING=1 with a STATUS=: a stop is under way. */
void qp_notify_stopping(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* How often the supervisor must say WATCHDOG=1 (half the unit's WatchdogSec), in ms;
 * 0 when no watchdog is set. */
int64_t qp_notify_watchdog_ms(void);
void qp_notify_watchdog(void);
/* Whether qpass tells a service manager at all (and was built to). */
bool qp_notify_on(void);

#endif
