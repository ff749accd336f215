/* Pre-tokenizers of byte-level BPE vocabularies, as the reference engine
 * (llama.cpp, llm_tokenizer_bpe + unicode_regex_split) defines them: for
 * each tokenizer.ggml.pre value a list of regular expressions, applied in
 * order; each one cuts every piece made so far into its matches and the
 * text between them (which stays a piece of its own).
 *
 * The regexes run on PCRE2 in UTF + UCP mode, so \p{L}, \p{N}, \p{P},
 * \p{S}, \p{M} are the real Unicode categories. Where PCRE2 and the
 * reference's regex machinery differ, the patterns are adjusted so that
 * the pieces come out the same:
 *
 *  - \s and \S: the reference's whitespace is Unicode White_Space (its
 *    custom GPT-2 / Llama-3 splitters use that table; its std::regex path
 *    maps every non-ASCII White_Space character to \v first). PCRE2's \s
 *    lacks U+0085, so \s and \S become an explicit White_Space class.
 *  - the reference's own splitters for the GPT-2 and Llama-3 patterns
 *    (unicode_regex_split_custom_gpt2/_llama3) behave exactly like those
 *    regexes (the GPT-2 one also takes a lone whitespace before a
 *    non-space as a piece, which the split gives anyway as unmatched
 *    text), so the regexes themselves are used here.
 *  - tekken: the reference runs an adapted pattern where an upper-case
 *    letter is "a letter that is not a-z" and a lower-case one "a letter
 *    that is not A-Z" (its collapsed-category regex cannot tell other
 *    scripts' cases apart); that adapted pattern is what it matches, so it
 *    is used here, written with classes ([^\P{L}a-z]) instead of repeated
 *    lookahead groups (same language, no backtracking state per letter).
 *  - deepseek-llm's "\s+$" is written (?<!\s)\s+$: the same leftmost match
 *    (the trailing whitespace run of the piece) without retrying from
 *    every position of a long whitespace run.
 *  - deepseek-llm's letter class holds characters whose NFC form differs
 *    (U+1F7D, U+1FBE, U+1FD3, U+1FDB, U+2126, U+212A); they are written
 *    as \x{...} code points so no editor or tool can normalize them.
 *  - $ matches only at the very end of a piece (PCRE2_DOLLAR_ENDONLY), as
 *    in ECMAScript.
 *
 * Unicode tables: PCRE2's (its Unicode version) against the reference's
 * generated tables; characters assigned in between may differ.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "pretokenize.h"

#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    PK_DEFAULT,
    PK_GPT2,
    PK_LLAMA3,
    PK_QWEN2,
    PK_FALCON,
    PK_STARCODER,
    PK_DEEPSEEK_LLM,
    PK_DEEPSEEK_CODER,
    PK_DEEPSEEK3,
    PK_BLOOM,
    PK_VIKING,
    PK_TEKKEN,
    PK_CHAMELEON,
    PK_COUNT
};

#define MAX_RE 8

/* ------------------------------------------------ the reference's regexes */

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_LLAMA3                                                                                          \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| " \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2                                                                                       \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| " \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_BLOOM " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+"
#define RE_CJK_DS "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"

static const char *const re_default[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|]+",
    RE_GPT2,
    "\\p{N}+",
    "[0-9][0-9][0-9]",
    NULL,
};
static const char *const re_gpt2[] = {RE_GPT2, NULL};
static const char *const re_llama3[] = {RE_LLAMA3, NULL};
static const char *const re_qwen2[] = {RE_QWEN2, NULL};
static const char *const re_falcon[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|`]+",
    RE_GPT2,
    "[0-9][0-9][0-9]",
    NULL,
};
static const char *const re_starcoder[] = {"\\p{N}", RE_GPT2, NULL};
static const char *const re_deepseek_llm[] = {
    "[\r\n]",
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}"
    "\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}"
    "\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}"
    "\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}"
    "\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}"
    "\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}"
    "\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}"
    "\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}"
    "\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}"
    "\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}"
    "\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}"
    "\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}"
    "\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}"
    "\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}"
    "\\x{1E900}-\\x{1E943}]+",
    "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
    "(?<!\\s)\\s+$", /* reference: "\\s+$" (same matches, see above) */
    RE_CJK_DS,
    "\\p{N}+",
    NULL,
};
static const char *const re_deepseek_coder[] = {
    "[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_CJK_DS, "\\p{N}", NULL,
};
static const char *const re_deepseek3[] = {
    "\\p{N}{1,3}",
    "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
    "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_bloom[] = {RE_BLOOM, NULL};
static const char *const re_viking[] = {RE_BLOOM, "\\p{N}", NULL};
/* reference (adapted): "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?
 * ((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" */
static const char *const re_tekken[] = {
    "[^\\r\\n\\p{L}\\p{N}]?[^\\P{L}a-z]*[^\\P{L}A-Z]+|[^\\r\\n\\p{L}\\p{N}]?[^\\P{L}a-z]+[^\\P{L}A-Z]*|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_chameleon[] = {
    "<sentinel:[0-9]+>",
    "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
    "([\\t\\n]|    |  )",
    "\\p{N}",
    "[\\p{P}!-/:-@\\[-`{-~]",
    RE_GPT2,
    NULL,
};

static const char *const *const re_sets[PK_COUNT] = {
    [PK_DEFAULT] = re_default,
    [PK_GPT2] = re_gpt2,
    [PK_LLAMA3] = re_llama3,
    [PK_QWEN2] = re_qwen2,
    [PK_FALCON] = re_falcon,
    [PK_STARCODER] = re_starcoder,
    [PK_DEEPSEEK_LLM] = re_deepseek_llm,
    [PK_DEEPSEEK_CODER] = re_deepseek_coder,
    [PK_DEEPSEEK3] = re_deepseek3,
    [PK_BLOOM] = re_bloom,
    [PK_VIKING] = re_viking,
    [PK_TEKKEN] = re_tekken,
    [PK_CHAMELEON] = re_chameleon,
};

/* tokenizer.ggml.pre values, as the reference maps them (llama-vocab.cpp),
 * plus "poro" and "minerva" for the reference's "poro-chat" and
 * "minerva-7b". */
typedef struct {
    const char *name;
    int kind;
    unsigned flags;
} pre_def;

#define IM NS_PRETOK_IGNORE_MERGES
#define AB NS_PRETOK_ADD_BOS
static const pre_def pre_defs[] = {
    {"default", PK_DEFAULT, 0},
    {"llama3", PK_LLAMA3, IM | AB},
    {"llama-v3", PK_LLAMA3, IM | AB},
    {"llama-bpe", PK_LLAMA3, IM | AB},
    {"falcon3", PK_LLAMA3, IM | AB},
    {"deepseek-llm", PK_DEEPSEEK_LLM, 0},
    {"deepseek-coder", PK_DEEPSEEK_CODER, 0},
    {"deepseek-v3", PK_DEEPSEEK3, 0},
    {"falcon", PK_FALCON, 0},
    {"mpt", PK_GPT2, 0},
    {"starcoder", PK_STARCODER, 0},
    {"gpt-2", PK_GPT2, 0},
    {"phi-2", PK_GPT2, 0},
    {"jina-es", PK_GPT2, 0},
    {"jina-de", PK_GPT2, 0},
    {"gigachat", PK_GPT2, 0},
    {"jina-v1-en", PK_GPT2, 0},
    {"jina-v2-es", PK_GPT2, 0},
    {"jina-v2-de", PK_GPT2, 0},
    {"jina-v2-code", PK_GPT2, 0},
    {"roberta-bpe", PK_GPT2, 0},
    {"refact", PK_STARCODER, 0},
    {"command-r", PK_STARCODER, 0},
    {"qwen2", PK_QWEN2, 0},
    {"deepseek-r1-qwen", PK_QWEN2, 0},
    {"megrez", PK_QWEN2, 0},
    {"stablelm2", PK_QWEN2, 0},
    {"olmo", PK_GPT2, 0},
    {"dbrx", PK_LLAMA3, 0},
    {"smaug-bpe", PK_LLAMA3, 0},
    {"poro-chat", PK_BLOOM, 0},
    {"poro", PK_BLOOM, 0},
    {"chatglm-bpe", PK_LLAMA3, NS_PRETOK_NO_BOS},
    {"glm4", PK_LLAMA3, NS_PRETOK_NO_BOS},
    {"viking", PK_VIKING, 0},
    {"jais", PK_GPT2, 0},
    {"tekken", PK_TEKKEN, IM | AB},
    {"smollm", PK_STARCODER, 0},
    {"codeshell", PK_STARCODER, 0},
    {"bloom", PK_BLOOM, 0},
    {"gpt3-finnish", PK_BLOOM, 0},
    {"exaone", PK_STARCODER, 0},
    {"chameleon", PK_CHAMELEON, AB},
    {"minerva-7b", PK_STARCODER, 0},
    {"minerva", PK_STARCODER, 0},
};
#undef IM
#undef AB
#define N_PRE_DEFS (sizeof pre_defs / sizeof pre_defs[0])

const char *ns_pretok_known(size_t i) { return i < N_PRE_DEFS ? pre_defs[i].name : NULL; }

/* --------------------------------------------------------------- compile */

struct ns_pretok {
    int kind;
    unsigned flags;
    int n;
    pcre2_code *re[MAX_RE];
    char name[64];
};

static void seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Unicode White_Space, as the reference's whitespace table holds it. */
#define WS_CLASS "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

/* The pattern with \s and \S replaced by the White_Space class; malloc'd,
 * NULL on failure (or a \S inside a class, which no pattern has). */
static char *translate(const char *re) {
    size_t n = strlen(re), cap = n + 1, ws = sizeof WS_CLASS - 1;
    for (size_t i = 0; i + 1 < n; i++)
        if (re[i] == '\\') {
            if (re[i + 1] == 's' || re[i + 1] == 'S') cap += ws + 3;
            i++;
        }
    char *out = malloc(cap);
    if (!out) return NULL;
    size_t j = 0;
    bool in_class = false;
    for (size_t i = 0; i < n; i++) {
        char c = re[i];
        if (c == '\\' && i + 1 < n) {
            char d = re[i + 1];
            if (d == 's' || d == 'S') {
                if (in_class) {
                    if (d == 'S') {
                        free(out);
                        return NULL;
                    }
                    memcpy(out + j, WS_CLASS, ws);
                    j += ws;
                } else {
                    out[j++] = '[';
                    if (d == 'S') out[j++] = '^';
                    memcpy(out + j, WS_CLASS, ws);
                    j += ws;
                    out[j++] = ']';
                }
            } else {
                out[j++] = c;
                out[j++] = d;
            }
            i++;
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = true;
        } else if (c == ']' && in_class) {
            in_class = false;
        }
        out[j++] = c;
    }
    out[j] = 0;
    return out;
}

ns_pretok *ns_pretok_new(const char *name, char *err, size_t errlen) {
    const pre_def *d = NULL;
    const char *use = name ? name : "default";
    for (size_t i = 0; i < N_PRE_DEFS && !d; i++)
        if (strcmp(pre_defs[i].name, use) == 0) d = &pre_defs[i];
    if (!d) {
        char shown[64];
        size_t k = 0;
        for (const char *p = use; *p && k + 5 < sizeof shown; p++) {
            unsigned char c = (unsigned char)*p;
            if (c >= 0x20 && c != 0x7f) shown[k++] = (char)c;
            else k += (size_t)snprintf(shown + k, sizeof shown - k, "\\x%02x", c);
        }
        shown[k < sizeof shown ? k : sizeof shown - 1] = 0;
        seterr(err, errlen,
               "tokenizer: unknown pre-tokenizer: tokenizer.ggml.pre = \"%s\" (the reference engine rejects it too; "
               "known values include gpt-2, llama-bpe, qwen2, falcon, deepseek-llm, starcoder, tekken)",
               shown);
        return NULL;
    }
    ns_pretok *p = calloc(1, sizeof *p);
    if (!p) {
        seterr(err, errlen, "tokenizer: out of memory");
        return NULL;
    }
    p->kind = d->kind;
    p->flags = d->flags;
    snprintf(p->name, sizeof p->name, "%s", d->name);
    const char *const *set = re_sets[d->kind];
    for (int i = 0; set[i]; i++) {
        if (p->n == MAX_RE) break;
        char *pat = translate(set[i]);
        if (!pat) {
            seterr(err, errlen, "tokenizer: out of memory compiling the \"%s\" pre-tokenizer", d->name);
            ns_pretok_free(p);
            return NULL;
        }
        int ec = 0;
        PCRE2_SIZE eo = 0;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY | PCRE2_NO_AUTO_CAPTURE, &ec, &eo,
                                       NULL);
        free(pat);
        if (!re) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ec, msg, sizeof msg);
            seterr(err, errlen, "tokenizer: pre-tokenizer \"%s\": regex %d does not compile at %zu: %s", d->name, i,
                   (size_t)eo, (const char *)msg);
            ns_pretok_free(p);
            return NULL;
        }
        (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  /* without JIT the interpreter runs it */
        p->re[p->n++] = re;
    }
    return p;
}

void ns_pretok_free(ns_pretok *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) pcre2_code_free(p->re[i]);
    free(p);
}

unsigned ns_pretok_flags(const ns_pretok *p) { return p ? p->flags : 0; }
const char *ns_pretok_name(const ns_pretok *p) { return p ? p->name : ""; }

/* ----------------------------------------------------------------- split */

static bool push_span(ns_span **a, size_t *n, size_t *cap, size_t off, size_t len) {
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        ns_span *q = realloc(*a, c * sizeof *q);
        if (!q) return false;
        *a = q;
        *cap = c;
    }
    (*a)[(*n)++] = (ns_span){off, len};
    return true;
}

static inline size_t utf8_step(unsigned char c) {
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* One regex over one piece: matches and the text between them, in order. */
static bool split_piece(const pcre2_code *re, pcre2_match_data *md, const char *text, ns_span in, ns_span **out,
                        size_t *n, size_t *cap) {
    PCRE2_SPTR base = (PCRE2_SPTR)(text + in.off);
    size_t len = in.len, pos = 0, last = 0;
    while (pos < len) {
        int rc = pcre2_match(re, base, len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)  /* the interpreter keeps its state on the heap */
            rc = pcre2_match(re, base, len, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) return false;
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (ms < last || me < ms || me > len) return false;  /* cannot happen without \K */
        if (ms > last && !push_span(out, n, cap, in.off + last, ms - last)) return false;
        if (me > ms && !push_span(out, n, cap, in.off + ms, me - ms)) return false;
        last = me;
        /* an empty match yields an empty word (nothing): step over one character */
        pos = me > ms ? me : me + utf8_step(base[me]);
    }
    if (last < len && !push_span(out, n, cap, in.off + last, len - last)) return false;
    return true;
}

bool ns_pretok_split(const ns_pretok *p, ns_pretok_scratch *s, const char *text, size_t len, const ns_span **out,
                     size_t *n) {
    *out = NULL;
    *n = 0;
    if (!p || !s) return false;
    if (!s->md) {
        s->md = pcre2_match_data_create(1, NULL);
        if (!s->md) return false;
    }
    size_t ncur = 0;
    if (len > 0 && !push_span(&s->cur, &ncur, &s->cur_cap, 0, len)) return false;
    for (int r = 0; r < p->n && ncur > 0; r++) {
        size_t nn = 0;
        for (size_t i = 0; i < ncur; i++)
            if (!split_piece(p->re[r], s->md, text, s->cur[i], &s->nxt, &nn, &s->nxt_cap)) return false;
        ns_span *t = s->cur;
        size_t tc = s->cur_cap;
        s->cur = s->nxt;
        s->cur_cap = s->nxt_cap;
        s->nxt = t;
        s->nxt_cap = tc;
        ncur = nn;
    }
    *out = s->cur;
    *n = ncur;
    return true;
}

void ns_pretok_scratch_free(ns_pretok_scratch *s) {
    if (!s) return;
    free(s->cur);
    free(s->nxt);
    if (s->md) pcre2_match_data_free(s->md);
    *s = (ns_pretok_scratch){0};
}
