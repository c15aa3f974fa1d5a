/*
 * ynode.c - YAML node helpers shared by the YAML readers (ynode.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "ynode.h"

/* Values quoted in error messages are cut to this many bytes. */
#define QUOTE_MAX 60

bool
ynode_is_null(const yaml_node_t *n)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE ||
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	s = (const char *)n->data.scalar.value;
	return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	       strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

const char *
ynode_text(const yaml_node_t *n)
{
	const char *s;

	if (n == NULL || n->type != YAML_SCALAR_NODE)
		return NULL;
	s = (const char *)n->data.scalar.value;
	return strlen(s) == n->data.scalar.length ? s : NULL;
}

const char *
ynode_scalar(const yaml_node_t *n)
{
	if (n == NULL || ynode_is_null(n))
		return NULL;
	return ynode_text(n);
}

size_t
ynode_seq_len(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top -
			n->data.sequence.items.start);
}

yaml_node_t *
ynode_seq_item(yaml_document_t *doc, const yaml_node_t *n, size_t i)
{
	return yaml_document_get_node(doc, n->data.sequence.items.start[i]);
}

char *
ynode_describe(const yaml_node_t *n)
{
	const unsigned char *s;
	size_t len, cut;
	char *out, *o;

	switch (n->type) {
	case YAML_MAPPING_NODE:
		return xstrdup("a mapping");
	case YAML_SEQUENCE_NODE:
		if (n->data.sequence.items.start == n->data.sequence.items.top)
			return xstrdup("an empty list");
		return xstrdup("a list");
	case YAML_SCALAR_NODE:
		break;
	default:
		return xstrdup("nothing");
	}
	if (ynode_is_null(n))
		return xstrdup("an empty value");
	s = n->data.scalar.value;
	len = n->data.scalar.length;
	cut = len > QUOTE_MAX ? QUOTE_MAX : len;
	/* Do not split a UTF-8 sequence. */
	while (cut < len && cut > 0 && (s[cut] & 0xc0) == 0x80)
		cut--;
	out = o = xmalloc(cut * 4 + sizeof("''..."));
	*o++ = '\'';
	for (size_t i = 0; i < cut; i++) {
		if (s[i] == '\n')
			o = stpcpy(o, "\\n");
		else if (s[i] < 0x20 || s[i] == 0x7f)
			o += sprintf(o, "\\x%02x", s[i]);
		else
			*o++ = (char)s[i];
	}
	*o++ = '\'';
	if (cut < len)
		o = stpcpy(o, "...");
	*o = '\0';
	return out;
}

int
ynode_bool(const char *s)
{
	static const char *const yes[] = {"true", "yes", "on"};
	static const char *const no[] = {"false", "no", "off"};

	for (size_t i = 0; i < nitems(yes); i++) {
		if (strcmp(s, yes[i]) == 0)
			return 1;
		if (strcmp(s, no[i]) == 0)
			return 0;
	}
	return -1;
}

bool
ynode_int(const char *s, long long *out)
{
	char *end;

	if (!((*s >= '0' && *s <= '9') ||
	      (*s == '-' && s[1] >= '0' && s[1] <= '9')))
		return false;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno == 0 && *end == '\0';
}

void
ynode_error(struct strlist *errs, const char *file, const yaml_mark_t *m,
	    const char *msg)
{
	if (m != NULL)
		strlist_addf(errs, "%s:%zu:%zu: %s", file, m->line + 1,
			     m->column + 1, msg);
	else
		strlist_addf(errs, "%s: %s", file, msg);
}

void
ynode_verror(struct strlist *errs, const char *file, const yaml_mark_t *m,
	     const char *path, const char *fmt, va_list ap)
{
	char *msg = xvprintf(fmt, ap), *line;

	line = path != NULL ? xprintf("%s: %s", path, msg) : msg;
	ynode_error(errs, file, m, line);
	if (line != msg)
		free(line);
	free(msg);
}

static void syntax_error_at(struct strlist *errs, const char *file,
			    const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
syntax_error_at(struct strlist *errs, const char *file, const yaml_mark_t *m,
		const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ynode_verror(errs, file, m, NULL, fmt, ap);
	va_end(ap);
}

void
ynode_syntax_error(struct strlist *errs, const char *file,
		   const yaml_parser_t *parser, const char *text, size_t len)
{
	const char *problem = parser->problem ? parser->problem : "bad YAML";
	yaml_mark_t m = parser->problem_mark;
	size_t i, at;

	if (parser->error == YAML_MEMORY_ERROR)
		fatal("%s: out of memory", file);
	if (parser->error == YAML_READER_ERROR) {
		/* The reader only knows the byte offset. */
		m.line = m.column = 0;
		for (i = 0; i < parser->problem_offset && i < len; i++) {
			if (text[i] == '\n') {
				m.line++;
				m.column = 0;
			} else {
				m.column++;
			}
		}
		if (parser->problem_value >= 0)
			syntax_error_at(errs, file, &m, "%s (byte 0x%02x)",
					problem,
					(unsigned)parser->problem_value);
		else
			syntax_error_at(errs, file, &m, "%s", problem);
		return;
	}

	/* Tabs cannot indent YAML, and libyaml does not say so. */
	for (at = 0, i = 0; i < m.line && at < len; at++)
		if (text[at] == '\n')
			i++;
	while (at < len && text[at] == ' ')
		at++;
	if (at < len && text[at] == '\t') {
		syntax_error_at(errs, file, &m,
				"%s (indent with spaces, not tabs)", problem);
	} else if (parser->context != NULL &&
		   (parser->context_mark.line != m.line ||
		    parser->context_mark.column != m.column)) {
		syntax_error_at(errs, file, &m,
				"%s (%s that starts at line %zu, column %zu)",
				problem, parser->context,
				parser->context_mark.line + 1,
				parser->context_mark.column + 1);
	} else if (parser->context != NULL) {
		syntax_error_at(errs, file, &m, "%s (%s)", problem,
				parser->context);
	} else {
		syntax_error_at(errs, file, &m, "%s", problem);
	}
}

int
read_file_max(const char *path, size_t max, char **out, size_t *outlen)
{
	size_t len = 0, cap = 4096;
	struct stat st;
	char *buf;
	ssize_t n;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		errno = EISDIR;
		return -1;
	}
	buf = xmalloc(cap);
	for (;;) {
		if (len + 1 >= cap) {
			if (cap >= max) {
				errno = EFBIG;
				goto fail;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
fail:
	saved = errno;
	close(fd);
	free(buf);
	errno = saved;
	return -1;
}
