/*
 * sdnotify.h - telling systemd about the daemon's state (Type=notify):
 * READY=1, RELOADING=1, STOPPING=1, STATUS= and watchdog pings.  Built
 * without libsystemd these do nothing.
 */
#ifndef LP_SDNOTIFY_H
#define LP_SDNOTIFY_H

#include <event2/event.h>

void sd_notify_ready(const char *status);
void sd_notify_reloading(void);
void sd_notify_stopping(void);
/* Starts pinging the watchdog at half its interval if systemd asks for it. */
void sd_watchdog_start(struct event_base *);
void sd_watchdog_stop(void);

#endif
