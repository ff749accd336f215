/* Values of the chat-template interpreter (a Jinja2 subset): none, bool,
 * int, float, string, list (and tuple), ordered dict (and namespace),
 * callables and Jinja's "undefined", plus the arena they live in and the
 * error channel every part of the interpreter reports through.
 *
 * Memory: every value of one parse or one render lives in one arena that
 * is freed at once, so values are plain structs copied by value (jv) whose
 * heap parts are never freed one by one. The arena has a byte limit; going
 * past it is a clean error, never a crash.
 *
 * Errors: jx_fail() formats a message and longjmps to the jmp_buf of the
 * current parse or render (jx_env.jb). Nothing outside the arena is held
 * across a possible failure, so nothing leaks. */
#ifndef NS_JINJA_VALUE_H
#define NS_JINJA_VALUE_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------- arena */

typedef struct jx_chunk jx_chunk;
typedef struct {
    jx_chunk *head;
    size_t total; /* bytes obtained from malloc so far */
    size_t limit; /* most bytes this arena may obtain */
} jx_arena;

void jx_arena_init(jx_arena *a, size_t limit);
/* Zeroed, aligned memory; NULL when the limit would be passed. */
void *jx_arena_alloc(jx_arena *a, size_t n);
void jx_arena_free(jx_arena *a);

/* ------------------------------------------------------------- errors */

typedef struct {
    jx_arena *arena;
    jmp_buf *jb;
    char *err; /* message buffer (at least 2 bytes) */
    size_t errlen;
    const char *src; /* normalized template source, for line/column */
    size_t srclen;
    size_t pos; /* source offset of the construct being handled */
} jx_env;

/* Formats "line L, column C: <message>" into env->err and jumps to env->jb. */
#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 2, 3)))
#endif
void jx_fail(jx_env *env, const char *fmt, ...);
/* Line and column (1-based, columns in bytes) of a source offset. */
void jx_line_col(const char *src, size_t srclen, size_t pos, int *line, int *col);

void *jx_alloc(jx_env *env, size_t n); /* fails cleanly on the arena limit */

/* ------------------------------------------------------------- values */

typedef enum {
    JV_UNDEF = 0,
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST,
    JV_DICT,
    JV_FUNC,
    JV_LOOP,
} jv_type;

typedef struct jx_str {
    size_t len;
    char s[]; /* len bytes, then a NUL */
} jx_str;

typedef struct jv jv;
typedef struct jx_list jx_list;
typedef struct jx_dict jx_dict;
typedef struct jx_func jx_func;
struct jx_loop;

struct jv {
    jv_type t;
    union {
        bool b;
        int64_t i;
        double f;
        jx_str *s; /* JV_STR; for JV_UNDEF the message to report when it is used (may be NULL) */
        jx_list *l;
        jx_dict *d;
        jx_func *fn;
        struct jx_loop *loop;
    } u;
};

struct jx_list {
    size_t n, cap;
    jv *items;
    bool tuple; /* printed as (a, b) */
};

struct jx_dict {
    size_t n, cap;
    jv *keys;
    jv *vals;
    bool ns; /* a namespace(): attributes may be assigned with set */
};

/* ------------------------------------------------------------- constructors */

static inline jv jv_undef(void) { jv v = {.t = JV_UNDEF}; v.u.s = NULL; return v; }
static inline jv jv_none(void) { jv v = {.t = JV_NONE}; v.u.i = 0; return v; }
static inline jv jv_bool(bool b) { jv v = {.t = JV_BOOL}; v.u.b = b; return v; }
static inline jv jv_int(int64_t i) { jv v = {.t = JV_INT}; v.u.i = i; return v; }
static inline jv jv_float(double f) { jv v = {.t = JV_FLOAT}; v.u.f = f; return v; }

/* An undefined value carrying the message its use reports ("'x' is undefined"). */
jv jv_undef_named(jx_env *env, const char *msg);
jx_str *jx_str_new(jx_env *env, const char *s, size_t len);
jv jv_str(jx_env *env, const char *s, size_t len);
jv jv_cstr(jx_env *env, const char *s);
jv jv_strv(jx_str *s); /* wraps an existing string */
jv jv_list(jx_env *env, size_t cap);
jv jv_tuple(jx_env *env, size_t cap);
jv jv_dict(jx_env *env, size_t cap);

void jx_list_push(jx_env *env, jx_list *l, jv v);
/* Looks a key up (Python equality); NULL when absent. */
jv *jx_dict_get(const jx_dict *d, jv key);
jv *jx_dict_gets(const jx_dict *d, const char *key);
void jx_dict_set(jx_env *env, jx_dict *d, jv key, jv val);
void jx_dict_sets(jx_env *env, jx_dict *d, const char *key, jv val);
bool jx_dict_del(jx_dict *d, jv key);

/* ------------------------------------------------------------- semantics */

const char *jv_type_name(jv v); /* Python's name: 'str', 'int', 'dict', ... */
bool jv_truthy(jv v);
bool jv_is_num(jv v); /* int, float or bool (Python's numbers) */
double jv_num(jv v);
bool jv_equal(jv a, jv b); /* Python ==, deep */
/* Python ordering for sort and <: -1/0/1, or fails with a TypeError-like message. */
int jv_compare(jx_env *env, jv a, jv b, bool case_insensitive);

/* ------------------------------------------------------------- strings */

/* A growable byte buffer in an arena (with a size limit). */
typedef struct {
    char *p;
    size_t n, cap;
    size_t limit; /* 0 = no limit beyond the arena's */
} jx_buf;

void jx_buf_put(jx_env *env, jx_buf *b, const char *s, size_t n);
void jx_buf_puts(jx_env *env, jx_buf *b, const char *s);
void jx_buf_putc(jx_env *env, jx_buf *b, char c);
jv jx_buf_value(jx_env *env, const jx_buf *b);

/* Appends str(v) as Python would print it ({{ v }}); undefined prints nothing. */
void jv_write_str(jx_env *env, jx_buf *b, jv v);
/* Appends repr(v). */
void jv_write_repr(jx_env *env, jx_buf *b, jv v);
jv jv_to_str(jx_env *env, jv v);
/* Python's repr() of a float: shortest text that reads back the same. */
void jx_float_repr(double d, char *out, size_t outlen);

/* UTF-8: code points of a string, and the byte offset of code point i. */
size_t jx_utf8_len(const char *s, size_t n);
size_t jx_utf8_offset(const char *s, size_t n, size_t cp_index);
/* Length in bytes of the UTF-8 sequence starting at s (1 for invalid bytes). */
size_t jx_utf8_seqlen(const char *s, size_t n);
void jx_utf8_put(jx_env *env, jx_buf *b, uint32_t cp);

/* ------------------------------------------------------------- JSON */

/* Parses JSON text into values (objects become dicts in key order). */
jv jx_json_parse(jx_env *env, const char *text, size_t len);
/* Python json.dumps(v, ensure_ascii, indent (<0: none), separators, sort_keys). */
void jx_json_dump(jx_env *env, jx_buf *b, jv v, int indent, const char *item_sep, const char *key_sep,
                  bool ensure_ascii, bool sort_keys);

#endif
