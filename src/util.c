/*
 * util.c - allocation wrappers, string lists, duration and size parsing,
 * hashing, constant-time comparison, randomness and clocks.  Called from
 * every module; calls only libc and OpenSSL's digest.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/sha.h>

#include "util.h"

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		fatal("out of memory (%zu bytes)", n);
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		fatal("out of memory (%zu x %zu bytes)", n, size);
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		fatal("out of memory (%zu bytes)", n);
	return p;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
xvprintf(const char *fmt, va_list ap)
{
	char *p;

	if (vasprintf(&p, fmt, ap) < 0)
		fatal("out of memory formatting a string");
	return p;
}

char *
xprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = xvprintf(fmt, ap);
	va_end(ap);
	return p;
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	fputs("fatal: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void
strlist_add(struct strlist *l, const char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	l->v[l->n++] = xstrdup(s);
}

void
strlist_addf(struct strlist *l, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvprintf(fmt, ap);
	va_end(ap);
	strlist_add(l, s);
	free(s);
}

void
strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/* Reads the digits at *sp into *out; -1 on none or on overflow. */
static int
parse_uint(const char **sp, uint64_t *out)
{
	const char *s = *sp;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*sp = s;
	*out = v;
	return 0;
}

static const struct {
	const char *unit;
	int64_t ms;
} duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
};

int
parse_duration_ms(const char *s, int64_t *out)
{
	int64_t total = 0;

	if (strcmp(s, "0") == 0) {
		*out = 0;
		return 0;
	}
	if (*s == '\0')
		return -1;
	while (*s != '\0') {
		uint64_t v;
		size_t i;

		if (parse_uint(&s, &v) != 0)
			return -1;
		for (i = 0; i < nitems(duration_units); i++) {
			size_t ulen = strlen(duration_units[i].unit);

			/* "m" must not take the "m" of "ms". */
			if (strncmp(s, duration_units[i].unit, ulen) == 0 &&
			    !(ulen == 1 && s[0] == 'm' && s[1] == 's'))
				break;
		}
		if (i == nitems(duration_units))
			return -1;
		s += strlen(duration_units[i].unit);
		if (v > (uint64_t)(INT64_MAX - total) /
			    (uint64_t)duration_units[i].ms)
			return -1;
		total += (int64_t)v * duration_units[i].ms;
	}
	*out = total;
	return 0;
}

void
format_duration(int64_t ms, char *buf, size_t len)
{
	size_t off = 0;

	if (ms == 0) {
		snprintf(buf, len, "0");
		return;
	}
	buf[0] = '\0';
	for (size_t i = nitems(duration_units); i-- > 0 && off < len;) {
		int64_t n = ms / duration_units[i].ms;

		if (n == 0)
			continue;
		ms -= n * duration_units[i].ms;
		off += (size_t)snprintf(buf + off, len - off, "%lld%s",
					(long long)n, duration_units[i].unit);
	}
}

static const struct {
	const char *unit;
	uint64_t mult;
} size_units[] = {
    {"B", 1},	  {"KiB", 1ULL << 10}, {"MiB", 1ULL << 20}, {"GiB", 1ULL << 30},
    {"KB", 1000}, {"MB", 1000000},     {"GB", 1000000000},  {"kB", 1000},
};

int
parse_size(const char *s, uint64_t *out)
{
	uint64_t v;

	if (parse_uint(&s, &v) != 0)
		return -1;
	if (*s == '\0') {
		*out = v;
		return 0;
	}
	for (size_t i = 0; i < nitems(size_units); i++) {
		if (strcmp(s, size_units[i].unit) != 0)
			continue;
		if (v > UINT64_MAX / size_units[i].mult)
			return -1;
		*out = v * size_units[i].mult;
		return 0;
	}
	return -1;
}

size_t
levenshtein(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t *row = xcalloc(lb + 1, sizeof *row);
	size_t d;

	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	d = row[lb];
	free(row);
	return d;
}

bool
uuid_valid(const char *s)
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

	if (strlen(s) != sizeof shape - 1)
		return false;
	for (size_t i = 0; shape[i] != '\0'; i++) {
		char c = s[i];
		bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			   (c >= 'A' && c <= 'F');

		if (shape[i] == '-' ? c != '-' : !hex)
			return false;
	}
	return true;
}

bool
ct_memeq(const void *a, const void *b, size_t len)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char diff = 0;

	for (size_t i = 0; i < len; i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}

void
sha256_hex(const void *data, size_t len, char out[SHA256_HEX_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(data, len, md);
	for (size_t i = 0; i < sizeof md; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[SHA256_HEX_LEN] = '\0';
}

void
random_bytes(void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fatal("getrandom: %s", strerror(errno));
		}
		p += n;
		len -= (size_t)n;
	}
}

char *
random_base62(size_t n)
{
	static const char alphabet[] = "0123456789"
				       "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "abcdefghijklmnopqrstuvwxyz";
	char *s = xmalloc(n + 1);
	size_t i = 0;

	/* Rejection sampling keeps every character equally likely. */
	while (i < n) {
		unsigned char buf[64];

		random_bytes(buf, sizeof buf);
		for (size_t j = 0; j < sizeof buf && i < n; j++) {
			if (buf[j] < 248)
				s[i++] = alphabet[buf[j] % 62];
		}
	}
	s[n] = '\0';
	return s;
}

void
timer_after(struct event *ev, int64_t ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	event_add(ev, &tv);
}

int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double
mono_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
rfc3339_ms(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	long frac = (long)(ms - (int64_t)t * 1000);
	struct tm tm;
	char tmp[32];

	gmtime_r(&t, &tm);
	strftime(tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03ldZ", tmp, frac);
}

void
rfc3339_now(char *buf, size_t len)
{
	rfc3339_ms(wall_ms(), buf, len);
}

size_t
utf8_length(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

bool
slug_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 2 || n > 63 || s[0] == '-')
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '-'))
			return false;
	return true;
}

static int
digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/*
 * RFC 3339 date-time, checked field by field so that PostgreSQL accepts
 * whatever passes; written to out with "T" and "Z" upper-cased.
 */
bool
rfc3339_valid(const char *s, char *out, size_t len)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30,
				    31, 31, 30, 31, 30, 31};
	int y, mo, d;
	const char *p;

	if (strlen(s) < 20 || strlen(s) >= len || s[4] != '-' || s[7] != '-' ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' ||
	    s[16] != ':')
		return false;
	y = digits(s, 4);
	mo = digits(s + 5, 2);
	d = digits(s + 8, 2);
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 &&
	     !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)))
		return false;
	if (digits(s + 11, 2) < 0 || digits(s + 11, 2) > 23 ||
	    digits(s + 14, 2) < 0 || digits(s + 14, 2) > 59 ||
	    digits(s + 17, 2) < 0 || digits(s + 17, 2) > 59)
		return false;
	p = s + 19;
	if (*p == '.') {
		int n = 0;

		for (p++; *p >= '0' && *p <= '9'; p++)
			n++;
		if (n == 0 || n > 9)
			return false;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		if (digits(p + 1, 2) < 0 || digits(p + 1, 2) > 23 ||
		    p[3] != ':' || digits(p + 4, 2) < 0 ||
		    digits(p + 4, 2) > 59)
			return false;
		p += 6;
	} else {
		return false;
	}
	if (*p != '\0')
		return false;
	snprintf(out, len, "%s", s);
	out[10] = 'T';
	if (out[strlen(out) - 1] == 'z')
		out[strlen(out) - 1] = 'Z';
	return true;
}
