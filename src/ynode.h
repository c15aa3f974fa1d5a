/*
 * ynode.h - what every YAML reader here (config.c, filter.c, rules.c) asks
 * of a libyaml document node: is it empty, its text, how an error message
 * shows it, and the scalar spellings of booleans and integers.  Also the
 * bounded whole-file read they share.
 */
#ifndef LP_YNODE_H
#define LP_YNODE_H

#include <stdbool.h>
#include <stddef.h>

#include <stdarg.h>

#include <yaml.h>

#include "util.h"

/* YAML's spellings of "nothing here" (only plain scalars can be). */
bool ynode_is_null(const yaml_node_t *);
/* A scalar's text; NULL for another node or a NUL byte inside. */
const char *ynode_text(const yaml_node_t *);
/* The same for a scalar that is not null (~, null, empty), else NULL. */
const char *ynode_scalar(const yaml_node_t *);
/* A sequence's length, and its item i (of document doc). */
size_t ynode_seq_len(const yaml_node_t *);
yaml_node_t *ynode_seq_item(yaml_document_t *doc, const yaml_node_t *,
			    size_t i);
/*
 * How an error message shows what it got: a quoted value on one line, cut
 * at 60 bytes, or the kind of node ("a mapping", "a list", "an empty
 * value").  The caller frees it.
 */
char *ynode_describe(const yaml_node_t *);
/* true, yes, on / false, no, off: 1 or 0; -1 for anything else. */
int ynode_bool(const char *);
/* A decimal integer, nothing after it. */
bool ynode_int(const char *, long long *);

/*
 * Appends "FILE:LINE:COL: msg" to errs (marks are 0-based in libyaml;
 * people count from one), or "FILE: msg" when m is NULL.
 */
void ynode_error(struct strlist *errs, const char *file, const yaml_mark_t *m,
		 const char *msg);
/* The same with a formatted message, after "path: " when path is set. */
void ynode_verror(struct strlist *errs, const char *file, const yaml_mark_t *m,
		  const char *path, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

/*
 * libyaml's complaint about text (the document being loaded), where it
 * happened and what it was in the middle of, as one error in errs: a bad
 * byte's line and column, a tab used to indent, the construct it was in.
 */
void ynode_syntax_error(struct strlist *errs, const char *file,
			const yaml_parser_t *parser, const char *text,
			size_t len);

/*
 * The whole file in a new NUL-terminated buffer, refusing more than max
 * bytes (EFBIG) and folders (EISDIR); -1 with errno set.
 */
int read_file_max(const char *path, size_t max, char **out, size_t *outlen);

#endif
