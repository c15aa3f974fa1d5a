/*
 * log.c - log lines on stderr.  When stderr is the journal (systemd sets
 * JOURNAL_STREAM to its device and inode), text lines carry a "<N>"
 * priority prefix and no timestamp, since journald adds both; elsewhere a
 * line starts with an RFC 3339 time and the level.  format json writes
 * one object a line for log shippers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "util.h"

static enum log_level cur_level = LP_LOG_INFO;
static enum log_format cur_format = LP_LOG_TEXT;
static const char *prog = "linkpulse";
static bool to_journal;

static const struct {
	const char *name;
	int syslog_prio;
} levels[] = {
    [LP_LOG_ERROR] = {"error", 3},
    [LP_LOG_WARN] = {"warn", 4},
    [LP_LOG_INFO] = {"info", 6},
    [LP_LOG_DEBUG] = {"debug", 7},
};

/* True when stderr is the stream systemd named in JOURNAL_STREAM. */
static bool
stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) != 0)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void
log_init(const char *progname)
{
	prog = progname;
	to_journal = stderr_is_journal();
}

void
log_configure(enum log_level level, enum log_format format)
{
	cur_level = level;
	cur_format = format;
}

enum log_level
log_get_level(void)
{
	return cur_level;
}

int
log_level_parse(const char *s)
{
	for (size_t i = 0; i < nitems(levels); i++) {
		if (strcmp(s, levels[i].name) == 0)
			return (int)i;
	}
	if (strcmp(s, "warning") == 0)
		return LP_LOG_WARN;
	return -1;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char ts[40];
	va_list ap;
	char *msg;

	if (level > cur_level)
		return;
	va_start(ap, fmt);
	msg = xvprintf(fmt, ap);
	va_end(ap);

	if (cur_format == LP_LOG_JSON) {
		json_t *o;
		char *line;

		rfc3339_now(ts, sizeof ts);
		o = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts, "level",
			      levels[level].name, "program", prog, "msg", msg);
		line = o ? json_dumps(o, JSON_COMPACT) : NULL;
		if (line != NULL)
			fprintf(stderr, "%s\n", line);
		free(line);
		json_decref(o);
	} else if (to_journal) {
		fprintf(stderr, "<%d>%s\n", levels[level].syslog_prio, msg);
	} else {
		rfc3339_now(ts, sizeof ts);
		fprintf(stderr, "%s %s %s[%d]: %s\n", ts, levels[level].name,
			prog, (int)getpid(), msg);
	}
	free(msg);
}
