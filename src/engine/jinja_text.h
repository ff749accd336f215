/* Text helpers of the chat-template interpreter, with Python's meaning:
 * whitespace, case mapping (ASCII, Latin-1, Greek, Cyrillic), strip,
 * split, replace, title/capitalize, and %-formatting. */
#ifndef NS_JINJA_TEXT_H
#define NS_JINJA_TEXT_H

#include "engine/jinja_interp.h"

/* The code point at s (n bytes left); *len gets its byte length. */
uint32_t jx_utf8_decode(const char *s, size_t n, size_t *len);
bool jx_is_space_cp(uint32_t cp); /* str.isspace() */
uint32_t jx_upper_cp(uint32_t cp);
uint32_t jx_lower_cp(uint32_t cp);
bool jx_is_cased_letter(uint32_t cp);
bool jx_is_alpha_cp(uint32_t cp);

/* str(v) for filters that read text (undefined reads as ""). */
jx_str *jx_text(jx_run *R, jv v);

typedef enum { CASE_UPPER, CASE_LOWER, CASE_TITLE_PY, CASE_TITLE_JINJA, CASE_CAPITALIZE, CASE_SWAP } jx_case;
jv jx_change_case(jx_run *R, const jx_str *s, jx_case mode);

/* strip/lstrip/rstrip: chars NULL = whitespace. */
jv jx_strip(jx_run *R, const jx_str *s, const jx_str *chars, bool left, bool right);
/* str.split / rsplit (sep NULL = runs of whitespace). */
jv jx_split(jx_run *R, const jx_str *s, const jx_str *sep, int64_t maxsplit, bool from_right);
jv jx_splitlines(jx_run *R, const jx_str *s, bool keepends);
/* str.replace (count < 0 = all). */
jv jx_replace(jx_run *R, const jx_str *s, const jx_str *old, const jx_str *rep, int64_t count);
/* Byte offset of needle in hay at or after from, or -1 (last one when reverse). */
int64_t jx_find(jx_env *env, const jx_str *hay, const jx_str *needle, size_t from, size_t to, bool reverse);

/* fmt % args, as Python formats strings. */
jv jx_percent_format(jx_run *R, const jx_node *n, jv fmt, jv args);

#endif
