/*
 * webhook.h - what the API, the configuration and the outbox agree on
 * about webhook endpoints: the event types they may subscribe to, and the
 * static headers they may carry.
 */
#ifndef LP_WEBHOOK_H
#define LP_WEBHOOK_H

#include <stdbool.h>

/* A type endpoints may subscribe to.  Adding a type is adding a row. */
struct webhook_type {
	const char *name;	 /* "scan.created" */
	const char *description; /* one line, for docs and errors */
	bool operational;	 /* sent to operational endpoints only */
};
extern const struct webhook_type webhook_types[];
extern const int nwebhook_types;

/*
 * Whether an eventTypes entry is acceptable: a known type, "*", or
 * "prefix.*" matching at least one known type.
 */
bool webhook_type_pattern_valid(const char *pattern);
/* The known types, comma-separated, for messages (static). */
const char *webhook_type_list(void);

#define WEBHOOK_MAX_HEADERS	 20
#define WEBHOOK_HEADER_NAME_MAX	 128
#define WEBHOOK_HEADER_VALUE_MAX 1024
/*
 * NULL if name: value may be sent as a static header, else why not, as a
 * phrase that follows the header's name: the name must be an HTTP token
 * and not one linkpulse sets itself (content-type, content-length, host,
 * user-agent, connection, transfer-encoding, webhook-*, ...); the value
 * (not checked when NULL) at most 1,024 bytes without CR or LF.
 */
const char *webhook_header_check(const char *name, const char *value);

#endif
