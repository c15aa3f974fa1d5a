/*
 * netguard.c - the outbound address policy (SSRF guard): which addresses a
 * webhook may connect to, the allow list that opens exceptions, and the
 * up-front check of a webhook URL.  Pure code over libc's address parsers
 * and libcurl's URL parser; it resolves nothing.  delivery.c calls
 * netguard_check from curl's open-socket callback, api_webhooks.c calls
 * netguard_check_url before storing an endpoint, config.c validates
 * delivery.allow_networks with netguard_cidr_valid, main.c builds the
 * policy.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "netguard.h"

struct cidr {
	int family;		/* AF_INET or AF_INET6 */
	unsigned char addr[16]; /* network order, host bits cleared */
	int prefix;
};

struct netguard {
	struct cidr *allow;
	int nallow;
};

/* The refused IPv4 classes, in the order of the reason tables below. */
enum v4_class {
	V4_THIS_NETWORK,
	V4_LOOPBACK,
	V4_PRIVATE,
	V4_LINK_LOCAL,
	V4_CGNAT,
	V4_MULTICAST,
	V4_RESERVED,
	V4_BROADCAST,
	V4_DOCUMENTATION,
	V4_NCLASSES
};

/* How an IPv6 address may carry an IPv4 one. */
enum v4_embedding {
	EMBED_NONE,
	EMBED_MAPPED,
	EMBED_COMPATIBLE,
	EMBED_NAT64,
	EMBED_6TO4,
	EMBED_NKINDS
};

/*
 * Reasons are static strings (callers keep them), so every embedding has
 * its own copy of the IPv4 reasons, made by string concatenation.
 */
#define V4_REASONS(p)                                                          \
	{                                                                      \
		[V4_THIS_NETWORK] = p "unspecified or this network",           \
		[V4_LOOPBACK] = p "loopback",                                  \
		[V4_PRIVATE] = p "private network",                            \
		[V4_LINK_LOCAL] = p "link-local (cloud metadata)",             \
		[V4_CGNAT] = p "carrier-grade NAT",                            \
		[V4_MULTICAST] = p "multicast", [V4_RESERVED] = p "reserved",  \
		[V4_BROADCAST] = p "broadcast",                                \
		[V4_DOCUMENTATION] =                                           \
		    p "reserved for documentation or benchmarks",              \
	}

static const char *const v4_reasons[EMBED_NKINDS][V4_NCLASSES] = {
    [EMBED_NONE] = V4_REASONS(""),
    [EMBED_MAPPED] = V4_REASONS("IPv4-mapped "),
    [EMBED_COMPATIBLE] = V4_REASONS("IPv4-compatible "),
    [EMBED_NAT64] = V4_REASONS("NAT64 "),
    [EMBED_6TO4] = V4_REASONS("6to4 "),
};

#define IPV4(a, b, c, d)                                                       \
	((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 |      \
	 (uint32_t)(d))

/* First match wins: broadcast must come before the 240/4 it lies in. */
static const struct {
	uint32_t net;
	int prefix;
	enum v4_class class;
} v4_refused[] = {
    {IPV4(0, 0, 0, 0), 8, V4_THIS_NETWORK},
    {IPV4(127, 0, 0, 0), 8, V4_LOOPBACK},
    {IPV4(10, 0, 0, 0), 8, V4_PRIVATE},
    {IPV4(172, 16, 0, 0), 12, V4_PRIVATE},
    {IPV4(192, 168, 0, 0), 16, V4_PRIVATE},
    {IPV4(169, 254, 0, 0), 16, V4_LINK_LOCAL},
    {IPV4(100, 64, 0, 0), 10, V4_CGNAT},
    {IPV4(224, 0, 0, 0), 4, V4_MULTICAST},
    {IPV4(255, 255, 255, 255), 32, V4_BROADCAST},
    {IPV4(240, 0, 0, 0), 4, V4_RESERVED},
    {IPV4(192, 0, 0, 0), 24, V4_DOCUMENTATION},
    {IPV4(192, 0, 2, 0), 24, V4_DOCUMENTATION},
    {IPV4(198, 18, 0, 0), 15, V4_DOCUMENTATION},
    {IPV4(198, 51, 100, 0), 24, V4_DOCUMENTATION},
    {IPV4(203, 0, 113, 0), 24, V4_DOCUMENTATION},
};

/* ::ffff:0:0/96 and 64:ff9b::/96 */
static const unsigned char v4_mapped_prefix[12] = {[10] = 0xff, [11] = 0xff};
static const unsigned char nat64_prefix[12] = {0x00, 0x64, 0xff, 0x9b};

static uint32_t
load_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Whether the first prefix bits of a and b are equal. */
static bool
prefix_match(const unsigned char *a, const unsigned char *b, int prefix)
{
	int whole = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, (size_t)whole) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[whole] ^ b[whole]) & (0xff00 >> rest)) == 0;
}

static void
clear_host_bits(unsigned char *addr, size_t len, int prefix)
{
	for (size_t i = 0; i < len; i++) {
		int bits = prefix - (int)i * 8;

		if (bits <= 0)
			addr[i] = 0;
		else if (bits < 8)
			addr[i] &= (unsigned char)(0xff00 >> bits);
	}
}

/* Parses "address[/prefix]"; 0, or -1 if malformed. */
static int
cidr_parse(const char *s, struct cidr *c)
{
	char buf[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	int max;

	if (alen == 0 || alen >= sizeof buf)
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	memset(c, 0, sizeof *c);
	if (inet_pton(AF_INET, buf, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	c->prefix = max;
	if (slash != NULL) {
		const char *p = slash + 1;
		int v = 0;

		/* Digits only: no sign, no spaces, no "0x". */
		if (*p == '\0' || strlen(p) > 3)
			return -1;
		for (; *p != '\0'; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			v = v * 10 + (*p - '0');
		}
		if (v > max)
			return -1;
		c->prefix = v;
	}
	clear_host_bits(c->addr, c->family == AF_INET ? 4 : 16, c->prefix);
	return 0;
}

bool
netguard_cidr_valid(const char *s)
{
	struct cidr c;

	return s != NULL && cidr_parse(s, &c) == 0;
}

struct netguard *
netguard_new(char *const *allow, int nallow, struct strlist *errs)
{
	struct netguard *g = xcalloc(1, sizeof *g);
	bool bad = false;

	g->allow = xcalloc(nallow > 0 ? (size_t)nallow : 1, sizeof *g->allow);
	for (int i = 0; i < nallow; i++) {
		if (cidr_parse(allow[i], &g->allow[g->nallow]) == 0) {
			g->nallow++;
			continue;
		}
		strlist_addf(
		    errs,
		    "delivery.allow_networks: \"%s\" is not an "
		    "address or a CIDR (such as 10.1.0.0/16 or ::1/128)",
		    allow[i]);
		bad = true;
	}
	if (bad) {
		netguard_free(g);
		return NULL;
	}
	return g;
}

void
netguard_free(struct netguard *g)
{
	if (g == NULL)
		return;
	free(g->allow);
	free(g);
}

/* Whether addr (4 or 16 bytes by family) lies in an allowed network. */
static bool
allowed(const struct netguard *g, int family, const unsigned char *addr)
{
	if (g == NULL)
		return false;
	for (int i = 0; i < g->nallow; i++) {
		if (g->allow[i].family == family &&
		    prefix_match(addr, g->allow[i].addr, g->allow[i].prefix))
			return true;
	}
	return false;
}

static const char *
check_v4(uint32_t a, enum v4_embedding how)
{
	for (size_t i = 0; i < nitems(v4_refused); i++) {
		/* 64-bit so that a /0 would not shift by 32. */
		uint32_t mask =
		    (uint32_t)(0xffffffffull << (32 - v4_refused[i].prefix));

		if ((a & mask) == v4_refused[i].net)
			return v4_reasons[how][v4_refused[i].class];
	}
	return NULL;
}

static const char *
check_v6(const unsigned char *a)
{
	static const unsigned char zero[16];

	if (memcmp(a, zero, 16) == 0)
		return "unspecified";
	if (memcmp(a, zero, 15) == 0 && a[15] == 1)
		return "loopback";
	if (memcmp(a, v4_mapped_prefix, 12) == 0)
		return check_v4(load_be32(a + 12), EMBED_MAPPED);
	if (memcmp(a, zero, 12) == 0)
		return check_v4(load_be32(a + 12), EMBED_COMPATIBLE);
	if (memcmp(a, nat64_prefix, 12) == 0)
		return check_v4(load_be32(a + 12), EMBED_NAT64);
	if (a[0] == 0x20 && a[1] == 0x02)
		return check_v4(load_be32(a + 2), EMBED_6TO4);
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return "link-local";
	if ((a[0] & 0xfe) == 0xfc)
		return "unique local";
	if (a[0] == 0xff)
		return "multicast";
	return NULL;
}

/*
 * A NULL policy is one with an empty allow list, so a caller without a
 * configuration still gets the default refusals.
 */
const char *
netguard_check(const struct netguard *g, const struct sockaddr *sa)
{
	if (sa == NULL)
		return "not an IP address";
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		const unsigned char *a =
		    (const unsigned char *)&sin->sin_addr.s_addr;

		if (allowed(g, AF_INET, a))
			return NULL;
		return check_v4(load_be32(a), EMBED_NONE);
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 =
		    (const struct sockaddr_in6 *)sa;
		const unsigned char *a = sin6->sin6_addr.s6_addr;

		if (allowed(g, AF_INET6, a))
			return NULL;
		/* The kernel sends ::ffff:a.b.c.d as IPv4 to a.b.c.d. */
		if (memcmp(a, v4_mapped_prefix, 12) == 0 &&
		    allowed(g, AF_INET, a + 12))
			return NULL;
		return check_v6(a);
	}
	return "not an IP address";
}

/*
 * The host of a URL as an address, if it is a literal one: "[v6]" as curl
 * returns it, or IPv4 in any spelling inet_aton takes (older libcurl does
 * not normalise "2130706433" or "0x7f.1" as newer ones do).  One trailing
 * dot is ignored, as the resolver would.  0, or -1 for a name.
 */
static int
host_address(const char *host, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char buf[256];
	size_t len = strlen(host);

	memset(ss, 0, sizeof *ss);
	if (len == 0 || len >= sizeof buf)
		return -1;
	if (host[0] == '[') {
		if (len < 2 || host[len - 1] != ']')
			return -1;
		memcpy(buf, host + 1, len - 2);
		buf[len - 2] = '\0';
		/* A zone id ("%25eth0") does not change the class. */
		buf[strcspn(buf, "%")] = '\0';
		if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		return 0;
	}
	memcpy(buf, host, len + 1);
	if (len > 1 && buf[len - 1] == '.')
		buf[len - 1] = '\0';
	/* glibc's inet_aton ignores whatever follows a space: keep it out. */
	if (buf[strspn(buf, "0123456789abcdefABCDEFxX.")] != '\0' ||
	    inet_aton(buf, &sin->sin_addr) == 0)
		return -1;
	sin->sin_family = AF_INET;
	return 0;
}

/* "localhost" and "*.localhost" (RFC 6761), with or without a final dot. */
static bool
host_is_localhost(const char *host)
{
	size_t len = strlen(host), n = sizeof "localhost" - 1;

	if (len > 0 && host[len - 1] == '.')
		len--;
	if (len < n || strncasecmp(host + len - n, "localhost", n) != 0)
		return false;
	return len == n || host[len - n - 1] == '.';
}

static bool
loopback_allowed(const struct netguard *g)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin6.sin6_addr = in6addr_loopback;
	return netguard_check(g, (struct sockaddr *)&sin) == NULL ||
	       netguard_check(g, (struct sockaddr *)&sin6) == NULL;
}

static bool
has_http_scheme(const char *url)
{
	return strncasecmp(url, "http://", 7) == 0 ||
	       strncasecmp(url, "https://", 8) == 0;
}

/* The canonical spelling: "127.0.0.1" for "2130706433". */
static void
format_address(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const void *a;

	if (ss->ss_family == AF_INET)
		a = &((const struct sockaddr_in *)ss)->sin_addr;
	else
		a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
	if (inet_ntop(ss->ss_family, a, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
}

static const char *
refused_message(const char *what, const char *why, char *buf, size_t len)
{
	if (buf == NULL || len == 0)
		return "points at an address that delivery.allow_networks "
		       "does not allow";
	snprintf(buf, len,
		 "points at %s (%s), which delivery.allow_networks does not "
		 "allow",
		 what, why);
	return buf;
}

const char *
netguard_check_url(const struct netguard *g, const char *url,
		   bool require_https, char *buf, size_t len)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *part = NULL;
	struct sockaddr_storage ss;
	const char *msg = NULL, *why;
	CURLUcode rc;

	if (u == NULL)
		fatal("out of memory parsing a URL");
	rc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (rc != CURLUE_OK) {
		/* Judge the scheme first: "ftp://" has no host either. */
		if (!has_http_scheme(url) || rc == CURLUE_UNSUPPORTED_SCHEME)
			msg = "must be an http or https URL";
		else if (rc == CURLUE_NO_HOST)
			msg = "has no host";
		else
			msg = "is not a valid URL";
		goto out;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
		msg = "must be an http or https URL";
		goto out;
	}
	if (require_https && strcmp(scheme, "https") != 0) {
		msg = "must use https (delivery.require_https)";
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    *host == '\0') {
		msg = "has no host";
		goto out;
	}
	/* Even an empty user ("https://@host/") is refused: no userinfo. */
	if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PASSWORD, &part, 0) == CURLUE_OK) {
		msg = "must not carry credentials";
		goto out;
	}
	if (host_address(host, &ss) == 0) {
		why = netguard_check(g, (struct sockaddr *)&ss);
		if (why != NULL) {
			char addr[INET6_ADDRSTRLEN];

			format_address(&ss, addr, sizeof addr);
			msg = refused_message(addr, why, buf, len);
		}
	} else if (host_is_localhost(host) && !loopback_allowed(g)) {
		msg = refused_message(host, "loopback", buf, len);
	}
out:
	curl_free(part);
	curl_free(host);
	curl_free(scheme);
	curl_url_cleanup(u);
	return msg;
}
