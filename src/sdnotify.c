/*
 * sdnotify.c - systemd notifications over libsystemd's sd_notify, and a
 * watchdog timer on the loop (so a stuck loop stops the pings and systemd
 * restarts the daemon).  Called from main.c only.
 */
#include "lpconf.h" /* what configure found */

#include <stdlib.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "log.h"
#include "sdnotify.h"

static struct event *watchdog_ev;

#ifdef HAVE_SYSTEMD
static void
watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	sd_notify(0, "WATCHDOG=1");
}
#endif

void
sd_notify_ready(const char *status)
{
#ifdef HAVE_SYSTEMD
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
#endif
}

void
sd_notify_reloading(void)
{
#ifdef HAVE_SYSTEMD
	sd_notify(0, "RELOADING=1");
#endif
}

void
sd_notify_stopping(void)
{
#ifdef HAVE_SYSTEMD
	sd_notify(0, "STOPPING=1");
#endif
}

void
sd_watchdog_start(struct event_base *base)
{
#ifdef HAVE_SYSTEMD
	uint64_t usec;
	struct timeval tv;

	if (sd_watchdog_enabled(0, &usec) <= 0)
		return;
	usec /= 2;
	tv.tv_sec = (time_t)(usec / 1000000);
	tv.tv_usec = (suseconds_t)(usec % 1000000);
	watchdog_ev = event_new(base, -1, EV_PERSIST, watchdog_cb, NULL);
	event_add(watchdog_ev, &tv);
	log_info("systemd watchdog: pinging every %llu ms",
		 (unsigned long long)(usec / 1000));
#endif
}

void
sd_watchdog_stop(void)
{
	if (watchdog_ev != NULL) {
		event_free(watchdog_ev);
		watchdog_ev = NULL;
	}
}
