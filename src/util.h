/*
 * util.h - small helpers every module uses: allocation that never returns
 * NULL, string lists, duration and size parsing, hashing, constant-time
 * comparison, randomness and clocks.  Pure code: no I/O but the kernel's
 * random source and clocks.
 */
#ifndef LP_UTIL_H
#define LP_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xrealloc(void *, size_t);
char *xstrdup(const char *);
char *xstrndup(const char *, size_t);
char *xprintf(const char *, ...) __attribute__((format(printf, 1, 2)));
char *xvprintf(const char *, va_list);

/* Ends the process after printing to stderr: for impossible states only. */
void fatal(const char *, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* A growable list of owned strings. */
struct strlist {
	char **v;
	size_t n;
	size_t cap;
};
void strlist_add(struct strlist *, const char *);
void strlist_addf(struct strlist *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
void strlist_free(struct strlist *);

/*
 * Durations: an integer followed by a unit, "250ms", "15s", "5m", "2h",
 * "7d", or several of them ("1h30m"); "0" alone is zero.  Sizes: an
 * integer with an optional unit, "512", "64KiB", "1MiB", "2GiB" (binary),
 * "64KB", "1MB" (decimal), "B".  Both return 0 on success and -1 on a
 * malformed, negative or overflowing value.
 */
int parse_duration_ms(const char *, int64_t *);
int parse_size(const char *, uint64_t *);
/* Formats a duration the way parse_duration_ms reads it back ("1h30m"). */
void format_duration(int64_t ms, char *buf, size_t len);

size_t levenshtein(const char *, const char *);
/* Characters of a UTF-8 string (continuation bytes do not count). */
size_t utf8_length(const char *);
/* The workspaces.slug rule of 0001_init.sql: 2-63 of a-z 0-9 '-', not
 * starting with '-'. */
bool slug_valid(const char *);

/* A UUID in its canonical 8-4-4-4-12 hexadecimal form. */
bool uuid_valid(const char *);

/* Constant-time: the time taken depends on len, never on the contents. */
bool ct_memeq(const void *, const void *, size_t len);

#define SHA256_HEX_LEN 64
void sha256_hex(const void *, size_t, char out[SHA256_HEX_LEN + 1]);

/* Fills from the kernel's random source; fatal if it fails. */
void random_bytes(void *, size_t);
/* n random characters from [0-9A-Za-z], in a new string. */
char *random_base62(size_t n);

int64_t mono_ms(void); /* monotonic clock, for intervals */
/* Adds a libevent timer (or any event) to fire in ms (negative: now). */
struct event;
void timer_after(struct event *, int64_t ms);
double mono_sec(void); /* same, in seconds with sub-ms precision */
int64_t wall_ms(void); /* Unix time in ms */
void rfc3339_now(char *buf, size_t len); /* "2026-01-02T03:04:05.678Z" */
void rfc3339_ms(int64_t unix_ms, char *buf, size_t len);
/*
 * An RFC 3339 date-time, checked field by field so that PostgreSQL
 * accepts whatever passes; copied to out (len bytes) with "T" and "Z"
 * upper-cased.
 */
bool rfc3339_valid(const char *s, char *out, size_t len);

#endif
