/* The chat-template interpreter (src/engine/jinja_*.c) on its own:
 *  - 120 small templates covering the language (statements, whitespace
 *    control, operators, filters, tests, methods, loop variables, macros,
 *    slicing, namespace, tojson, Python's printing of values), whose
 *    expected output was rendered by Python jinja2 3.1.6 set up as Hugging
 *    Face transformers sets it up for chat templates (sandboxed, trim_blocks,
 *    lstrip_blocks, loop controls, raise_exception, HF's tojson);
 *  - error messages with their line and column, for syntax and run-time errors;
 *  - the limits (nesting, macro recursion, loop iterations, output size,
 *    memory, time);
 *  - JSON reading and writing, float printing, strftime_now;
 *  - a few thousand random mutations of the real templates in
 *    tests/data/templates, which must render or fail cleanly (run it under
 *    the sanitizer build to check for memory errors; NSTACK_FUZZ_ITERS and
 *    NSTACK_FUZZ_SEED run longer or other campaigns). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/jinja_template.h"
#include "engine/jinja_value.h"
#include "testutil.h"

/* ------------------------------------------------------------- helpers */

/* Fills the variables from a JSON object (the user data). */
static void setup_json(jx_env *env, jx_dict *vars, void *ud) {
    const char *json = ud;
    if (!json) return;
    jv v = jx_json_parse(env, json, strlen(json));
    for (size_t i = 0; i < v.u.d->n; i++) jx_dict_set(env, vars, v.u.d->keys[i], v.u.d->vals[i]);
}

/* Parses and renders; NULL with the message in err on failure. */
static char *render_opts(const char *tmpl, const char *ctx_json, const jx_options *o, char *err, size_t errlen) {
    jx_template *t = jx_template_parse(tmpl, strlen(tmpl), err, errlen);
    if (!t) return NULL;
    char *out = jx_template_render(t, o, setup_json, (void *)ctx_json, err, errlen, NULL);
    jx_template_free(t);
    return out;
}

static char *render(const char *tmpl, const char *ctx_json, char *err, size_t errlen) {
    jx_options o = {.now = 1721952000, .now_fixed = true};
    return render_opts(tmpl, ctx_json, &o, err, errlen);
}

static void expect_render(const char *tmpl, const char *ctx_json, const char *want) {
    char err[600];
    char *out = render(tmpl, ctx_json, err, sizeof err);
    if (!out) fail_msg("template %s\nfailed: %s", tmpl, err);
    if (strcmp(out, want) != 0) {
        fprintf(stderr, "template: %s\nexpected: [%s]\ngot:      [%s]\n", tmpl, want, out);
        free(out);
        fail_msg("wrong output");
    }
    free(out);
}

static void expect_error(const char *tmpl, const char *ctx_json, const char *want) {
    char err[600];
    char *out = render(tmpl, ctx_json, err, sizeof err);
    if (out) {
        fprintf(stderr, "template: %s\nrendered: [%s]\n", tmpl, out);
        free(out);
        fail_msg("expected the error '%s'", want);
    }
    if (strcmp(err, want) != 0) fail_msg("template %s\nerror    [%s]\nexpected [%s]", tmpl, err, want);
}

/* ------------------------------------------------------------- rendering */

/* generated: 122 cases */
static const struct {
    const char *tmpl, *expect;
} render_cases[] = {
    {"{% for i in [1,2,3] %}[{{ x }}]{% set x = i %}{% endfor %}{{ x }}",
     "[{'a': [1, 2.5, 's', None, True], 'b': {'c': 'd'}}][{'a': [1, 2.5, 's', None, True], 'b': {'c': 'd'}}][{'a': [1, 2.5, 's', None, True], 'b': {'c': 'd'}}]{'a': [1, 2.5, 's', None, True], 'b': {'c': 'd'}}"},
    {"{% set x = 5 %}{% for i in [1,2] %}{{ x }}{% set x = i %}{% endfor %}{{ x }}",
     "555"},
    {"{{ [1,\"a\",none,true,1.5,{\"k\":[]}] }}",
     "[1, 'a', None, True, 1.5, {'k': []}]"},
    {"{{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 3/2 }} {{ 4/2 }} {{ 7//2 }} {{ -7//2 }} {{ -7 % 3 }} {{ 2**10 }} {{ 2**0.5 }}",
     "1e+16 1000000000000000.0 0.0001 1e-05 1.5 2.0 3 -4 2 1024 1.4142135623730951"},
    {"{{ y is defined }}{{ y|length }}{{ (y ~ \"a\") }}",
     "False0a"},
    {"{{ \"abc\"[::-1] }} {{ [1,2,3][1:] }} {{ u|length }} {{ u[1] }} {{ u[::-1] }} {{ u[2:5] }}",
     "cba [2, 3] 11 \303\251 dlr\303\266w oll\303\251h llo"},
    {"{{ true is number }} {{ 1 is integer }} {{ true is integer }} {{ \"a\" is iterable }} {{ {} is sequence }}",
     "True True False True True"},
    {"{{ none }} {{ true }} {{ \"x\"|tojson }} {{ {\"a\":[1,2.0,\"<\303\251>\"]}|tojson(indent=2) }} {{ x|tojson }}",
     "None True \"x\" {\n  \"a\": [\n    1,\n    2.0,\n    \"<\303\251>\"\n  ]\n} {\"a\": [1, 2.5, \"s\", null, true], \"b\": {\"c\": \"d\"}}"},
    {"  {% if true %}\n  x\n  {% endif %}\n  y {# c #}\n  {#- c2 #}  z",
     "  x\n  y   z"},
    {"{% macro m(a, b=2) %}{{ a }}-{{ b }}-{{ varargs }}{% endmacro %}{{ m(1) }}{{ m(1,3,4) }}",
     "1-2-()1-3-(4,)"},
    {"{{ [3,1,2]|sort }} {{ [\"b\",\"A\",\"a\"]|sort }} {{ \"a,b\".split(\",\") }} {{ \"  x \".strip() }}",
     "[1, 2, 3] ['A', 'a', 'b'] ['a', 'b'] x"},
    {"{{ \"x\" * 3 }} {{ [1] * 2 }} {{ 1 ~ 2 }} {{ 1 == 1.0 }} {{ {\"a\":1} == {\"a\":1} }}",
     "xxx [1, 1] 12 True True"},
    {"{% set ns = namespace(a=1) %}{% set ns.a = ns.a + 1 %}{{ ns.a }}",
     "2"},
    {"{{ \"%s-%d\" % (\"a\", 3) }} {{ \"%5.2f|%-4s|%d|%r\" % (3.14159, \"ab\", 7, \"q\") }}",
     "a-3  3.14|ab  |7|'q'"},
    {"{{ range(3)|list }} {{ range(1,10,3)|list }} {{ \"abc\"|list }} {{ {\"a\":1}|list }} {{ {\"a\":1}.items()|list }}",
     "[0, 1, 2] [1, 4, 7] ['a', 'b', 'c'] ['a'] [('a', 1)]"},
    {"{{ 1 if false }}|{{ (1 if false) is defined }}",
     "|False"},
    {"{% for a,b in {\"x\":1,\"y\":2}|items %}{{a}}={{b}};{{ loop.previtem }};{{ loop.nextitem }}{% endfor %}",
     "x=1;;('y', 2)y=2;('x', 1);"},
    {"{{ x.zz }}|{{ x.b.c }}|{{ x['b']['c'] }}|{{ x.a.1 }}|{{ x.a[-1] }}|{{ x.a[9] }}",
     "|d|d|2.5|True|"},
    {"{{ \"abc\".upper() }}{{ \"A b\".title() }}{{ 2.5|round }}{{ 3.14159|round(2) }}{{ \"5\"|int + 1 }}{{ \"x\"|int }}{{ 3|float }}",
     "ABCA B2.03.14603.0"},
    {"{% for m in messages %}{{ loop.index }}/{{ loop.length }}:{{ m.role }}{% if loop.first %}F{% endif %}{% if loop.last %}L{% endif %} {{ loop.revindex }}{{ loop.revindex0 }}{{ loop.cycle('a','b') }}\n{% endfor %}",
     "1/4:systemF 43a\n2/4:user 32b\n3/4:assistant 21a\n4/4:userL 10b\n"},
    {"{%- for m in messages if m.role != 'system' -%}\n{{ loop.index }}{{ m.content|trim }}\n{%- else -%}none\n{%- endfor %}",
     "1Hi2Hello3Q\?"},
    {"{{ messages|selectattr('role','equalto','user')|map(attribute='content')|join(', ') }}|{{ messages|rejectattr('role','in',['user','system'])|list|length }}",
     "Hi, Q\?|1"},
    {"{{ messages|map(attribute='role')|unique|list }} {{ l|max }} {{ l|min }} {{ l|sum }} {{ l|reverse|list }} {{ s|reverse }}",
     "['system', 'user', 'assistant'] 3 1 6 [2, 1, 3]   dlroW ,olleH"},
    {"{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c %}X{{ a }}Y{% endset %}{{ c }}{% set d | upper %}abc{% endset %}{{ d }}",
     "12X1YABC"},
    {"{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}",
     "0134"},
    {"{{ s|trim }}|{{ s|upper }}|{{ s|lower }}|{{ s|title }}|{{ s|capitalize }}|{{ s|replace('l','L') }}|{{ s|replace('l','L', 2) }}|{{ s|wordcount }}",
     "Hello, World|HELLO, WORLD  |hello, world  |Hello, World  |Hello, world  |HeLLo, WorLd  |HeLLo, World  |2"},
    {"{{ s.startswith('Hell') }}{{ s.endswith(('x','  ')) }}{{ s.find('o') }}{{ s.rfind('o') }}{{ s.count('l') }}{{ s.lstrip('H') }}{{ s.rstrip() }}|{{ s.split() }}{{ s.split(None, 1) }}{{ s.rsplit(',') }}",
     "TrueTrue483ello, World  Hello, World|['Hello,', 'World']['Hello,', 'World  ']['Hello', ' World  ']"},
    {"{{ x.get('a') }} {{ x.get('q', 'dflt') }} {{ x.keys()|list }} {{ x.values()|list|length }} {{ x.items()|list|length }}",
     "[1, 2.5, 's', None, True] dflt ['a', 'b'] 2 2"},
    {"{{ n is odd }}{{ n is even }}{{ n is divisibleby 7 }}{{ n is divisibleby(2) }}{{ f is float }}{{ s is string }}{{ x is mapping }}{{ l is sequence }}{{ none is none }}{{ n is not none }}",
     "TrueFalseTrueFalseTrueTrueTrueTrueTrueTrue"},
    {"{{ 'a' in 'cat' }}{{ 'z' not in 'cat' }}{{ 1 in l }}{{ 'a' in x }}{{ 'q' in x }}",
     "TrueTrueTrueTrueFalse"},
    {"{{ f|abs }} {{ -f }} {{ +n }} {{ n // 2 }} {{ n % 4 }} {{ n / 2 }} {{ n * 1.5 }} {{ 2 ** -1 }} {{ 10 - 3 - 2 }} {{ 2 ** 3 ** 2 }}",
     "2.5 2.5 7 3 3 3.5 10.5 0.5 5 64"},
    {"{{ 1 < 2 < 3 }}{{ 1 < 3 < 2 }}{{ 'a' < 'b' }}{{ [1,2] < [1,3] }}{{ not 1 == 2 }}{{ 1 and 2 }}{{ 0 or 'x' }}{{ none or none }}{{ '' and 1 }}",
     "TrueFalseTrueTrueTrue2xNone"},
    {"{{ \"%s\" % x }} {{ x|string }} {{ l|join }} {{ l|join('-') }} {{ messages|join(',', attribute='role') }}",
     "{'a': [1, 2.5, 's', None, True], 'b': {'c': 'd'}} {'a': [1, 2.5, 's', None, True], 'b': {'c': 'd'}} 312 3-1-2 system,user,assistant,user"},
    {"{{ \"  a\\n b\\nc\"|indent }}|{{ \"a\\n\\nb\"|indent(2, true) }}|{{ \"a\\n\\nb\"|indent(2, blank=true) }}|{{ \"a\\nb\"|indent('>>') }}",
     "  a\n     b\n    c|  a\n\n  b|a\n  \n  b|a\n>>b"},
    {"{{ y|default('d') }}{{ none|default('d') }}{{ none|default('d', true) }}{{ e|d('E', true) }}{{ x.zz|default(5) }}",
     "dNonedE5"},
    {"{{ l|first }}{{ l|last }}{{ s|first }}{{ s|last }}{{ x|first }}{{ x|last }}",
     "32H ab"},
    {"{{ x|dictsort }} {{ {'b':1,'A':2,'a':0}|dictsort(by='value') }} {{ [{'n':'b'},{'n':'a'}]|sort(attribute='n')|map(attribute='n')|list }}",
     "[('a', [1, 2.5, 's', None, True]), ('b', {'c': 'd'})] [('a', 0), ('b', 1), ('A', 2)] ['a', 'b']"},
    {"{{ \"Hello\"|center(11) }}|{{ 42|string|length }}|{{ \"x\"|e }}{{ \"<a href='x'>&\"|escape }}",
     "   Hello   |2|x&lt;a href=&#39;x&#39;&gt;&amp;"},
    {"{{ \"they're bill's\"|title }} {{ \"they're bill's\".title() }} {{ \"hELLO wORLD\".capitalize() }} {{ \"AbC\".swapcase() }}",
     "They're Bill's They'Re Bill'S Hello world aBc"},
    {"{% macro hello(name) %}Hi {{ name }}{{ caller() if caller is defined }}!{% endmacro %}{{ hello('a') }} {% call hello('b') %}[inner]{% endcall %}",
     "Hi a! Hi b[inner]!"},
    {"{% macro list_items(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(item) list_items([1,2]) %}<{{ item }}>{% endcall %}",
     "<1><2>"},
    {"{% filter upper %}abc {{ s }}{% endfilter %}",
     "ABC HELLO, WORLD  "},
    {"{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a }}",
     "3"},
    {"{%- set tree = [{'n':'a','c':[{'n':'b','c':[]}]},{'n':'c','c':[]}] -%}\n{%- for t in tree recursive -%}{{ loop.depth }}{{ t.n }}({{ loop(t.c) }}){%- endfor %}",
     "1a(2b())1c()"},
    {"{{ \"a\\tb\\\\n\\x41\\u00e9\\101\" }} {{ 'it''s' }} {{ \"multi\" \"part\" }}",
     "a\tb\\nA\303\251A its multipart"},
    {"{% raw %}{{ not rendered }}{% endraw %}",
     "{{ not rendered }}"},
    {"{{ 1 if true else 2 }}{{ 'a' if false else 'b' if true else 'c' }}",
     "1b"},
    {"{{ (1, 2) }} {{ (1,) }} {{ () }} {{ [1,2] + [3] }} {{ (1,2)[0] }}",
     "(1, 2) (1,) () [1, 2, 3] 1"},
    {"{{ 10|round(-1) }} {{ 15.5|round(0, 'floor') }} {{ 1.25|round(1) }} {{ 1.35|round(1, 'ceil') }} {{ 1234.5678|round(2) }}",
     "10 15.0 1.2 1.4 1234.57"},
    {"{{ \"3.5\"|float + 1 }} {{ \" 42 \"|int }} {{ \"0x1A\"|int(0, 16) }} {{ \"1_000\"|int }} {{ \"3.9\"|int }} {{ true|int }} {{ none|int }}",
     "4.5 42 26 1000 3 1 0"},
    {"{{ u.upper() }} {{ u|title }} {{ u|length }} {{ u.find('w') }} {{ u.split('\303\266') }}",
     "H\303\211LLO W\303\226RLD H\303\251llo W\303\266rld 11 6 ['h\303\251llo w', 'rld']"},
    {"{{ messages[1:]|length }} {{ messages[-1].content }} {{ messages[::-1][0].role }} {{ messages[::2]|map(attribute='role')|join }}",
     "3 Q\? user systemassistant"},
    {"{{ x.a|select('number')|list }} {{ x.a|reject('none')|list }} {{ [0,1,'',2]|select|list }} {{ l|map('string')|join('+') }}",
     "[1, 2.5, True] [1, 2.5, 's', True] [1, 2] 3+1+2"},
    {"{{ tojson }}",
     ""},
    {"{{ {'a': 1, 'b': [1, 2]}|tojson(indent=4) }} {{ [[], {}]|tojson(indent=2) }} {{ \"\303\251\\n\\\"\\\\\"|tojson }} {{ 1.0|tojson }} {{ {1: 2, true: 3, none: 4}|tojson }}",
     "{\n    \"a\": 1,\n    \"b\": [\n        1,\n        2\n    ]\n} [\n  [],\n  {}\n] \"\303\251\\n\\\"\\\\\" 1.0 {\"1\": 3, \"null\": 4}"},
    {"{{ \"abc\"|tojson(sort_keys=true) }} {{ {'b':1,'a':2}|tojson(sort_keys=true) }} {{ {'b':1}|tojson(separators=(',', ':')) }}",
     "\"abc\" {\"a\": 2, \"b\": 1} {\"b\":1}"},
    {"{%- set a = [1] -%}{%- set b = a -%}{%- set _ = b.append(2) -%}{{ a }}",
     "[1, 2]"},
    {"{{ loop }}",
     ""},
    {"{% for i in [1] %}{{ loop.length }}{{ loop.depth }}{{ loop.changed(i) }}{{ loop.changed(i) }}{% endfor %}",
     "11TrueFalse"},
    {"{{ 'abc'.replace('', '-') }} {{ 'a-b-c'.replace('-', '', 1) }} {{ 'abc'.index('c') }} {{ '1,2'.split(',', 0) }} {{ 'a b'.partition(' ') }}",
     "-a-b-c- ab-c 2 ['1,2'] ('a', ' ', 'b')"},
    {"{{ 'x' ~ none ~ 1 ~ true ~ y ~ [1] }}",
     "xNone1True[1]"},
    {"{% set d = {'k': 'v'} %}{{ d.k }}{{ d['k'] }}{% set d2 = dict(a=1, b=2) %}{{ d2 }}",
     "vv{'a': 1, 'b': 2}"},
    {"{{ \"{}\"|length }} {{ {'a': {'b': 1}} }}",
     "2 {'a': {'b': 1}}"},
    {"{{- \"  x  \" -}}  |  {{- \" y \" }}",
     "  x  | y "},
    {"a\n{{- \"b\" }}\nc {% if true -%}\n  d\n{%- endif %}\ne",
     "ab\nc de"},
    {"{%+ if true %}keep{% endif +%}\nnext",
     "keep\nnext"},
    {"{% if true %}\n    {% if true %}\n        deep\n    {% endif %}\n{% endif %}\nend",
     "        deep\nend"},
    {"{% for k, v in x.items() %}{{ k }}:{{ v }};{% endfor %}{% for k in x %}{{ k }}{% endfor %}",
     "a:[1, 2.5, 's', None, True];b:{'c': 'd'};ab"},
    {"{{ messages|selectattr('content', 'defined')|list|length }} {{ messages|selectattr('name', 'undefined')|list|length }} {{ messages|map(attribute='content')|map('length')|sum }}",
     "4 4 14"},
    {"{{ '\303\251'.upper() }}{{ '\303\200\303\211\303\216'.lower() }}{{ 'stra\303\237e'.upper() }}{{ '\320\237\320\240\320\230\320\222\320\225\320\242'.lower() }}{{ '\316\261\316\262\316\263'|upper }}",
     "\303\211\303\240\303\251\303\256STRASSE\320\277\321\200\320\270\320\262\320\265\321\202\316\221\316\222\316\223"},
    {"{{ \"%d items\" % 3 }}|{{ \"%.2f\" % 1.5 }}|{{ \"%5s|%-5s|\" % (\"a\",\"b\") }}|{{ \"%(a)s-%(b)d\" % {\"a\": \"x\", \"b\": 2} }}|{{ \"%x %o %e %g %%\" % (255, 8, 12345.678, 0.0001) }}|{{ \"%c%c\" % (65, \"b\") }}|{{ \"%+d %05d\" % (5, 42) }}",
     "3 items|1.50|    a|b    ||x-2|ff 10 1.234568e+04 0.0001 %|Ab|+5 00042"},
    {"{{ \"xxhixx\"|trim(\"x\") }}|{{ \"  hi  \"|trim }}|{{ \"\\t\\n hi \\u3000\"|trim }}|",
     "hi|hi|hi|"},
    {"{% set ns = namespace(items=[]) %}{% set ns.items = ns.items + [1] %}{% set ns.items = ns.items + [2] %}{{ ns.items }}",
     "[1, 2]"},
    {"{% macro outer(a) %}[{% macro inner(b) %}({{ b }}){% endmacro %}{{ inner(a) }}{{ inner(a ~ '!') }}]{% endmacro %}{{ outer('z') }}",
     "[(z)(z!)]"},
    {"{% macro m(a, b='B') %}{{ a }}{{ b }}{{ kwargs }}{% endmacro %}{{ m(b=1, a=2) }}{{ m('x', c=3) }}",
     "21{}xB{'c': 3}"},
    {"{{ {'\303\251': '\303\274', 'k': [1]}|tojson(ensure_ascii=true) }} {{ '\360\237\230\200'|tojson(ensure_ascii=true) }} {{ '\360\237\230\200'|tojson }}",
     "{\"\\u00e9\": \"\\u00fc\", \"k\": [1]} \"\\ud83d\\ude00\" \"\360\237\230\200\""},
    {"{{ 'a' ~ 1.0 }} {{ 10 / 4 }} {{ -0.0 }} {{ 0.1 + 0.2 }} {{ 1e300 * 1e10 }} {{ 1.5e-7 }} {{ 123456789.0 }} {{ 1/3 }} {{ 2.0 ** 70 }}",
     "a1.0 2.5 -0.0 0.30000000000000004 inf 1.5e-07 123456789.0 0.3333333333333333 1.1805916207174113e+21"},
    {"{{ [1, [2, [3]]]|tojson }} {{ [1, [2, [3]]]|tojson(indent=1) }} {{ {\"a\": {\"b\": {}}}|tojson(indent=2) }}",
     "[1, [2, [3]]] [\n 1,\n [\n  2,\n  [\n   3\n  ]\n ]\n] {\n  \"a\": {\n    \"b\": {}\n  }\n}"},
    {"{{ messages|tojson }}",
     "[{\"role\": \"system\", \"content\": \"Sys\"}, {\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \" Hello \"}, {\"role\": \"user\", \"content\": \"Q\?\"}]"},
    {"{% if x.b.c is defined and x.b.zz is not defined %}ok{% endif %}{% if x.a[0] is number and x.a[2] is string %}!{% endif %}",
     "ok!"},
    {"{{ 'abc'[1:] }}{{ 'abc'[:-1] }}{{ 'abc'[-2:] }}{{ 'abcdef'[::2] }}{{ 'abcdef'[1::2] }}{{ [1,2,3,4][3:1:-1] }}{{ 'abc'[5:] }}{{ 'abc'[-10:2] }}",
     "bcabbcacebdf[4, 3]ab"},
    {"{{ \"Hello World\".split(\" \")|map(\"lower\")|join(\"_\") }} {{ \"a b  c\".split(\" \") }} {{ \"a,b,c\".split(\",\", 1) }} {{ \" a b \".split() }} {{ \"a\\nb\\r\\nc\".splitlines() }}",
     "hello_world ['a', 'b', '', 'c'] ['a', 'b,c'] ['a', 'b'] ['a', 'b', 'c']"},
    {"{{ \"title\".capitalize() }} {{ \"x\".join([\"a\",\"b\"]) }} {{ \"x\".join(\"ab\") }} {{ \"ab\".center(6, \"*\") if false else \"ab\"|center(6) }}|{{ \"42\".zfill(5) }} {{ \"-4\".zfill(4) }} {{ \"ab\".ljust(4, \".\") }} {{ \"ab\".rjust(4) }}",
     "Title axb axb   ab  |00042 -004 ab..   ab"},
    {"{{ \"abc\".isalpha() }}{{ \"123\".isdigit() }}{{ \"a1\".isalnum() }}{{ \"  \".isspace() }}{{ \"abc\".islower() }}{{ \"ABC\".isupper() }}{{ \"\".isdigit() }}{{ \"Ab\".islower() }}",
     "TrueTrueTrueTrueTrueTrueFalseFalse"},
    {"{{ \"prefix-body\".removeprefix(\"prefix-\") }} {{ \"body.txt\".removesuffix(\".txt\") }} {{ \"a=b=c\".partition(\"=\") }} {{ \"a=b=c\".rpartition(\"=\") }} {{ \"abc\".rpartition(\"x\") }}",
     "body body ('a', '=', 'b=c') ('a=b', '=', 'c') ('', '', 'abc')"},
    {"{% set l = [3, 1, 2] %}{% set _ = l.insert(1, 9) %}{{ l }}{{ l.pop() }}{{ l.pop(0) }}{{ l }}{{ l.index(9) }}{{ l.count(1) }}{% set _ = l.extend([5, 5]) %}{{ l }}{% set _ = l.remove(5) %}{{ l }}{% set _ = l.reverse() %}{{ l }}",
     "[3, 9, 1, 2]23[9, 1]01[9, 1, 5, 5][9, 1, 5][5, 1, 9]"},
    {"{% set d = {'a': 1} %}{% set _ = d.update({'b': 2}) %}{{ d }}{{ d.pop('a') }}{{ d }}{{ d.setdefault('c', 3) }}{{ d }}{{ d.get('zz') }}{{ d.copy() }}",
     "{'a': 1, 'b': 2}1{'b': 2}3{'b': 2, 'c': 3}None{'b': 2, 'c': 3}"},
    {"{{ [1, 2, 3]|map('string')|list }} {{ ['1', '2']|map('int')|sum }} {{ [{'a': {'b': 1}}, {'a': {'b': 2}}]|map(attribute='a.b')|list }} {{ [{'a': 1}, {}]|map(attribute='a', default=0)|list }}",
     "['1', '2', '3'] 3 [1, 2] [1, 0]"},
    {"{{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3, 4]|reject('even')|list }} {{ [1, 2, 3]|select('gt', 1)|list }} {{ ['a', 'B']|select('lower')|list }} {{ [none, 1]|reject('none')|list }}",
     "[1, 3] [1, 3] [2, 3] ['a'] [1]"},
    {"{{ [3, 1, 2]|sort(reverse=true) }} {{ ['b', 'a', 'C']|sort(case_sensitive=true) }} {{ ['b', 'a', 'C']|sort }} {{ [{'n': 2}, {'n': 1}]|sort(attribute='n') }} {{ ['a', 'A', 'b']|unique|list }} {{ ['a', 'A']|unique(case_sensitive=true)|list }}",
     "[3, 2, 1] ['C', 'a', 'b'] ['a', 'b', 'C'] [{'n': 1}, {'n': 2}] ['a', 'b'] ['a', 'A']"},
    {"{{ [1, 5, 3]|max }} {{ ['a', 'B']|max }} {{ [{'v': 1}, {'v': 3}]|max(attribute='v') }} {{ []|max }} {{ [1.5, 2]|sum }} {{ [{'v': 1}, {'v': 3}]|sum(attribute='v') }} {{ [1]|sum(start=10) }}",
     "5 B {'v': 3}  3.5 4 11"},
    {"{{ 'Hello'|list }} {{ 'Hello'|first }} {{ 'Hello'|last }} {{ 'Hello'|length }} {{ 'Hello'|reverse }} {{ 'Hello'|count }} {{ 'Hello'|wordcount }} {{ 'Hello'|upper|lower }}",
     "['H', 'e', 'l', 'l', 'o'] H o 5 olleH 5 1 hello"},
    {"{{ 'a < b & c'|escape }} {{ '\"quoted\"'|e }} {{ 'x'|safe }} {{ 42|string }} {{ none|string }} {{ [1]|string }} {{ 'x'|pprint }} {{ [1, 'a']|pprint }}",
     "a &lt; b &amp; c &#34;quoted&#34; x 42 None [1] 'x' [1, 'a']"},
    {"{{ 'foo bar baz qux quux corge grault garply waldo fred plugh xyzzy thud'|truncate(30) }}|{{ 'short'|truncate(10) }}|{{ 'foo bar baz qux'|truncate(9, true) }}|{{ 'foo bar baz qux'|truncate(11, false, '..', 0) }}",
     "foo bar baz qux quux corge...|short|foo ba...|foo bar.."},
    {"{{ 3.7|int }} {{ -3.7|int }} {{ '12abc'|int }} {{ '12abc'|int(-1) }} {{ '1e3'|float }} {{ 'nan'|float }} {{ 'inf'|float }} {{ '0b11'|int(base=2) }} {{ '11'|int(base=2) }} {{ true|float }}",
     "3 -3 0 -1 1000.0 nan inf 3 3 1.0"},
    {"{{ 2.5|round }} {{ 3.5|round }} {{ -2.5|round }} {{ 0.125|round(2) }} {{ 0.375|round(2) }} {{ 7|round(-1) }} {{ 15|round(-1) }} {{ 2.5|round(0, 'ceil') }} {{ -2.5|round(0, 'floor') }}",
     "2.0 4.0 -2.0 0.12 0.38 10 20 3.0 -3.0"},
    {"{{ x|dictsort(reverse=true) }} {{ {'b': 2, 'a': 1}|dictsort(false, 'value') }} {{ {'B': 1, 'a': 2}|dictsort }} {{ {'B': 1, 'a': 2}|dictsort(true) }}",
     "[('b', {'c': 'd'}), ('a', [1, 2.5, 's', None, True])] [('a', 1), ('b', 2)] [('a', 2), ('B', 1)] [('B', 1), ('a', 2)]"},
    {"{% for i in range(3) %}{{ loop.cycle('odd', 'even') }}{% if not loop.last %},{% endif %}{% endfor %} {% for i in [] %}x{% else %}empty{% endfor %} {% for i in range(0) %}{% endfor %}",
     "odd,even,odd empty "},
    {"{% for a in [1, 2] %}{% for b in ['x', 'y'] %}{{ loop.index }}{{ a }}{{ b }}{{ loop.depth }} {% endfor %}{{ loop.index }};{% endfor %}",
     "11x1 21y1 1;12x1 22y1 2;"},
    {"{% set count = namespace(n=0) %}{% for m in messages %}{% if m.role == 'user' %}{% set count.n = count.n + 1 %}{% endif %}{% endfor %}{{ count.n }}",
     "2"},
    {"{% set a = 1 %}{% if true %}{% set a = 2 %}{% endif %}{{ a }}{% for i in [1] %}{% set a = 3 %}{{ a }}{% endfor %}{{ a }}{% macro m() %}{% set a = 4 %}{{ a }}{% endmacro %}{{ m() }}{{ a }}",
     "23242"},
    {"{{ messages[0]['role'] }}{{ messages[0].role }}{{ messages[-1]['content'] }}{{ messages|last|attr('role') if false else (messages|last).role }}",
     "systemsystemQ\?user"},
    {"{%- if messages[0]['role'] == 'system' -%}\n    {%- set system_message = messages[0]['content'] -%}\n    {%- set loop_messages = messages[1:] -%}\n{%- else -%}\n    {%- set loop_messages = messages -%}\n{%- endif -%}\n[{{ system_message }}]{% for m in loop_messages %}<{{ m.role }}>{% endfor %}",
     "[Sys]<user><assistant><user>"},
    {"{{ ('a', 'b')|join }} {{ ('a',) + ('b',) }} {{ [1] + [2] }} {{ (1, 2) == (1, 2) }} {{ [1, 2] == [1, 2] }} {{ (1, 2) == [1, 2] }}",
     "ab ('a', 'b') [1, 2] True True False"},
    {"{{ 1 == 1 == 1 }} {{ 1 != 2 != 1 }} {{ 'b' > 'a' >= 'a' }} {{ not not 1 }} {{ not 0 and 1 }} {{ 1 if 0 else 2 if 0 else 3 }} {{ (1 or 0) and 'yes' }}",
     "True True True True 1 3 yes"},
    {"{{ 'x' in ['x', 'y'] }} {{ 'x' in 'xyz' }} {{ 'xy' not in 'xyz' }} {{ 1 in {1: 2} }} {{ 'k' in {'k': 1} }} {{ [1] in [[1], 2] }} {{ '' in 'abc' }}",
     "True True False True True True True"},
    {"{{ messages|length > 2 }} {{ messages|length is divisibleby 2 }} {{ messages|selectattr('role', 'eq', 'user')|list|length }} {{ (messages|first).content is string }}",
     "True True 2 True"},
    {"{% set s = 'ab' %}{{ s * 2 }}{{ 2 * s }}{{ s * 0 }}{{ [0] * 3 }}{{ 7 // 2 * 2 + 7 % 2 }}{{ -7 // 2 }}{{ 7 // -2 }}{{ -7 % 2 }}{{ 7 % -2 }}{{ 7.5 // 2 }}{{ -7.5 % 2 }}",
     "abababab[0, 0, 0]7-4-41-13.00.5"},
    {"{{ true + 1 }} {{ true * 3 }} {{ 3 - true }} {{ 1 + 1.5 }} {{ 4 / 2 }} {{ 2 ** 3 }} {{ 2 ** -2 }} {{ 0 ** 0 }} {{ 10 ** 18 }} {{ (-8) ** 2 }} {{ -2 ** 2 }}",
     "2 3 2 2.5 2.0 8 0.25 1 1000000000000000000 64 4"},
    {"{{ x.a|first }}{{ x.a|last }}{{ x.a|length }}{{ x.a[1] + 1 }}{{ x.a[4] }}{{ x.a[4] is sameas true }}{{ x.a[3] is none }}",
     "1True53.5TrueTrueTrue"},
    {"{%- macro render(m) -%}\n{{- m.role|upper }}: {{ m.content|trim }}\n{% endmacro -%}\n{%- for m in messages %}{{ render(m) }}{% endfor %}",
     "SYSTEM: Sys\nUSER: Hi\nASSISTANT: Hello\nUSER: Q\?\n"},
    {"{% filter indent(2) %}\nline1\nline2\n{% endfilter %}",
     "line1\n  line2\n"},
    {"{% set tmpl %}{% for m in messages %}{{ m.role[0] }}{% endfor %}{% endset %}{{ tmpl }}|{{ tmpl|length }}",
     "suau|4"},
    {"{{ \"{{ not a tag }}\" }} {{ '{% neither %}' }} {{ \"}}\" ~ \"{{\" }}",
     "{{ not a tag }} {% neither %} }}{{"},
    {"{# comment with {{ tags }} and {% blocks %} #}after",
     "after"},
    {"{% if true %}   x   {% endif %}|{% if true -%}   x   {%- endif %}|{%- if true %}   x   {% endif -%}   |",
     "   x   |x|   x   |"},
    {"  {%- for i in [1, 2] %}\n    {{ i }}\n  {%- endfor %}",
     "    1    2"},
    {"{% for i in [1, 2] %}\n  item {{ i }}\n{% endfor %}",
     "  item 1\n  item 2\n"},
    {"x {# c #}\n  {# d #}\ny",
     "x y"},
    {"{{ 'a' }}\n{{ 'b' }}\n   {{ 'c' }}",
     "a\nb\n   c"},
    {"{%- set x = 'trailing' %}\n{{ x }}\n",
     "trailing"},
    {"{% raw -%}\n  {{ raw }}\n{%- endraw %}|\n",
     "{{ raw }}|"},
};
static const char *const CTX_JSON = "{\"messages\": [{\"role\": \"system\", \"content\": \"Sys\"}, {\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \" Hello \"}, {\"role\": \"user\", \"content\": \"Q\?\"}], \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_generation_prompt\": true, \"x\": {\"a\": [1, 2.5, \"s\", null, true], \"b\": {\"c\": \"d\"}}, \"s\": \"Hello, World  \", \"n\": 7, \"f\": -2.5, \"l\": [3, 1, 2], \"e\": \"\", \"u\": \"h\303\251llo w\303\266rld\"}";

static void test_render_table(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof render_cases / sizeof render_cases[0]; i++)
        expect_render(render_cases[i].tmpl, CTX_JSON, render_cases[i].expect);
}

/* Newlines: \r\n and \r read as \n, one trailing newline dropped. */
static void test_newlines(void **state) {
    (void)state;
    expect_render("a\r\nb\rc\n", NULL, "a\nb\nc");
    expect_render("a\n\n", NULL, "a\n");
    expect_render("{% if true %}\r\nx\r\n{% endif %}\r\n", NULL, "x\n");
    expect_render("", NULL, "");
    expect_render("plain text, no tags", NULL, "plain text, no tags");
    expect_render("{{ '}}' }}{{ \"%}\" }}", NULL, "}}%}");
    expect_render("{{ {'a': {'b': 1}}['a'] }}", NULL, "{'b': 1}");
    /* extensions some chat templates use: do, generation blocks */
    expect_render("{% set l = [] %}{% do l.append(1) %}{{ l }}", NULL, "[1]");
    expect_render("{% generation %}abc{% endgeneration %}", NULL, "abc");
}

/* ------------------------------------------------------------- errors */

static void test_errors(void **state) {
    (void)state;
    static const struct {
        const char *tmpl, *err;
    } cases[] = {
        /* syntax */
        {"{% for m in messages %}\n  {{ m.role }\n{% endfor %}", "line 2, column 13: unexpected '}', expected '}}'"},
        {"{% if messages %}\nok", "line 2, column 3: unexpected end of template: missing {% endif %} for the {% if %} at line 1"},
        {"{% for m in messages %}{% endif %}", "line 1, column 27: unexpected 'endif', expected 'endfor'"},
        {"{% endfor %}", "line 1, column 4: unexpected 'endfor' with no open block"},
        {"{{ }}", "line 1, column 4: unexpected '}}', expected an expression"},
        {"{{ 1 + }}", "line 1, column 8: unexpected '}}', expected an expression"},
        {"{% set x %}abc", "line 1, column 15: unexpected end of template: missing {% endset %} for the {% set %} at line 1"},
        {"{{ x | nosuchfilter }}", "line 1, column 6: no filter named 'nosuchfilter'"},
        {"{{ x is nosuchtest }}", "line 1, column 6: no test named 'nosuchtest'"},
        {"{% include 'other.html' %}", "line 1, column 4: the 'include' tag is not supported in chat templates"},
        {"{% frobnicate %}", "line 1, column 4: unknown tag 'frobnicate'"},
        {"{{ 'unterminated }}", "line 1, column 4: unterminated string literal"},
        {"{# unterminated comment", "line 1, column 1: unterminated comment: missing '#}'"},
        {"{{ 1 $ 2 }}", "line 1, column 6: unexpected character '$'"},
        {"{{ (1, 2 }}", "line 1, column 10: unexpected '}', expected ')'"},
        {"{% break %}", "line 1, column 4: 'break' outside of a for loop"},
        {"{% raw %}never closed", "line 1, column 1: missing {% endraw %}"},
        /* run time */
        {"{{ messages[0].content.nope() }}", "line 1, column 23: 'str object' has no attribute 'nope'"},
        {"{{ undefined_var.attr }}", "line 1, column 17: 'undefined_var' is undefined"},
        {"{{ 'a' < 1 }}", "line 1, column 8: '<' not supported between instances of 'str' and 'int'"},
        {"{{ 'a' + 1 }}", "line 1, column 8: can only concatenate str (not \"int\") to str"},
        {"line 1\nline 2 {{ [1][10] + 1 }}", "line 2, column 19: 'list object' has no element 10"},
        {"{% for x in none %}{% endfor %}", "line 1, column 13: 'NoneType' object is not iterable"},
        {"{% set a, b = [1, 2, 3] %}", "line 1, column 4: too many values to unpack (expected 2, got 3)"},
        {"{% set x = 1 %}{% set x.y = 1 %}", "line 1, column 23: cannot assign attribute on non-namespace object"},
        {"{{ 1 / 0 }}", "line 1, column 6: division by zero"},
        {"{{ 9223372036854775807 + 1 }}", "line 1, column 24: integer overflow"},
        {"{{ x|tojson }}", "line 1, column 5: tojson: object of type 'Undefined' is not JSON serializable"},
        {"{{ \"%s %s\" % (\"a\",) }}", "line 1, column 12: not enough arguments for format string"},
        {"{{ loop.index }}", "line 1, column 8: 'loop' is undefined"},
        /* raise_exception, as chat templates use it */
        {"{%- if messages[0]['role'] == 'system' %}\n    {{- raise_exception('System role not supported') }}\n{%- endif %}",
         "line 2, column 9: template raised an exception: System role not supported"},
    };
    const char *ctx = "{\"messages\": [{\"role\": \"system\", \"content\": \"s\"}]}";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) expect_error(cases[i].tmpl, ctx, cases[i].err);
    /* an error buffer of any size (or none) is fine */
    char tiny[5];
    jx_template *t = jx_template_parse("{% endif %}", 11, tiny, sizeof tiny);
    assert_null(t);
    assert_string_equal(tiny, "line");
    assert_null(jx_template_parse("{% endif %}", 11, NULL, 0));
    assert_null(jx_template_render(NULL, NULL, NULL, NULL, tiny, sizeof tiny, NULL));
}

/* ------------------------------------------------------------- limits */

static void test_limits(void **state) {
    (void)state;
    char err[600];
    /* nesting */
    char deep[4096];
    size_t k = 0;
    k += (size_t)snprintf(deep + k, sizeof deep - k, "{{ ");
    for (int i = 0; i < 300; i++) deep[k++] = '-';
    k += (size_t)snprintf(deep + k, sizeof deep - k, "1 }}");
    assert_null(render(deep, NULL, err, sizeof err));
    assert_non_null(strstr(err, "nested too deeply"));
    k = 0;
    for (int i = 0; i < 250; i++) k += (size_t)snprintf(deep + k, sizeof deep - k, "{%% if 1 %%}");
    assert_null(render(deep, NULL, err, sizeof err));
    assert_non_null(strstr(err, "nested too deeply"));
    k = 0;
    for (int i = 0; i < 100; i++) k += (size_t)snprintf(deep + k, sizeof deep - k, "not ");
    snprintf(deep + k, sizeof deep - k, "1");
    char tmpl[4200];
    snprintf(tmpl, sizeof tmpl, "{{ %s }}", deep);
    expect_render(tmpl, NULL, "True");
    /* recursion */
    expect_error("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", NULL,
                 "line 1, column 20: macro calls nested too deeply (limit 64)");
    expect_render("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}", NULL, "54321");
    expect_error("{% set a = [] %}{% set _ = a.append(a) %}{% for x in a recursive %}{{ loop(x) }}{% endfor %}", NULL,
                 "line 1, column 71: recursive loop nested too deeply (limit 64)");
    /* iterations */
    expect_error("{% for i in range(2000000) %}{% endfor %}", NULL, "line 1, column 13: range() too large (limit 1000000 items)");
    expect_error("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", NULL,
                 "line 1, column 39: too many loop iterations (limit 1000000)");
    jx_options o = {.max_iterations = 10};
    assert_null(render_opts("{% for i in range(5) %}{% for j in range(5) %}{% endfor %}{% endfor %}", NULL, &o, err, sizeof err));
    assert_non_null(strstr(err, "too many loop iterations (limit 10)"));
    /* output size */
    o = (jx_options){.max_output = 1000};
    assert_null(render_opts("{% for i in range(100) %}0123456789-{% endfor %}", NULL, &o, err, sizeof err));
    assert_non_null(strstr(err, "output size limit reached (1000 bytes)"));
    char *out = render_opts("{% for i in range(90) %}0123456789{% endfor %}", NULL, &o, err, sizeof err);
    assert_non_null(out);
    assert_int_equal(strlen(out), 900);
    free(out);
    /* memory */
    expect_error("{{ 'x' * 100000000000 }}", NULL, "line 1, column 8: string repetition too large");
    expect_render("{{ '' * 100000000000 }}{{ [] * 100000000000 }}", NULL, "[]");
    o = (jx_options){.max_memory = 1 << 20};
    assert_null(render_opts("{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", NULL,
                            &o, err, sizeof err));
    assert_non_null(strstr(err, "memory limit reached"));
    /* time */
    /* the other limits raised far out of reach, so that on any machine the
     * clock is what stops this (10^12 iterations) */
    o = (jx_options){.max_time_ms = 50, .max_iterations = 1L << 50, .max_memory = (size_t)1 << 40};
    double t0 = (double)clock() / CLOCKS_PER_SEC;
    assert_null(render_opts("{% set r = range(1000000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}", NULL, &o,
                            err, sizeof err));
    assert_non_null(strstr(err, "time limit"));
    assert_true((double)clock() / CLOCKS_PER_SEC - t0 < 5.0);
    /* values nested without end (cycles) print, compare and serialize cleanly */
    expect_error("{% set a = {} %}{% set _ = a.update({'a': a}) %}{{ a|tojson }}", NULL,
                 "line 1, column 53: tojson: value nested too deeply");
    expect_error("{% set a = [] %}{% set _ = a.append(a) %}{{ a }}", NULL, "line 1, column 42: value nested too deeply to print");
    expect_render("{% set a = {} %}{% set _ = a.update({'a': a}) %}{% set b = {} %}{% set _ = b.update({'a': b}) %}{{ a == b }}",
                  NULL, "False");
    /* slow substring searches are not possible (linear time) */
    expect_render("{% set h = 'a' * 200000 %}{% set n = 'a' * 100000 ~ 'b' %}{{ n in h }}{{ h.rfind(n) }}{{ h.count(n) }}", NULL,
                  "False-10");
}

/* ------------------------------------------------------------- JSON, floats, dates */

/* Parses JSON text; dumps it compact and with indent=2 into out/out_indent
 * (malloc'd), or returns false with the error in err. */
static bool json_round_trip(const char *in, char **out, char **out_indent, char *err, size_t errlen) {
    jx_arena a;
    jmp_buf jb;
    jx_arena_init(&a, 16 << 20);
    jx_env env = {.arena = &a, .jb = &jb, .err = err, .errlen = errlen, .src = in, .srclen = strlen(in)};
    if (setjmp(jb)) {
        jx_arena_free(&a);
        return false;
    }
    jv v = jx_json_parse(&env, in, strlen(in));
    jx_buf b = {0}, bi = {0};
    jx_json_dump(&env, &b, v, -1, NULL, NULL, false, false);
    jx_json_dump(&env, &bi, v, 2, NULL, NULL, false, false);
    *out = strdup(b.p);
    *out_indent = strdup(bi.p);
    jx_arena_free(&a);
    return true;
}

static void test_json(void **state) {
    (void)state;
    static const struct {
        const char *in, *out, *out_indent;
    } cases[] = {
        {"{\"a\": [1, 2.5, \"x\", null, true, false], \"b\": {}}", "{\"a\": [1, 2.5, \"x\", null, true, false], \"b\": {}}",
         "{\n  \"a\": [\n    1,\n    2.5,\n    \"x\",\n    null,\n    true,\n    false\n  ],\n  \"b\": {}\n}"},
        {" [ ] ", "[]", "[]"},
        {"\"\\u00e9\\ud83d\\ude00\\n\\t\\\"\\\\\\/\\u0001\"", "\"\xc3\xa9\xf0\x9f\x98\x80\\n\\t\\\"\\\\/\\u0001\"",
         "\"\xc3\xa9\xf0\x9f\x98\x80\\n\\t\\\"\\\\/\\u0001\""},
        {"[1e2, -0, 0.5, 12345678901234567890, -3]", "[100.0, 0, 0.5, 1.2345678901234567e+19, -3]",
         "[\n  100.0,\n  0,\n  0.5,\n  1.2345678901234567e+19,\n  -3\n]"},
        {"{\"k\": 1, \"k\": 2}", "{\"k\": 2}", "{\n  \"k\": 2\n}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[300], *out, *outi;
        if (!json_round_trip(cases[i].in, &out, &outi, err, sizeof err)) fail_msg("JSON %s: %s", cases[i].in, err);
        assert_string_equal(out, cases[i].out);
        assert_string_equal(outi, cases[i].out_indent);
        free(out);
        free(outi);
    }
    static const struct {
        const char *in, *err;
    } bad[] = {
        {"", "line 1, column 1: invalid JSON: unexpected end of input"},
        {"[1, 2", "line 1, column 6: invalid JSON: expected ',' or ']'"},
        {"{\"a\" 1}", "line 1, column 6: invalid JSON: expected ':'"},
        {"{1: 2}", "line 1, column 2: invalid JSON: expected a string key"},
        {"\"abc", "line 1, column 5: invalid JSON: unterminated string"},
        {"[01]", "line 1, column 3: invalid JSON: expected ',' or ']'"},
        {"tru", "line 1, column 1: invalid JSON: unexpected character"},
        {"\"\\x\"", "line 1, column 3: invalid JSON: bad escape in string"},
        {"[]\n x", "line 2, column 2: invalid JSON: trailing characters after the value"},
        {"\"a\tb\"", "line 1, column 3: invalid JSON: control character in string"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[300] = "", *out, *outi;
        if (json_round_trip(bad[i].in, &out, &outi, err, sizeof err)) fail_msg("JSON %s parsed", bad[i].in);
        assert_string_equal(err, bad[i].err);
    }
    /* deep nesting is refused, not a stack overflow */
    char deep[1000], err[300], *out, *outi;
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = 0;
    assert_false(json_round_trip(deep, &out, &outi, err, sizeof err));
    assert_non_null(strstr(err, "nested too deeply"));
    /* tojson options */
    expect_render("{{ {'b': 1, 'a': [1, {'c': 'é'}]}|tojson(indent=2, sort_keys=true) }}", NULL,
                  "{\n  \"a\": [\n    1,\n    {\n      \"c\": \"é\"\n    }\n  ],\n  \"b\": 1\n}");
    expect_render("{{ 'é😀<&>\\'\\u2028'|tojson(ensure_ascii=true) }}", NULL, "\"\\u00e9\\ud83d\\ude00<&>'\\u2028\"");
    expect_render("{{ [1.5, 1e100, -0.0]|tojson(separators=(',', ':')) }}", NULL, "[1.5,1e+100,-0.0]");
}

static void test_float_repr(void **state) {
    (void)state;
    static const struct {
        double d;
        const char *s;
    } cases[] = {
        {0.0, "0.0"},       {-0.0, "-0.0"},        {1.0, "1.0"},          {0.1, "0.1"},
        {0.30000000000000004, "0.30000000000000004"}, {1.5e-7, "1.5e-07"}, {1e16, "1e+16"},
        {1e15, "1000000000000000.0"}, {123456789.0, "123456789.0"}, {0.0001, "0.0001"}, {0.00001, "1e-05"},
        {2.5, "2.5"},       {1.0 / 3.0, "0.3333333333333333"}, {1e300 * 1e10, "inf"}, {-1e300 * 1e10, "-inf"},
        {1.7976931348623157e308, "1.7976931348623157e+308"}, {5e-324, "5e-324"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        jx_float_repr(cases[i].d, buf, sizeof buf);
        assert_string_equal(buf, cases[i].s);
    }
}

static void test_strftime_now(void **state) {
    (void)state;
    jx_options o = {.now = 1739145600, .now_fixed = true}; /* 2025-02-10 00:00 UTC */
    char err[300];
    char *out = render_opts("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%dT%H:%M:%S') }}|{{ strftime_now is defined }}",
                            NULL, &o, err, sizeof err);
    assert_non_null(out);
    assert_string_equal(out, "10 Feb 2025|2025-02-10T00:00:00|True");
    free(out);
    /* the real clock: a plausible year */
    out = render_opts("{{ strftime_now('%Y')|int > 2023 }}", NULL, NULL, err, sizeof err);
    assert_non_null(out);
    assert_string_equal(out, "True");
    free(out);
}

/* ------------------------------------------------------------- fuzzing */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static const char *const pieces[] = {
    "{{", "}}", "{%", "%}", "{#", "#}", "-", "+", "(", ")", "[", "]", "{", "}", "'", "\"", ",", ".", ":", "|", "~", "*",
    "**", "/", "//", "%", "=", "==", "!=", "<", ">", " ", "\n", "\\", "0", "9", "-1", "1e9", "999999999999999999999",
    "for", "endfor", "if", "elif", "else", "endif", "set", "endset", "macro", "endmacro", "call", "endcall", "in",
    "not", "and", "or", "is", "defined", "none", "true", "loop", "loop.index", "loop.last", "messages", "message",
    "namespace(", "ns.x", "range(", "range(999999)", "raise_exception(", "tojson", "tojson(indent=4)", "trim",
    "length", "items", "[::-1]", "[1:]", "[-1]", "caller()", "recursive", "loop(", "break", "continue", "raw",
    "endraw", "filter", "endfilter", "\xc3\xa9", "\xff", "\xe2\x82", "strftime_now(", "'%d %b %Y'", "* 99999",
    "selectattr(", "map(attribute=", "join", "split(", "dict(", "|list", "|first", "|sort", "%s", "% (1,",
};

static const char *const FUZZ_CTX =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"You are a helpful assistant.\"},"
    " {\"role\": \"user\", \"content\": \"Hello \\u00e9 {{ x }}\"},"
    " {\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"abcdefghi\", \"type\": \"function\","
    " \"function\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}}]},"
    " {\"role\": \"tool\", \"content\": \"22\", \"tool_call_id\": \"abcdefghi\"},"
    " {\"role\": \"user\", \"content\": \"  and now?  \"}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Weather\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}}],"
    " \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_generation_prompt\": true}";

/* A plain conversation every template accepts. */
static const char *const FUZZ_CTX_PLAIN =
    "{\"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}, {\"role\": \"assistant\", \"content\": \"Hi there\"},"
    " {\"role\": \"user\", \"content\": \"Who are you?\"}], \"bos_token\": \"<s>\", \"eos_token\": \"</s>\","
    " \"add_generation_prompt\": true}";

static char *mutate(const char *src, size_t n, size_t *out_n) {
    size_t cap = n + 4096;
    char *b = malloc(cap);
    assert_non_null(b);
    memcpy(b, src, n);
    size_t len = n;
    int rounds = rnd() % 4 ? 1 : 2 + (int)(rnd() % 3); /* mostly one change: more of them still parse */
    for (int r = 0; r < rounds; r++) {
        size_t pos = len ? rnd() % (len + 1) : 0;
        switch (rnd() % 5) {
        case 0: /* overwrite a byte */
            if (len) b[pos % len] = (char)(rnd() & 0xFF);
            break;
        case 1: { /* insert a piece of the language */
            const char *p = pieces[rnd() % (sizeof pieces / sizeof pieces[0])];
            size_t k = strlen(p);
            if (len + k >= cap) break;
            memmove(b + pos + k, b + pos, len - pos);
            memcpy(b + pos, p, k);
            len += k;
            break;
        }
        case 2: { /* delete a range */
            size_t k = 1 + rnd() % 24;
            if (pos + k > len) k = len - pos;
            memmove(b + pos, b + pos + k, len - pos - k);
            len -= k;
            break;
        }
        case 3: { /* duplicate a range */
            size_t k = 1 + rnd() % 64;
            if (pos + k > len) k = len - pos;
            if (len + k >= cap) break;
            memmove(b + pos + 2 * k, b + pos + k, len - pos - k);
            memcpy(b + pos + k, b + pos, k);
            len += k;
            break;
        }
        default: { /* swap two bytes */
            if (len < 2) break;
            size_t q = rnd() % len;
            char t = b[pos % len];
            b[pos % len] = b[q];
            b[q] = t;
        }
        }
    }
    *out_n = len;
    return b;
}

static void test_fuzz_mutations(void **state) {
    (void)state;
    char dir[4096];
    const char *src_dir = getenv("NSTACK_SOURCE_DIR");
    snprintf(dir, sizeof dir, "%s/tests/data/templates", src_dir && *src_dir ? src_dir : ".");
    DIR *d = opendir(dir);
    if (!d) fail_msg("cannot open %s", dir);
    char *seeds[64];
    size_t seed_len[64];
    int nseeds = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nseeds < 64) {
        size_t k = strlen(e->d_name);
        if (k < 7 || strcmp(e->d_name + k - 6, ".jinja") != 0) continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        seeds[nseeds] = ns_test_read_file(path, &seed_len[nseeds]);
        assert_non_null(seeds[nseeds]);
        nseeds++;
    }
    closedir(d);
    assert_true(nseeds >= 10);
    jx_options o = {.max_iterations = 20000, .max_output = 256 << 10, .max_memory = 16 << 20, .max_call_depth = 32,
                    .max_time_ms = 2000, .now = 1721952000, .now_fixed = true};
    int rendered = 0, failed = 0, parsed = 0;
    /* NSTACK_FUZZ_ITERS / NSTACK_FUZZ_SEED run a longer or another campaign */
    const char *env_iters = getenv("NSTACK_FUZZ_ITERS"), *env_seed = getenv("NSTACK_FUZZ_SEED");
    const int iterations = env_iters ? atoi(env_iters) : 3000;
    if (env_seed) rng_state = strtoull(env_seed, NULL, 10) * 0x9E3779B97F4A7C15ull + 1;
    for (int it = 0; it < iterations; it++) {
        int s = (int)(rnd() % (unsigned)nseeds);
        size_t n;
        char *m = mutate(seeds[s], seed_len[s], &n);
        char err[600] = "";
        jx_template *t = jx_template_parse(m, n, err, sizeof err);
        if (t) {
            parsed++;
            const char *ctx = (it & 1) ? FUZZ_CTX : FUZZ_CTX_PLAIN;
            char *out = jx_template_render(t, &o, setup_json, (void *)ctx, err, sizeof err, NULL);
            if (out) {
                rendered++;
                free(out);
            } else {
                failed++;
            }
            jx_template_free(t);
        } else {
            failed++;
        }
        if (err[0] && strncmp(err, "line ", 5) != 0) fail_msg("error without a position: %s", err);
        free(m);
    }
    /* pure noise too */
    for (int it = 0; it < 300; it++) {
        char noise[256];
        size_t n = rnd() % sizeof noise;
        for (size_t i = 0; i < n; i++) noise[i] = (char)(rnd() % 4 ? pieces[rnd() % 20][0] : (char)rnd());
        char err[600];
        jx_template *t = jx_template_parse(noise, n, err, sizeof err);
        if (t) {
            char *out = jx_template_render(t, &o, setup_json, (void *)FUZZ_CTX, err, sizeof err, NULL);
            free(out);
            jx_template_free(t);
        }
    }
    printf("  fuzz: %d mutated templates, %d parsed, %d rendered, %d failed cleanly\n", iterations, parsed, rendered, failed);
    assert_true(parsed > iterations / 4);
    assert_true(rendered > iterations / 10);
    for (int i = 0; i < nseeds; i++) free(seeds[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_table), cmocka_unit_test(test_newlines),      cmocka_unit_test(test_errors),
        cmocka_unit_test(test_limits),       cmocka_unit_test(test_json),          cmocka_unit_test(test_float_repr),
        cmocka_unit_test(test_strftime_now), cmocka_unit_test(test_fuzz_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
