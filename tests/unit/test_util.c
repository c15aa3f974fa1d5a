/* Unit tests for util.c: durations, sizes, levenshtein, hashing, random. */
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "ut.h"

static void
test_durations(void)
{
	int64_t ms;

	CHECK(parse_duration_ms("15s", &ms) == 0 && ms == 15000);
	CHECK(parse_duration_ms("5m", &ms) == 0 && ms == 300000);
	CHECK(parse_duration_ms("2h", &ms) == 0 && ms == 7200000);
	CHECK(parse_duration_ms("7d", &ms) == 0 && ms == 604800000);
	CHECK(parse_duration_ms("250ms", &ms) == 0 && ms == 250);
	CHECK(parse_duration_ms("1h30m", &ms) == 0 && ms == 5400000);
	CHECK(parse_duration_ms("0", &ms) == 0 && ms == 0);
	CHECK(parse_duration_ms("0s", &ms) == 0 && ms == 0);
}

static void
test_bad_durations(void)
{
	int64_t ms;

	CHECK(parse_duration_ms("", &ms) == -1);
	CHECK(parse_duration_ms("15", &ms) == -1);
	CHECK(parse_duration_ms("s", &ms) == -1);
	CHECK(parse_duration_ms("-5s", &ms) == -1);
	CHECK(parse_duration_ms("5 s", &ms) == -1);
	CHECK(parse_duration_ms("5w", &ms) == -1);
	CHECK(parse_duration_ms("1.5h", &ms) == -1);
	CHECK(parse_duration_ms("99999999999999999999d", &ms) == -1);
	CHECK(parse_duration_ms("9999999999999999d", &ms) == -1);
}

static void
test_format_duration(void)
{
	char buf[32];
	int64_t ms;

	format_duration(5400000, buf, sizeof buf);
	CHECK_STR(buf, "1h30m");
	format_duration(250, buf, sizeof buf);
	CHECK_STR(buf, "250ms");
	format_duration(0, buf, sizeof buf);
	CHECK_STR(buf, "0");
	format_duration(90061001, buf, sizeof buf);
	CHECK(parse_duration_ms(buf, &ms) == 0 && ms == 90061001);
}

static void
test_sizes(void)
{
	uint64_t n;

	CHECK(parse_size("512", &n) == 0 && n == 512);
	CHECK(parse_size("64KiB", &n) == 0 && n == 65536);
	CHECK(parse_size("1MiB", &n) == 0 && n == 1048576);
	CHECK(parse_size("2GiB", &n) == 0 && n == 2147483648ULL);
	CHECK(parse_size("64KB", &n) == 0 && n == 64000);
	CHECK(parse_size("1MB", &n) == 0 && n == 1000000);
	CHECK(parse_size("10B", &n) == 0 && n == 10);
	CHECK(parse_size("", &n) == -1);
	CHECK(parse_size("KiB", &n) == -1);
	CHECK(parse_size("1 MiB", &n) == -1);
	CHECK(parse_size("1mib", &n) == -1);
	CHECK(parse_size("-1", &n) == -1);
	CHECK(parse_size("99999999999999GiB", &n) == -1);
}

static void
test_levenshtein(void)
{
	CHECK(levenshtein("", "") == 0);
	CHECK(levenshtein("abc", "abc") == 0);
	CHECK(levenshtein("max_bodysize", "max_body_size") == 1);
	CHECK(levenshtein("kitten", "sitting") == 3);
	CHECK(levenshtein("", "abc") == 3);
}

static void
test_uuid_valid(void)
{
	CHECK(uuid_valid("d22f7bf1-83a9-4f3a-9b37-9a3a21b6ac11"));
	CHECK(uuid_valid("D22F7BF1-83A9-4F3A-9B37-9A3A21B6AC11"));
	CHECK(!uuid_valid(""));
	CHECK(!uuid_valid("not-a-uuid"));
	CHECK(!uuid_valid("d22f7bf1-83a9-4f3a-9b37-9a3a21b6ac1"));
	CHECK(!uuid_valid("d22f7bf1-83a9-4f3a-9b37-9a3a21b6ac11x"));
	CHECK(!uuid_valid("d22f7bf1x83a9-4f3a-9b37-9a3a21b6ac11"));
	CHECK(!uuid_valid("g22f7bf1-83a9-4f3a-9b37-9a3a21b6ac11"));
}

static void
test_ct_memeq(void)
{
	CHECK(ct_memeq("abcdef", "abcdef", 6));
	CHECK(!ct_memeq("abcdef", "abcdeg", 6));
	CHECK(!ct_memeq("xbcdef", "abcdef", 6));
	CHECK(ct_memeq("a", "b", 0));
}

static void
test_sha256(void)
{
	char hex[SHA256_HEX_LEN + 1];

	sha256_hex("", 0, hex);
	CHECK_STR(
	    hex,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha256_hex("abc", 3, hex);
	CHECK_STR(
	    hex,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void
test_random_base62(void)
{
	char *a = random_base62(40), *b = random_base62(40);
	int seen[256] = {0};

	CHECK(strlen(a) == 40);
	CHECK(strcmp(a, b) != 0);
	for (const char *p = a; *p != '\0'; p++) {
		CHECK((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z'));
	}
	free(a);
	free(b);
	/* Over many draws every character of the alphabet appears. */
	a = random_base62(20000);
	for (const char *p = a; *p != '\0'; p++)
		seen[(unsigned char)*p]++;
	int distinct = 0;
	for (int i = 0; i < 256; i++)
		distinct += seen[i] > 0;
	CHECK(distinct == 62);
	free(a);
}

static void
test_strlist(void)
{
	struct strlist l = {0};

	for (int i = 0; i < 20; i++)
		strlist_addf(&l, "item %d", i);
	CHECK(l.n == 20);
	CHECK_STR(l.v[0], "item 0");
	CHECK_STR(l.v[19], "item 19");
	strlist_free(&l);
	CHECK(l.n == 0 && l.v == NULL);
}

static void
test_rfc3339(void)
{
	char buf[40];

	rfc3339_now(buf, sizeof buf);
	CHECK(strlen(buf) == 24);
	CHECK(buf[4] == '-' && buf[10] == 'T' && buf[23] == 'Z');
}

static void
test_utf8_length_and_slug(void)
{
	CHECK(utf8_length("") == 0);
	CHECK(utf8_length("caf\xc3\xa9") == 4);
	CHECK(utf8_length("\xe2\x82\xac"
			  "1") == 2);
	CHECK(slug_valid("demo"));
	CHECK(slug_valid("a1-b2"));
	CHECK(!slug_valid("a"));
	CHECK(!slug_valid("-demo"));
	CHECK(!slug_valid("Demo"));
	CHECK(!slug_valid("de_mo"));
}

UT_MAIN("util", UT(test_durations), UT(test_bad_durations),
	UT(test_format_duration), UT(test_sizes), UT(test_levenshtein),
	UT(test_uuid_valid), UT(test_ct_memeq), UT(test_sha256),
	UT(test_random_base62), UT(test_strlist), UT(test_rfc3339),
	UT(test_utf8_length_and_slug))
