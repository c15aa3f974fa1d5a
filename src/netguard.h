/*
 * netguard.h - the outbound address policy (SSRF guard).  By default no
 * webhook may connect to loopback, private (10/8, 172.16/12, 192.168/16),
 * link-local (169.254/16, cloud metadata included), CGNAT (100.64/10),
 * "this network" (0/8), multicast, broadcast and reserved IPv4, nor to IPv6
 * loopback, unspecified, link-local (fe80::/10), unique-local (fc00::/7),
 * multicast, or the IPv4-mapped (::ffff:0:0/96), IPv4-compatible (::/96),
 * NAT64 (64:ff9b::/96) and 6to4 (2002::/16) forms of refused IPv4
 * addresses.  The allow list (CIDRs) opens exceptions.
 *
 * The check is made on the address actually being connected (curl's
 * open-socket callback), so DNS rebinding and odd spellings of a host fail
 * the same way.  The API also refuses, up front, a URL whose host is a
 * literal address in a refused network, in any spelling inet_aton accepts
 * ("2130706433", "0x7f.1", "[::ffff:127.0.0.1]").
 */
#ifndef LP_NETGUARD_H
#define LP_NETGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "util.h"

struct netguard;

/*
 * A policy allowing the given CIDRs ("127.0.0.1/32", "10.1.0.0/16",
 * "::1/128"; a bare address is a /32 or /128).  NULL, with one error per
 * bad CIDR appended to errs, if any is malformed.
 */
struct netguard *netguard_new(char *const *allow, int nallow,
			      struct strlist *errs);
void netguard_free(struct netguard *);
/* Whether s is a well-formed CIDR or address (for the configuration). */
bool netguard_cidr_valid(const char *s);

/*
 * NULL if connecting to addr is allowed, else why not, as a static string
 * naming the class ("loopback", "private network", "link-local", ...).
 */
const char *netguard_check(const struct netguard *, const struct sockaddr *);

/*
 * Checks a webhook URL before it is stored: NULL if acceptable, else a
 * message (static or written into buf) saying what is wrong: not http or
 * https (or not https when require_https), no host, credentials in the
 * URL, or a host that is a literal address in a refused network.
 */
const char *netguard_check_url(const struct netguard *, const char *url,
			       bool require_https, char *buf, size_t len);

#endif
