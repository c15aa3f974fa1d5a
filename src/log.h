/*
 * log.h - log lines on stderr, in a form journald understands: text lines
 * prefixed with the syslog priority ("<3>") when stderr is the journal,
 * timestamped lines on a terminal or file, or one JSON object a line.
 * Never pass a secret, a token or a signature to these functions.
 */
#ifndef LP_LOG_H
#define LP_LOG_H

enum log_level { LP_LOG_ERROR, LP_LOG_WARN, LP_LOG_INFO, LP_LOG_DEBUG };
enum log_format { LP_LOG_TEXT, LP_LOG_JSON };

void log_init(const char *progname);
void log_configure(enum log_level, enum log_format);
int log_level_parse(const char *); /* -1 if unknown */
enum log_level log_get_level(void);

void log_msg(enum log_level, const char *, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LP_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LP_LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LP_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                         \
	do {                                                                   \
		if (log_get_level() >= LP_LOG_DEBUG)                           \
			log_msg(LP_LOG_DEBUG, __VA_ARGS__);                    \
	} while (0)

#endif
