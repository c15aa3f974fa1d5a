/*
 * webhook.c - webhook event types and static header rules (webhook.h).
 * Called by api_webhooks.c, config.c and outbox.c.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"
#include "webhook.h"

const struct webhook_type webhook_types[] = {
    {"scan.created", "a scan or other event was recorded", false},
    {"visitor.identified",
     "a visitor known by email or external id submitted a form", false},
    {"visitor.qualified",
     "a visitor's lead score reached the qualification threshold", false},
    {"alert.firing", "alerts of a rule, at least one of them firing", false},
    {"alert.resolved", "alerts of a rule, all of them resolved", false},
    {"webhook.test", "sent by POST /v1/webhooks/{id}/test", false},
    {"endpoint.disabled", "an endpoint was disabled (410, or failing too long)",
     true},
    {"message.attempt.exhausted", "a message failed every attempt", true},
};
const int nwebhook_types = (int)nitems(webhook_types);

bool
webhook_type_pattern_valid(const char *p)
{
	size_t len = strlen(p);

	if (strcmp(p, "*") == 0)
		return true;
	for (int i = 0; i < nwebhook_types; i++) {
		const char *t = webhook_types[i].name;

		if (strcmp(p, t) == 0)
			return true;
		/* "scan.*": the prefix with its dot must start some type. */
		if (len > 2 && strcmp(p + len - 2, ".*") == 0 &&
		    strncmp(t, p, len - 1) == 0)
			return true;
	}
	return false;
}

const char *
webhook_type_list(void)
{
	static char buf[512];
	size_t at = 0;

	if (buf[0] != '\0')
		return buf;
	for (int i = 0; i < nwebhook_types && at < sizeof buf; i++)
		at +=
		    (size_t)snprintf(buf + at, sizeof buf - at, "%s%s",
				     i > 0 ? ", " : "", webhook_types[i].name);
	return buf;
}

/* RFC 9110 token characters. */
static bool
token_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

const char *
webhook_header_check(const char *name, const char *value)
{
	/* Set by the delivery engine itself, or they would break HTTP. */
	static const char *const reserved[] = {
	    "content-type", "content-length",	 "host",  "user-agent",
	    "connection",   "transfer-encoding", "te",	  "trailer",
	    "upgrade",	    "keep-alive",	 "expect"};

	if (*name == '\0' || strlen(name) > WEBHOOK_HEADER_NAME_MAX)
		return "is not a header name (1 to 128 of A-Z a-z 0-9 "
		       "!#$%&'*+-.^_`|~)";
	for (const char *c = name; *c != '\0'; c++)
		if (!token_char((unsigned char)*c))
			return "is not a header name (1 to 128 of A-Z a-z 0-9 "
			       "!#$%&'*+-.^_`|~)";
	for (size_t i = 0; i < nitems(reserved); i++)
		if (strcasecmp(name, reserved[i]) == 0)
			return "is set by linkpulse itself and cannot be "
			       "replaced (reserved: Content-Type, "
			       "Content-Length, Host, User-Agent, Connection, "
			       "Transfer-Encoding, webhook-*)";
	if (strncasecmp(name, "webhook-", 8) == 0)
		return "is set by linkpulse itself and cannot be replaced "
		       "(reserved: Content-Type, Content-Length, Host, "
		       "User-Agent, Connection, Transfer-Encoding, webhook-*)";
	if (value == NULL)
		return NULL;
	if (strpbrk(value, "\r\n") != NULL)
		return "must not contain a line break (CR or LF)";
	if (strlen(value) > WEBHOOK_HEADER_VALUE_MAX)
		return "is longer than 1024 bytes";
	return NULL;
}
