/*
 * Unit tests for netguard.c: every refused class of IPv4 and IPv6, the
 * IPv6 forms that embed IPv4, the allow list, CIDR validation and the
 * up-front URL check with odd spellings of loopback.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "netguard.h"
#include "ut.h"

/* The reason for an address given as text, or NULL if allowed. */
static const char *
check(const struct netguard *g, const char *addr)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};

	if (inet_pton(AF_INET, addr, &sin.sin_addr) == 1)
		return netguard_check(g, (struct sockaddr *)&sin);
	if (inet_pton(AF_INET6, addr, &sin6.sin6_addr) == 1)
		return netguard_check(g, (struct sockaddr *)&sin6);
	fprintf(stderr, "bad test address %s\n", addr);
	return "bad test address";
}

static struct netguard *
guard(char *const *allow, int n)
{
	struct strlist errs = {0};
	struct netguard *g = netguard_new(allow, n, &errs);

	CHECK(g != NULL);
	CHECK(errs.n == 0);
	strlist_free(&errs);
	return g;
}

static void
test_ipv4_refused(void)
{
	struct netguard *g = guard(NULL, 0);

	CHECK_STR(check(g, "0.0.0.0"), "unspecified or this network");
	CHECK_STR(check(g, "0.255.1.2"), "unspecified or this network");
	CHECK_STR(check(g, "127.0.0.1"), "loopback");
	CHECK_STR(check(g, "127.255.255.254"), "loopback");
	CHECK_STR(check(g, "10.0.0.1"), "private network");
	CHECK_STR(check(g, "10.255.255.255"), "private network");
	CHECK_STR(check(g, "172.16.0.1"), "private network");
	CHECK_STR(check(g, "172.31.255.255"), "private network");
	CHECK_STR(check(g, "192.168.1.1"), "private network");
	CHECK_STR(check(g, "169.254.169.254"), "link-local (cloud metadata)");
	CHECK_STR(check(g, "100.64.0.1"), "carrier-grade NAT");
	CHECK_STR(check(g, "100.127.255.255"), "carrier-grade NAT");
	CHECK_STR(check(g, "224.0.0.1"), "multicast");
	CHECK_STR(check(g, "239.255.255.250"), "multicast");
	CHECK_STR(check(g, "240.0.0.1"), "reserved");
	CHECK_STR(check(g, "255.255.255.254"), "reserved");
	CHECK_STR(check(g, "255.255.255.255"), "broadcast");
	CHECK_STR(check(g, "192.0.0.8"),
		  "reserved for documentation or benchmarks");
	CHECK_STR(check(g, "192.0.2.1"),
		  "reserved for documentation or benchmarks");
	CHECK_STR(check(g, "198.18.0.1"),
		  "reserved for documentation or benchmarks");
	CHECK_STR(check(g, "198.19.255.255"),
		  "reserved for documentation or benchmarks");
	CHECK_STR(check(g, "198.51.100.7"),
		  "reserved for documentation or benchmarks");
	CHECK_STR(check(g, "203.0.113.9"),
		  "reserved for documentation or benchmarks");
	netguard_free(g);
}

static void
test_ipv4_allowed(void)
{
	struct netguard *g = guard(NULL, 0);

	CHECK(check(g, "8.8.8.8") == NULL);
	CHECK(check(g, "1.1.1.1") == NULL);
	CHECK(check(g, "93.184.216.34") == NULL);
	/* Just outside the refused networks. */
	CHECK(check(g, "1.0.0.0") == NULL);
	CHECK(check(g, "11.0.0.0") == NULL);
	CHECK(check(g, "126.255.255.255") == NULL);
	CHECK(check(g, "128.0.0.0") == NULL);
	CHECK(check(g, "172.15.255.255") == NULL);
	CHECK(check(g, "172.32.0.0") == NULL);
	CHECK(check(g, "192.167.255.255") == NULL);
	CHECK(check(g, "192.169.0.0") == NULL);
	CHECK(check(g, "169.253.255.255") == NULL);
	CHECK(check(g, "100.63.255.255") == NULL);
	CHECK(check(g, "100.128.0.0") == NULL);
	CHECK(check(g, "223.255.255.255") == NULL);
	CHECK(check(g, "192.0.1.1") == NULL);
	CHECK(check(g, "198.17.255.255") == NULL);
	CHECK(check(g, "198.20.0.0") == NULL);
	CHECK(check(g, "203.0.114.1") == NULL);
	netguard_free(g);
}

static void
test_ipv6_refused(void)
{
	struct netguard *g = guard(NULL, 0);

	CHECK_STR(check(g, "::1"), "loopback");
	CHECK_STR(check(g, "::"), "unspecified");
	CHECK_STR(check(g, "fe80::1"), "link-local");
	CHECK_STR(check(g, "febf:ffff::1"), "link-local");
	CHECK_STR(check(g, "fc00::1"), "unique local");
	CHECK_STR(check(g, "fd12:3456:789a::1"), "unique local");
	CHECK_STR(check(g, "ff02::1"), "multicast");
	CHECK_STR(check(g, "ff0e::101"), "multicast");
	netguard_free(g);
}

static void
test_ipv6_embedded_ipv4(void)
{
	struct netguard *g = guard(NULL, 0);

	CHECK_STR(check(g, "::ffff:127.0.0.1"), "IPv4-mapped loopback");
	CHECK_STR(check(g, "::ffff:7f00:1"), "IPv4-mapped loopback");
	CHECK_STR(check(g, "::ffff:10.1.2.3"), "IPv4-mapped private network");
	CHECK_STR(check(g, "::ffff:169.254.169.254"),
		  "IPv4-mapped link-local (cloud metadata)");
	CHECK_STR(check(g, "::ffff:0.0.0.0"),
		  "IPv4-mapped unspecified or this network");
	CHECK_STR(check(g, "::ffff:255.255.255.255"), "IPv4-mapped broadcast");
	CHECK(check(g, "::ffff:8.8.8.8") == NULL);
	CHECK_STR(check(g, "::127.0.0.1"), "IPv4-compatible loopback");
	CHECK_STR(check(g, "::192.168.0.1"), "IPv4-compatible private network");
	CHECK_STR(check(g, "::0.0.0.2"),
		  "IPv4-compatible unspecified or this network");
	CHECK(check(g, "::8.8.8.8") == NULL);
	CHECK_STR(check(g, "64:ff9b::127.0.0.1"), "NAT64 loopback");
	CHECK_STR(check(g, "64:ff9b::a9fe:a9fe"),
		  "NAT64 link-local (cloud metadata)");
	CHECK_STR(check(g, "64:ff9b::100.64.0.1"), "NAT64 carrier-grade NAT");
	CHECK(check(g, "64:ff9b::8.8.8.8") == NULL);
	CHECK_STR(check(g, "2002:7f00:1::"), "6to4 loopback");
	CHECK_STR(check(g, "2002:c0a8:101::1"), "6to4 private network");
	CHECK_STR(check(g, "2002:e000:1::"), "6to4 multicast");
	CHECK(check(g, "2002:808:808::1") == NULL);
	netguard_free(g);
}

static void
test_ipv6_allowed(void)
{
	struct netguard *g = guard(NULL, 0);

	CHECK(check(g, "2606:4700::1111") == NULL);
	CHECK(check(g, "2001:4860:4860::8888") == NULL);
	CHECK(check(g, "2a00:1450:4001::1") == NULL);
	/* Near the refused prefixes but outside them. */
	CHECK(check(g, "fbff::1") == NULL);
	CHECK(check(g, "fe00::1") == NULL);
	CHECK(check(g, "64:ff9c::7f00:1") == NULL);
	CHECK(check(g, "2003::1") == NULL);
	CHECK(check(g, "::1:0:0:1") == NULL);
	netguard_free(g);
}

static void
test_not_ip(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	CHECK_STR(netguard_check(NULL, (struct sockaddr *)&sun),
		  "not an IP address");
	CHECK_STR(netguard_check(NULL, NULL), "not an IP address");
	/* A NULL policy refuses by default. */
	CHECK_STR(check(NULL, "127.0.0.1"), "loopback");
	CHECK(check(NULL, "8.8.8.8") == NULL);
}

static void
test_allow_list(void)
{
	char *allow[] = {"127.0.0.1/32", "10.1.0.0/16", "fd00:1::/32"};
	struct netguard *g = guard(allow, 3);

	CHECK(check(g, "127.0.0.1") == NULL);
	CHECK_STR(check(g, "127.0.0.2"), "loopback");
	CHECK(check(g, "10.1.200.3") == NULL);
	CHECK_STR(check(g, "10.2.0.1"), "private network");
	CHECK(check(g, "fd00:1:ffff::5") == NULL);
	CHECK_STR(check(g, "fd00:2::5"), "unique local");
	/* The kernel sends ::ffff:127.0.0.1 to 127.0.0.1: allowed alike. */
	CHECK(check(g, "::ffff:127.0.0.1") == NULL);
	CHECK_STR(check(g, "::ffff:127.0.0.2"), "IPv4-mapped loopback");
	/* An IPv4 entry does not open IPv6 loopback. */
	CHECK_STR(check(g, "::1"), "loopback");
	netguard_free(g);
}

static void
test_allow_list_v6(void)
{
	char *allow[] = {"::1/128", "169.254.169.254"};
	struct netguard *g = guard(allow, 2);

	CHECK(check(g, "::1") == NULL);
	CHECK_STR(check(g, "127.0.0.1"), "loopback");
	CHECK_STR(check(g, "::2"),
		  "IPv4-compatible unspecified or this network");
	/* A bare address is a /32. */
	CHECK(check(g, "169.254.169.254") == NULL);
	CHECK_STR(check(g, "169.254.169.253"), "link-local (cloud metadata)");
	netguard_free(g);
}

static void
test_allow_list_errors(void)
{
	char *allow[] = {"127.0.0.1/32", "nope", "10.0.0.0/33"};
	struct strlist errs = {0};

	CHECK(netguard_new(allow, 3, &errs) == NULL);
	CHECK(errs.n == 2);
	CHECK(errs.n == 2 && strstr(errs.v[0], "\"nope\"") != NULL);
	CHECK(errs.n == 2 && strstr(errs.v[1], "\"10.0.0.0/33\"") != NULL);
	strlist_free(&errs);
}

static void
test_cidr_valid(void)
{
	CHECK(netguard_cidr_valid("127.0.0.1/32"));
	CHECK(netguard_cidr_valid("10.0.0.0/8"));
	CHECK(netguard_cidr_valid("0.0.0.0/0"));
	CHECK(netguard_cidr_valid("10.1.2.3/8")); /* host bits are masked */
	CHECK(netguard_cidr_valid("192.168.1.1"));
	CHECK(netguard_cidr_valid("::1/128"));
	CHECK(netguard_cidr_valid("::1"));
	CHECK(netguard_cidr_valid("fd00::/8"));
	CHECK(netguard_cidr_valid("::/0"));
	CHECK(netguard_cidr_valid("::ffff:127.0.0.1/128"));
	CHECK(!netguard_cidr_valid(""));
	CHECK(!netguard_cidr_valid(NULL));
	CHECK(!netguard_cidr_valid("/8"));
	CHECK(!netguard_cidr_valid("10.0.0.0/"));
	CHECK(!netguard_cidr_valid("10.0.0.0/33"));
	CHECK(!netguard_cidr_valid("10.0.0.0/-1"));
	CHECK(!netguard_cidr_valid("10.0.0.0/+8"));
	CHECK(!netguard_cidr_valid("10.0.0.0/ 8"));
	CHECK(!netguard_cidr_valid("10.0.0.0/8x"));
	CHECK(!netguard_cidr_valid("10.0.0.0/0x8"));
	CHECK(!netguard_cidr_valid("10.0.0.0/8/8"));
	CHECK(!netguard_cidr_valid("10.0.0.0/0008"));
	CHECK(!netguard_cidr_valid("::1/129"));
	CHECK(!netguard_cidr_valid("10.0.0"));
	CHECK(!netguard_cidr_valid("0x7f.1"));
	CHECK(!netguard_cidr_valid("2130706433"));
	CHECK(!netguard_cidr_valid("256.0.0.1/32"));
	CHECK(!netguard_cidr_valid("localhost"));
	CHECK(!netguard_cidr_valid("fe80::1%eth0/64"));
	CHECK(!netguard_cidr_valid(" 10.0.0.0/8"));
}

/* The URL check with no allow list and no https requirement. */
static const char *
url(const struct netguard *g, const char *u, char *buf, size_t len)
{
	return netguard_check_url(g, u, false, buf, len);
}

static void
test_url_shape(void)
{
	struct netguard *g = guard(NULL, 0);
	char buf[256];

	CHECK(url(g, "https://example.com/hook", buf, sizeof buf) == NULL);
	CHECK(url(g, "http://example.com:8080/a?b=c", buf, sizeof buf) == NULL);
	CHECK(url(g, "HTTPS://Example.COM/hook", buf, sizeof buf) == NULL);
	CHECK_STR(url(g, "ftp://example.com/x", buf, sizeof buf),
		  "must be an http or https URL");
	CHECK_STR(url(g, "file:///etc/passwd", buf, sizeof buf),
		  "must be an http or https URL");
	CHECK_STR(url(g, "gopher://example.com/", buf, sizeof buf),
		  "must be an http or https URL");
	CHECK_STR(url(g, "example.com/hook", buf, sizeof buf),
		  "must be an http or https URL");
	CHECK_STR(url(g, "", buf, sizeof buf), "must be an http or https URL");
	CHECK_STR(url(g, "http://", buf, sizeof buf), "has no host");
	CHECK_STR(url(g, "https:///", buf, sizeof buf), "has no host");
	CHECK_STR(url(g, "http://:8080/x", buf, sizeof buf), "has no host");
	CHECK_STR(url(g, "https://user:pass@example.com/", buf, sizeof buf),
		  "must not carry credentials");
	CHECK_STR(url(g, "https://user@example.com/", buf, sizeof buf),
		  "must not carry credentials");
	CHECK_STR(url(g, "https://:pass@example.com/", buf, sizeof buf),
		  "must not carry credentials");
	CHECK_STR(netguard_check_url(g, "http://example.com/hook", true, buf,
				     sizeof buf),
		  "must use https (delivery.require_https)");
	CHECK(netguard_check_url(g, "https://example.com/hook", true, buf,
				 sizeof buf) == NULL);
	CHECK_STR(url(g, "http://exa mple.com/", buf, sizeof buf),
		  "is not a valid URL");
	netguard_free(g);
}

static void
test_url_literal_addresses(void)
{
	static const char *const loopbacks[] = {
	    "http://127.0.0.1/",
	    "http://2130706433/",
	    "http://0x7f.1/",
	    "http://0177.0.0.1/",
	    "http://127.1/",
	    "http://0x7f000001/",
	    "http://017700000001/",
	    "http://127.0.0.1./",
	    "http://[::ffff:127.0.0.1]/",
	    "http://[::1]:8080/x",
	    "http://[0:0:0:0:0:0:0:1]/",
	    "https://%31%32%37.0.0.1/",
	    "http://[::127.0.0.1]/",
	    "http://[64:ff9b::7f00:1]/",
	    "http://[2002:7f00:1::]/",
	};
	struct netguard *g = guard(NULL, 0);
	char buf[256];

	for (size_t i = 0; i < nitems(loopbacks); i++) {
		const char *msg = url(g, loopbacks[i], buf, sizeof buf);

		if (msg == NULL || strstr(msg, "loopback") == NULL)
			fprintf(stderr, "%s: %s\n", loopbacks[i],
				msg ? msg : "(accepted)");
		CHECK(msg != NULL && strstr(msg, "loopback") != NULL);
	}
	CHECK_STR(url(g, "http://2130706433/", buf, sizeof buf),
		  "points at 127.0.0.1 (loopback), which "
		  "delivery.allow_networks does not allow");
	CHECK_STR(url(g, "http://[::1]:8080/x", buf, sizeof buf),
		  "points at ::1 (loopback), which delivery.allow_networks "
		  "does not allow");
	CHECK_STR(
	    url(g, "http://169.254.169.254/latest/meta-data", buf, sizeof buf),
	    "points at 169.254.169.254 (link-local (cloud metadata)), "
	    "which delivery.allow_networks does not allow");
	CHECK_STR(url(g, "http://[fe80::1%25eth0]/", buf, sizeof buf),
		  "points at fe80::1 (link-local), which "
		  "delivery.allow_networks does not allow");
	CHECK(url(g, "http://0/", buf, sizeof buf) != NULL);
	CHECK(url(g, "http://10.0.0.1/", buf, sizeof buf) != NULL);
	CHECK(url(g, "http://[fd00::1]/", buf, sizeof buf) != NULL);
	CHECK(url(g, "http://8.8.8.8/", buf, sizeof buf) == NULL);
	CHECK(url(g, "http://134744072/", buf, sizeof buf) == NULL);
	CHECK(url(g, "https://[2606:4700::1111]/", buf, sizeof buf) == NULL);
	/* Not an address at all: a name, judged when it is resolved. */
	CHECK(url(g, "http://1.2.3.4.5/", buf, sizeof buf) == NULL);
	CHECK(url(g, "http://127.0.0.1.nip.io/", buf, sizeof buf) == NULL);
	/* Without room for the message, a static one. */
	CHECK(url(g, "http://127.0.0.1/", NULL, 0) != NULL);
	netguard_free(g);
}

static void
test_url_localhost(void)
{
	char *allow[] = {"127.0.0.1/32"};
	struct netguard *g = guard(NULL, 0), *open = guard(allow, 1);
	char buf[256];

	CHECK_STR(url(g, "http://localhost/", buf, sizeof buf),
		  "points at localhost (loopback), which "
		  "delivery.allow_networks does not allow");
	CHECK(url(g, "http://LocalHost:8080/", buf, sizeof buf) != NULL);
	CHECK(url(g, "http://localhost./", buf, sizeof buf) != NULL);
	CHECK(url(g, "http://api.localhost/", buf, sizeof buf) != NULL);
	CHECK(url(g, "http://notlocalhost/", buf, sizeof buf) == NULL);
	CHECK(url(g, "http://localhost.example.com/", buf, sizeof buf) == NULL);
	CHECK(url(open, "http://localhost/", buf, sizeof buf) == NULL);
	CHECK(url(open, "http://127.0.0.1:9/x", buf, sizeof buf) == NULL);
	CHECK(url(open, "http://2130706433:9/x", buf, sizeof buf) == NULL);
	CHECK(url(open, "http://[::ffff:127.0.0.1]:9/x", buf, sizeof buf) ==
	      NULL);
	CHECK(url(open, "http://127.0.0.2:9/x", buf, sizeof buf) != NULL);
	CHECK(url(open, "http://[::1]:9/x", buf, sizeof buf) != NULL);
	netguard_free(g);
	netguard_free(open);
}

UT_MAIN("netguard", UT(test_ipv4_refused), UT(test_ipv4_allowed),
	UT(test_ipv6_refused), UT(test_ipv6_embedded_ipv4),
	UT(test_ipv6_allowed), UT(test_not_ip), UT(test_allow_list),
	UT(test_allow_list_v6), UT(test_allow_list_errors), UT(test_cidr_valid),
	UT(test_url_shape), UT(test_url_literal_addresses),
	UT(test_url_localhost))
