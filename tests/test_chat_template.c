/* Tests for the chat template renderer (core/text/chat_template*.c).
 *
 * The reference is Python Jinja2 3.1.6 set up as transformers sets it up
 * (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols,
 * tojson = json.dumps(ensure_ascii=False), raise_exception, strftime_now):
 *
 *   - every conversation in tests/data/tokenizers/{qwen3,llama3,gemma3}/chat.jsonl
 *     must render byte for byte as its `rendered` field;
 *   - the construct tables below hold templates whose expected outputs were
 *     produced by that same Python setup (they are data, not code of ours);
 *   - error cases check that unsupported or broken templates fail with a
 *     message naming the problem, and that limits stop runaway templates.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat_template.h"
#include "json.h"
#include "testutil.h"

typedef struct {
    const char *tmpl;
    const char *vars;   /* JSON object: `messages`, `add_generation_prompt` and extra variables */
    const char *expect; /* output, or for error cases a substring of the message */
} render_case;

/* Renders tmpl with vars; returns 0 and *out on success, -1 and err otherwise. */
static int render(const char *tmpl, size_t tlen, const char *vars, char **out, size_t *out_len, char *err,
                  size_t errlen) {
    *out = NULL;
    qrm_template *t = qrm_template_compile(tmpl, tlen, err, errlen);
    if (!t) return -1;
    char jerr[256];
    qj_doc *d = qj_parse(vars, strlen(vars), jerr, sizeof jerr);
    ck_assert_msg(d != NULL, "bad test vars %s: %s", vars, jerr);
    const qj_value *root = qj_root(d);
    int rc = qrm_template_render(t, qj_get(root, "messages"), root, qj_get_bool(root, "add_generation_prompt", 0), out,
                                 out_len, err, errlen);
    qj_free(d);
    qrm_template_free(t);
    return rc;
}

static void run_table(const char *what, const render_case *cases, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char *out, err[512];
        size_t len;
        int rc = render(cases[i].tmpl, strlen(cases[i].tmpl), cases[i].vars, &out, &len, err, sizeof err);
        ck_assert_msg(rc == 0, "%s case %zu (%s) failed: %s", what, i, cases[i].tmpl, err);
        ck_assert_msg(len == strlen(cases[i].expect) && memcmp(out, cases[i].expect, len) == 0,
                      "%s case %zu: %s\n  got:  [%s]\n  want: [%s]", what, i, cases[i].tmpl, out, cases[i].expect);
        ck_assert_msg(out[len] == 0, "output not NUL-terminated");
        free(out);
    }
}

/* ---------------------------------------------------------------- constructs
 * Expected outputs: Python Jinja2 3.1.6 in the transformers setup. */

static const render_case whitespace_cases[] = {
    {"a\n  {% if 1 %}\n  b\n  {% endif %}\nc",
     "{}",
     "a\n  b\nc"},
    {"a\n  {%- if 1 %}\n  b\n  {%- endif %}\nc",
     "{}",
     "a  bc"},
    {"a\n  {% if 1 -%}\n  b\n  {% endif -%}\n  c",
     "{}",
     "a\nb\nc"},
    {"\t \t{% if 1 %}\nx\n{% endif %}",
     "{}",
     "x\n"},
    {"a {% if 1 %}b{% endif %} c",
     "{}",
     "a b c"},
    {"a\n  {{ 1 }}\n  b",
     "{}",
     "a\n  1\n  b"},
    {"a\n  {{- 1 -}}\n  b",
     "{}",
     "a1b"},
    {"a\n  {%+ if 1 %}x{% endif +%}\nb",
     "{}",
     "a\n  x\nb"},
    {"a\n  {# comment #}\nb",
     "{}",
     "a\nb"},
    {"a\n  {#- comment -#}\n  b",
     "{}",
     "ab"},
    {"a\n  {# comment +#}\nb",
     "{}",
     "a\n\nb"},
    {"{% raw %}{{ not evaluated }}{% endraw %}",
     "{}",
     "{{ not evaluated }}"},
    {"a\n  {% raw %}\n  {{ x }}\n  {% endraw %}\nb",
     "{}",
     "a\n\n  {{ x }}\nb"},
    {"line\n",
     "{}",
     "line"},
    {"line\n\n",
     "{}",
     "line\n"},
    {"{% for i in [1,2] %}\n  {{ i }}\n{% endfor %}\n",
     "{}",
     "  1\n  2\n"},
    {"{% for i in [1,2] -%}\n  {{ i }}\n{%- endfor %}",
     "{}",
     "12"},
    {"x   {{- 1 }}   {{ 2 -}}   y",
     "{}",
     "x1   2y"},
    {"{% if 1 %}\r\nx\r\n{% endif %}\r\nend",
     "{}",
     "x\nend"},
    {"{# multi\nline #}\nx",
     "{}",
     "x"},
    {"{%- if 1 %}\n    x\n{%- endif %}",
     "{}",
     "    x"},
    {"{{ 'a\\\nb' }}{{ 'tab\\\tx' }}{{ \"\\\\u00e9\" }}{{ '\\\\x41' }}{{ '\\\\101' }}{{ '\\\\q' }}{{ \"it's\" }}{{ 'a' 'b' \"c\" }}",
     "{}",
     "abtab\\\tx\\u00e9\\x41\\101\\qit'sabc"},
    {"a\n\302\240\302\240{% if 1 %}x{% endif %}|\343\200\200{% if 1 %}y{% endif %}",
     "{}",
     "a\nx|\343\200\200y"},
    {"a\n\343\200\200{%- if 1 %}x{% endif %}{% if 1 -%}\342\200\250\302\240\013\034z{% endif %}",
     "{}",
     "axz"},
    {"{{ \"\034\" }}{{- \"x\" -}}\302\205\342\201\237{{ \"y\" }}",
     "{}",
     "\034xy"},
};

static const render_case expressions_cases[] = {
    {"{{ 1 }}{{ 1.5 }}{{ \"a\" }}{{ none }}{{ true }}{{ false }}{{ [1, \"a\", none] }}{{ {\"a\": 1} }}{{ (1,) }}{{ () }}",
     "{}",
     "11.5aNoneTrueFalse[1, 'a', None]{'a': 1}(1,)()"},
    {"{{ 1e16 }}{{ 1e-5 }}{{ 0.1 + 0.2 }}{{ 10 / 4 }}{{ 7 // 2 }}{{ -7 // 2 }}{{ -7 % 3 }}{{ 7 % -3 }}{{ 2 ** 10 }}{{ 2 ** -1 }}{{ 7.5 // 2 }}{{ -7.5 % 2 }}",
     "{}",
     "1e+161e-050.300000000000000042.53-42-210240.53.00.5"},
    {"{{ 1_000 }}{{ 0x1F }}{{ 0b101 }}{{ 0o17 }}{{ 1.5e3 }}{{ 1.0 }}{{ 100.0 }}{{ 1e15 }}{{ 123456789.123 }}{{ 0.0001 }}{{ -0.0 }}{{ 1/3 }}",
     "{}",
     "1000315151500.01.0100.01000000000000000.0123456789.1230.0001-0.00.3333333333333333"},
    {"{{ \"a\" ~ 1 ~ none ~ true }}{{ \"ab\" * 3 }}{{ 3 * \"ab\" }}{{ [1] * 2 }}{{ [1] + [2] }}",
     "{}",
     "a1NoneTrueabababababab[1, 1][1, 2]"},
    {"{{ 1 == 1.0 }}{{ 1 == true }}{{ \"a\" < \"b\" }}{{ 1 < 2 < 3 }}{{ 3 > 2 > 2 }}{{ \"a\" in \"cat\" }}{{ 1 in [1,2] }}{{ \"x\" not in {\"x\": 1} }}{{ (1, 2) == [1, 2] }}{{ [1, 2] < [1, 3] }}",
     "{}",
     "TrueTrueTrueTrueFalseTrueTrueFalseFalseTrue"},
    {"{{ not 1 }}{{ 1 and 2 }}{{ 0 or \"x\" }}{{ none or [] }}{{ 1 if false }}|{{ 1 if false else 2 }}{{ \"y\" if 1 }}",
     "{}",
     "False2x[]|2y"},
    {"{{ -2 ** 2 }}{{ - 3 | abs }}{{ 'a' ~ 1 + 2 if false else 'z' }}",
     "{}",
     "43z"},
    {"{{ \"abc\"[0] }}{{ \"abc\"[-1] }}{{ \"abc\"[1:] }}{{ \"abc\"[::-1] }}{{ \"h\303\251llo\"[1:3] }}{{ [1,2,3][::2] }}{{ \"abc\"[5] }}|{{ [1][5] }}|{{ \"abcdef\"[-2:1:-1] }}",
     "{}",
     "acbccba\303\251l[1, 3]||edc"},
    {"{{ x.y }}|{{ x['y'] }}|{{ x.z }}|{{ x.items() }}|{{ x.keys() }}|{{ x.values() }}|{{ x.get('y') }}{{ x.get('q', 5) }}{{ x.get('q') }}",
     "{\"x\": {\"y\": 1}}",
     "1|1||dict_items([('y', 1)])|dict_keys(['y'])|dict_values([1])|15None"},
    {"{{ [\"\303\251\", \"\\u200b\", \"a'b\", 'a\"b', \"a'\\\"b\", \"\\x7f\", \"\\u00a0\", \"\\\\\"] }}{{ {\"a\": (\"b\",), 1.5: [none, false]} }}",
     "{}",
     "['\303\251', '\\u200b', \"a'b\", 'a\"b', 'a\\'\"b', '\\x7f', '\\xa0', '\\\\']{'a': ('b',), 1.5: [None, False]}"},
    {"{{ messages[0].content }}{{ messages[0]['role'] }}{{ messages|length }}",
     "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}",
     "hiuser1"},
    {"{{ messages[0].content[0].text }}{{ messages[0].content is string }}{{ messages[0].content }}",
     "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}]}",
     "hiFalse[{'type': 'text', 'text': 'hi'}]"},
    {"{{ {}.x }}|{{ {}.x is defined }}{{ none.x is defined }}{{ messages[5] is defined }}",
     "{\"messages\":[]}",
     "|FalseFalseFalse"},
    {"{{ \"%s-%d\" % (\"a\", 3) }}{{ \"%.2f\" % 3.14159 }}{{ \"%5s|%-4s|\" % (\"ab\", \"c\") }}{{ \"%r\" % \"a\" }}{{ \"%x\" % 255 }}{{ \"%03d\" % 7 }}{{ \"%(a)s\" % {\"a\": 1} }}{{ \"%d%%\" % 50 }}",
     "{}",
     "a-33.14   ab|c   |'a'ff007150%"},
};

static const render_case statements_cases[] = {
    {"{% if 1 %}a{% elif 2 %}b{% else %}c{% endif %}{% if 0 %}a{% elif 2 %}b{% else %}c{% endif %}{% if 0 %}a{% elif 0 %}b{% else %}c{% endif %}",
     "{}",
     "abc"},
    {"{% for k, v in x.items() %}{{ k }}={{ v }};{% endfor %}{% for k in x %}{{ k }}{% endfor %}",
     "{\"x\": {\"y\": 1, \"z\": [2]}}",
     "y=1;z=[2];yz"},
    {"{% for x in [1,2,3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }}{{ loop.cycle('a','b') }}{{ loop.depth }}|{% endfor %}",
     "{}",
     "1032TrueFalse32a1|2121FalseFalse313b1|3210FalseTrue32a1|"},
    {"{% for x in [] %}a{% else %}b{% endfor %}{% for x in [1,2,3,4] if x is even %}{{ loop.index }}:{{ x }},{% endfor %}",
     "{}",
     "b1:2,2:4,"},
    {"{% for x in [1,2,3] %}{% if x == 2 %}{% continue %}{% endif %}{{ x }}{% endfor %}{% for x in [1,2,3] %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}",
     "{}",
     "131"},
    {"{% for i in items %}A{% for j in items %}B{% continue %}{% else %}E{% endfor %}C{% else %}F{% endfor %}",
     "{\"items\": [1, 2]}",
     "ABBECABBEC"},
    {"{% for a, b in [[1, 2], [3, 4]] %}{{ a }}{{ b }}{% endfor %}{% for (a, b) in {\"x\": 1}.items() %}{{ a }}{{ b }}{% endfor %}",
     "{}",
     "1234x1"},
    {"{% for i in [1] %}{{ loop.index }}{% for j in [1,2] %}{{ loop.index }}{% endfor %}{{ loop.index }}{% endfor %}{% for i in [1,2,3] %}{{ loop.changed(i // 2) }}{% endfor %}",
     "{}",
     "1121TrueTrueFalse"},
    {"{% set x = 1 %}{% for i in [1,2] %}{{ x }}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}",
     "{}",
     "12121"},
    {"{% set ns = namespace(a=1, b=[]) %}{% for i in [1,2] %}{% set ns.a = ns.a + i %}{% endfor %}{{ ns.a }}{{ ns.b }}{{ ns.c }}{{ ns }}",
     "{}",
     "4[]<Namespace {'a': 4, 'b': []}>"},
    {"{% set a, b = [1, 2] %}{{ a }}{{ b }}{% set c = 1, 2 %}{{ c }}{% set d = {\"k\": [1]} %}{{ d.k[0] }}",
     "{}",
     "12(1, 2)1"},
    {"{% macro m(a, b=2) %}[{{ a }}{{ b }}]{% endmacro %}{{ m(1) }}{{ m(1, 3) }}{{ m(b=5, a=4) }}{{ m() }}",
     "{}",
     "[12][13][45][2]"},
    {"{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, x=4) }}",
     "{}",
     "1(2, 3){'x': 4}"},
    {"{% macro m(a) %}[{{ caller() }}{{ a }}]{% endmacro %}{% call m(1) %}body{% endcall %}{% macro n() %}<{{ caller(7) }}>{% endmacro %}{% call(x) n() %}got {{ x }}{% endcall %}",
     "{}",
     "[body1]<got 7>"},
    {"{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}",
     "{}",
     "54321"},
    {"{% set x %}captured {{ 1 + 1 }}{% endset %}[{{ x }}]{% set y | upper %}abc{% endset %}{{ y }}",
     "{}",
     "[captured 2]ABC"},
    {"{% filter upper %}hello {{ \"w\" }}{% endfilter %}{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a }}",
     "{}",
     "HELLO W3"},
    {"{% generation %}{% set y = \"a\" %}{{ y }}{% endgeneration %}{{ y }}",
     "{}",
     "a"},
    {"{% print 1, \"x\" %}",
     "{}",
     "1x"},
};

static const render_case scoping_cases[] = {
    {"{{ x }}{% set x = 1 %}{{ x }}",
     "{\"x\":\"X\"}",
     "X1"},
    {"{% for i in [1] %}{{ x }}{% endfor %}{% set x = 1 %}{{ x }}",
     "{\"x\":\"X\"}",
     "1"},
    {"{% for i in [1,2] %}{{ x }}{% endfor %}{% if false %}{% set x = 1 %}{% endif %}{{ x }}",
     "{\"x\":\"X\"}",
     "XXX"},
    {"{% macro m() %}{{ x }}{% endmacro %}{{ m() }}{% set x = 1 %}{{ m() }}",
     "{\"x\":\"X\"}",
     "1"},
    {"{% set x %}{% set y = 1 %}{{ y }}{% endset %}[{{ x }}]{{ y }}",
     "{}",
     "[1]"},
    {"{% for x in [] %}{% else %}{% set y = 1 %}{{ y }}{% endfor %}{{ y }}",
     "{}",
     "1"},
    {"{% if true %}{% set y = 1 %}{% endif %}{{ y }}{% for i in [1] %}{% set z = 1 %}{% endfor %}{{ z }}",
     "{}",
     "1"},
    {"{% for i in [1,2] %}{% set x %}a{% break %}b{% endset %}[{{ x }}]{% endfor %}after{{ x }}",
     "{}",
     "after"},
};

static const render_case filters_cases[] = {
    {"{{ \"  x  \" | trim }}|{{ \"xxaxx\" | trim(\"x\") }}|{{ \" A b \"|upper }}|{{ \"A B\"|lower }}|{{ \"hello world-foo(bar\"|title }}|{{ \"hELLO wORLD\"|capitalize }}",
     "{}",
     "x|a| A B |a b|Hello World-Foo(Bar|Hello world"},
    {"{{ \"abc\"|length }}{{ [1,2]|length }}{{ {\"a\":1}|length }}{{ \"aaa\"|replace(\"a\",\"b\") }}{{ \"aaa\"|replace(\"a\",\"b\",2) }}{{ \"abc\"|replace(\"\",\"-\") }}",
     "{}",
     "321bbbbba-a-b-c-"},
    {"{{ x | default(\"d\") }}{{ none | default(\"d\") }}{{ \"\" | default(\"d\", true) }}{{ x | d(\"e\") }}",
     "{}",
     "dNonede"},
    {"{{ [3,1,2]|sort }}{{ [\"b\",\"A\",\"a\"]|sort }}{{ [\"b\",\"A\",\"a\"]|sort(case_sensitive=true) }}{{ [3,1,2]|sort(reverse=true) }}{{ [{\"a\":2},{\"a\":1}]|sort(attribute=\"a\") }}",
     "{}",
     "[1, 2, 3]['A', 'a', 'b']['A', 'a', 'b'][3, 2, 1][{'a': 1}, {'a': 2}]"},
    {"{{ [1,2,3]|join(\",\") }}{{ [1,2,3]|join }}{{ [{\"a\":1},{\"a\":2}]|join(\",\", attribute=\"a\") }}",
     "{}",
     "1,2,31231,2"},
    {"{{ [1,2]|first }}{{ [1,2]|last }}{{ \"ab\"|first }}{{ []|first }}|{{ [1,2]|reverse|list }}{{ \"abc\"|reverse }}{{ \"ab\"|list }}",
     "{}",
     "12a|[2, 1]cba['a', 'b']"},
    {"{{ [{\"r\":\"u\"},{\"r\":\"a\"}]|selectattr(\"r\",\"equalto\",\"u\")|list }}{{ [{\"r\":\"u\"},{\"r\":\"a\"}]|rejectattr(\"r\",\"equalto\",\"u\")|list }}{{ [1,2,3,4]|select(\"odd\")|list }}{{ [1,2,3,4]|reject(\"odd\")|list }}",
     "{}",
     "[{'r': 'u'}][{'r': 'a'}][1, 3][2, 4]"},
    {"{{ [{\"a\":1},{\"b\":2}]|map(attribute=\"a\")|list }}{{ [{\"a\":1},{\"b\":2}]|map(attribute=\"a\", default=0)|list }}{{ [\"a\",\"b\"]|map(\"upper\")|list }}{{ [1,2]|map(\"string\")|join(\"+\") }}",
     "{}",
     "[1, Undefined][1, 0]['A', 'B']1+2"},
    {"{{ {\"b\":1,\"a\":2}|dictsort }}{{ {\"b\":1,\"a\":2}|items|list }}{{ [1,1,2,\"a\",\"A\"]|unique|list }}{{ [3,1]|min }}{{ [3,1]|max }}{{ [1,2,3]|sum }}{{ [1,2,3,4,5]|batch(2)|list }}{{ [1,2,3,4,5]|slice(2)|list }}",
     "{}",
     "[('a', 2), ('b', 1)][('b', 1), ('a', 2)][1, 2, 'a']136[[1, 2], [3, 4], [5]][[1, 2, 3], [4, 5]]"},
    {"{{ \"42\"|int }}{{ \"42.7\"|int }}{{ \"x\"|int }}{{ \"x\"|int(7) }}{{ 4.9|int }}{{ \"0x1A\"|int(0, 16) }}{{ \"3.5\"|float }}{{ \"x\"|float }}{{ 2.5|round }}{{ 3.5|round }}{{ 2.675|round(2) }}{{ 2.1|round(0,'ceil') }}{{ -3|abs }}{{ 3|string }}",
     "{}",
     "4242074263.50.02.04.02.673.033"},
    {"{{ {\"a\": [1, \"\303\251\", none, true, 1.5]}|tojson }}{{ {\"a\": {\"b\": [1, 2]}, \"c\": []}|tojson(indent=2) }}{{ \"q\\\"\\\\\n\t\"|tojson }}{{ {\"b\":1,\"a\":2}|tojson(sort_keys=true) }}{{ \"\303\251\360\237\230\200\"|tojson(ensure_ascii=true) }}{{ {\"a\": 1}|tojson(separators=(\",\", \":\")) }}",
     "{}",
     "{\"a\": [1, \"\303\251\", null, true, 1.5]}{\n  \"a\": {\n    \"b\": [\n      1,\n      2\n    ]\n  },\n  \"c\": []\n}\"q\\\"\\\\\\n\\t\"{\"a\": 2, \"b\": 1}\"\\u00e9\\ud83d\\ude00\"{\"a\":1}"},
    {"{{ x|tojson }}",
     "{\"x\": {\"name\": \"f\", \"parameters\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\", \"enum\": [\"x\", \"y\"]}}, \"required\": [\"a\"]}}}",
     "{\"name\": \"f\", \"parameters\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\", \"enum\": [\"x\", \"y\"]}}, \"required\": [\"a\"]}}"},
    {"{{ \"<a>\"|e }}{{ \"<a>\"|escape }}{{ \"<a>\"|safe }}{{ (\"<a>\"|safe) + \"<b>\" }}{{ \"x\"|center(7) }}|{{ \"a\nb\n\nc\"|indent(2) }}|{{ \"a\nb\"|indent(2, true) }}|{{ \"one two three\"|wordcount }}",
     "{}",
     "&lt;a&gt;&lt;a&gt;<a><a>&lt;b&gt;   x   |a\n  b\n\n  c|  a\n  b|3"},
    {"{{ \"hello world foo bar\"|truncate(9) }}{{ \"hello world foo bar\"|truncate(9, true) }}{{ \"%s-%d\"|format(\"a\", 3) }}",
     "{}",
     "hello...hello ...a-3"},
    {"{{ messages|selectattr(\"role\", \"equalto\", \"user\")|list|length }}{{ messages|map(attribute=\"role\")|join(\",\") }}{{ (messages|last).content }}",
     "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"}]}",
     "1user,assistantb"},
    {"{% set u = messages|selectattr(\"role\",\"eq\",\"user\") %}{% for m in u %}1{% endfor %}{% for m in u %}2{% endfor %}",
     "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}",
     "1"},
    {"{{ \"  \\u3000x\\u00a0 \"|trim }}|{{ \"\\ufeffx\\ufeff\"|trim }}|{{ \"\\x1cx\\x1f\"|trim }}|{{ \"\\u0085x\"|trim }}",
     "{}",
     "x|\357\273\277x\357\273\277|x|x"},
};

static const render_case tests_cases[] = {
    {"{{ x is defined }}{{ x is undefined }}{{ none is none }}{{ 1 is number }}{{ 1 is integer }}{{ 1.0 is float }}{{ \"a\" is string }}{{ {} is mapping }}{{ [] is sequence }}{{ [] is iterable }}{{ true is boolean }}{{ true is true }}{{ false is false }}{{ 1 is true }}",
     "{}",
     "FalseTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueFalse"},
    {"{{ 2 is even }}{{ 3 is odd }}{{ 9 is divisibleby 3 }}{{ 1 is eq 1 }}{{ 1 is equalto 1 }}{{ 1 is ne 2 }}{{ 2 is gt 1 }}{{ 1 is lt 2 }}{{ 1 is in [1] }}{{ \"a\" is lower }}{{ \"A\" is upper }}{{ x is not defined }}{{ not x is defined }}",
     "{}",
     "TrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrue"},
    {"{{ foo is sequence }}{{ foo is iterable }}{{ none is sequence }}{{ {}.items() is sequence }}{{ \"\" is sequence }}{{ 1 is iterable }}{{ true is integer }}{{ \"upper\" is filter }}{{ \"odd\" is test }}",
     "{}",
     "TrueTrueFalseFalseTrueFalseFalseTrueTrue"},
};

static const render_case methods_cases[] = {
    {"{{ \"  a b  \".strip() }}|{{ \"xxaxx\".strip(\"x\") }}|{{ \"\n\na\".lstrip(\"\n\") }}|{{ \"a\n\n\".rstrip(\"\n\") }}|{{ \"abc\".startswith(\"ab\") }}{{ \"abc\".endswith((\"x\",\"c\")) }}{{ \"a b  c\".split() }}{{ \"a,b,c\".split(\",\", 1) }}{{ \"a,b,c\".rsplit(\",\", 1) }}{{ \" a b \".split(None, 1) }}",
     "{}",
     "a b|a|a|a|TrueTrue['a', 'b', 'c']['a', 'b,c']['a,b', 'c']['a', 'b ']"},
    {"{{ \"abc\".upper() }}{{ \"ABC\".lower() }}{{ \"hello world\".title() }}{{ \"they're bill's\".title() }}{{ \"abc\".find(\"c\") }}{{ \"abc\".find(\"z\") }}{{ \"aaa\".count(\"a\") }}{{ \"-\".join([\"a\",\"b\"]) }}{{ \"{} and {}\".format(1, 2) }}{{ \"{x}!\".format(x=\"hi\") }}",
     "{}",
     "ABCabcHello WorldThey'Re Bill'S2-13a-b1 and 2hi!"},
    {"{{ \"a\nb\r\nc\".splitlines() }}{{ \"abc\".replace(\"b\", \"X\") }}{{ \"Ab1\".isalnum() }}{{ \"12\".isdigit() }}{{ \" \".isspace() }}{{ \"ab\".isalpha() }}{{ \"abc\".rfind(\"b\") }}{{ \"abc\".index(\"b\") }}{{ \"a-b\".partition(\"-\") }}{{ \"ab\".zfill(4) }}{{ \"ab\".ljust(4, \"*\") }}|{{ \"ab\".rjust(4) }}",
     "{}",
     "['a', 'b', 'c']aXcTrueTrueTrueTrue11('a', '-', 'b')00abab**|  ab"},
    {"{{ \"{:>5}\".format(\"a\") }}{{ \"{:<5}|\".format(\"a\") }}{{ \"{:^5}|\".format(\"a\") }}{{ \"{:05d}\".format(42) }}{{ \"{:.2f}\".format(3.14159) }}{{ \"{0}{0}\".format(\"x\") }}{{ \"{!r}\".format(\"x\") }}{{ \"{a[b]}\".format(a={\"b\": 1}) }}",
     "{}",
     "    aa    |  a  |000423.14xx'x'1"},
    {"{{ \"h\303\251llo w\303\266rld\"|length }}{{ \"h\303\251llo\"[1] }}{{ \"h\303\251llo\"|reverse }}{{ \"\346\227\245\346\234\254\350\252\236\"[1:] }}{{ \"\346\227\245\346\234\254\350\252\236\"|list }}{{ \"abc\".find(\"c\", 1) }}{{ \"aXbXc\".count(\"X\", 2) }}{{ \"h\303\251llo\".find(\"l\") }}{{ \"abc\".startswith(\"b\", 1) }}",
     "{}",
     "11\303\251oll\303\251h\346\234\254\350\252\236['\346\227\245', '\346\234\254', '\350\252\236']212True"},
    {"{{ \"\303\211COLE\"|lower }}{{ \"stra\303\237e\"|upper }}{{ \"\316\243\316\221\316\243\"|lower }}{{ \"\303\237a\"|title }}{{ \"\303\261and\303\272\"|title }}{{ \"\320\237\320\240\320\230\320\222\320\225\320\242 \320\274\320\270\321\200\"|title }}",
     "{}",
     "\303\251coleSTRASSE\317\203\316\261\317\202SSa\303\221and\303\272\320\237\321\200\320\270\320\262\320\265\321\202 \320\234\320\270\321\200"},
    {"{{ range(3)|list }}{{ range(1, 7, 2)|list }}{{ range(5)[1] }}{{ range(3) }}{{ dict(a=1) }}{{ namespace(a=1).a }}{{ range(10)[2:8:2] }}",
     "{}",
     "[0, 1, 2][1, 3, 5]1range(0, 3){'a': 1}1range(2, 8, 2)"},
    {"{{ d.update }}|{{ [1].append }}|",
     "{\"d\": {}}",
     "||"},
    {"{{ strftime_now(\"%Y\")|length }}",
     "{}",
     "4"},
};

static const render_case templates_cases[] = {
    {"{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
     "{\"add_generation_prompt\": true}",
     "<|im_start|>assistant\n"},
    {"{%- for m in messages %}{{ '<|im_start|>' + m.role + '\n' + m.content | trim + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
     "{\"add_generation_prompt\": false, \"messages\": [{\"role\": \"user\", \"content\": \" a \"}, {\"role\": \"assistant\", \"content\": \"b\\n\"}]}",
     "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nb<|im_end|>\n"},
    {"{{ bos_token }}{% for message in messages %}{{ message['role'] + ': ' + message['content'] }}<|eot_id|>{% endfor %}",
     "{\"bos_token\": \"<|begin_of_text|>\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"hello\"}]}",
     "<|begin_of_text|>user: hi<|eot_id|>assistant: hello<|eot_id|>"},
};

#define TABLE_TEST(name)                                                    \
    START_TEST(test_##name) {                                               \
        run_table(#name, name##_cases, sizeof name##_cases / sizeof name##_cases[0]); \
    }                                                                       \
    END_TEST

TABLE_TEST(whitespace)
TABLE_TEST(expressions)
TABLE_TEST(statements)
TABLE_TEST(scoping)
TABLE_TEST(filters)
TABLE_TEST(tests)
TABLE_TEST(methods)
TABLE_TEST(templates)

/* ---------------------------------------------------------------- errors */

static void expect_error(const char *tmpl, size_t tlen, const char *vars, const char *want1, const char *want2) {
    char *out, err[512];
    size_t len;
    int rc = render(tmpl, tlen, vars, &out, &len, err, sizeof err);
    ck_assert_msg(rc != 0, "template %s should fail but rendered [%s]", tmpl, rc == 0 ? out : "");
    ck_assert_msg(out == NULL, "no output on error");
    ck_assert_msg(strncmp(err, "chat template: ", 15) == 0, "message prefix: %s", err);
    ck_assert_msg(strchr(err, '\n') == NULL, "one-line message: %s", err);
    ck_assert_msg(strstr(err, want1) != NULL, "template %s: message [%s] lacks [%s]", tmpl, err, want1);
    if (want2) ck_assert_msg(strstr(err, want2) != NULL, "template %s: message [%s] lacks [%s]", tmpl, err, want2);
}

static const struct {
    const char *tmpl, *vars, *want1, *want2;
} error_cases[] = {
    /* syntax: the message names the construct and the line */
    {"{% if x %}never closed", "{}", "unclosed 'if' block", "line 1"},
    {"a\n{% for x in y %}\nbody", "{}", "unclosed 'for' block", "line 2"},
    {"{% macro m() %}", "{}", "unclosed 'macro' block", "endmacro"},
    {"{{ x ", "{}", "unexpected end of template", NULL},
    {"{{ x }", "{}", "unexpected '}'", NULL},
    {"{{ (x] }}", "{}", "unexpected ']'", NULL},
    {"a\n\n{# never closed", "{}", "missing end of comment tag", "line 3"},
    {"{% raw %}x", "{}", "missing end of raw directive", NULL},
    {"{{ 'abc }}", "{}", "unterminated string", NULL},
    {"{{ 1 + }}", "{}", "unexpected end of print statement", NULL},
    {"{% for %}{% endfor %}", "{}", "expected an expression", NULL},
    {"{% endif %}", "{}", "unexpected 'endif'", NULL},
    {"{% if 1 %}{% endfor %}{% endif %}", "{}", "unexpected 'endfor'", NULL},
    {"{% foo %}", "{}", "unknown tag 'foo'", NULL},
    {"{% include 'x.jinja' %}", "{}", "unsupported tag 'include'", NULL},
    {"{% extends 'base' %}", "{}", "unsupported tag 'extends'", NULL},
    {"{% for x in y recursive %}{% endfor %}", "{}", "recursive", NULL},
    {"{% break %}", "{}", "'break' outside of a for loop", NULL},
    {"{% for x in y %}{% macro m() %}{% continue %}{% endmacro %}{% endfor %}", "{}", "'continue' outside", NULL},
    {"{{ x | nosuchfilter }}", "{}", "no filter named 'nosuchfilter'", NULL},
    {"{% set 1 = 2 %}", "{}", "can't assign", NULL},
    {"{{ 99999999999999999999 }}", "{}", "integer literal too large", NULL},
    {"{{ '\\N{BULLET}' }}", "{}", "\\N{...}", NULL},
    {"{{ a ! b }}", "{}", "unexpected char '!'", NULL},
    /* render time */
    {"{{ raise_exception('Conversation roles must alternate') }}", "{}",
     "raise_exception: Conversation roles must alternate", "line 1"},
    {"x\n{{ y|xmlattr }}", "{}", "unsupported filter 'xmlattr'", "line 2"},
    {"{{ [1]|groupby('a') }}", "{}", "unsupported filter 'groupby'", NULL},
    {"{{ x is nosuchtest }}", "{}", "no test named 'nosuchtest'", NULL},
    {"{{ foo.bar }}", "{}", "'foo' is undefined", NULL},
    {"{{ foo['bar'] }}", "{}", "'foo' is undefined", NULL},
    {"{{ foo() }}", "{}", "'foo' is undefined", NULL},
    {"{{ foo.upper() }}", "{}", "'foo' is undefined", NULL},
    {"{{ foo + 1 }}", "{}", "'foo' is undefined", NULL},
    {"{{ m.missing.x }}", "{\"m\": {}}", "'dict object' has no attribute 'missing'", NULL},
    {"{{ 1 + 'a' }}", "{}", "unsupported operand type(s) for +: 'int' and 'str'", NULL},
    {"{{ 'a' + 1 }}", "{}", "can only concatenate str", NULL},
    {"{{ 1 < 'a' }}", "{}", "'<' not supported", NULL},
    {"{{ [1, 2].append(3) }}", "{}", "unsafe", NULL},
    {"{{ d.update({}) }}", "{\"d\": {}}", "unsafe", NULL},
    {"{{ 'a'.encode() }}", "{}", "unsupported method", NULL},
    {"{{ 1 / 0 }}", "{}", "division by zero", NULL},
    {"{{ 5 % 0 }}", "{}", "modulo by zero", NULL},
    {"{% for x in none %}{% endfor %}", "{}", "'NoneType' object is not iterable", NULL},
    {"{% for a, b in [[1, 2, 3]] %}{% endfor %}", "{}", "too many values to unpack", NULL},
    {"{{ messages|selectattr('role')|length }}", "{\"messages\": []}", "has no len()", NULL},
    {"{{ messages|map(attribute='role') }}", "{\"messages\": []}", "cannot print a generator", NULL},
    {"{{ 'x'|upper ~ '\xd5\xa1'|upper }}", "{}", "unsupported: letter case of U+0561", NULL},
    {"{{ 9999999999 * 9999999999 }}", "{}", "integer overflow", NULL},
    {"{{ range(1000000)|length }}", "{}", "Range too big", NULL},
    {"{{ [1, 'a']|sort }}", "{}", "'<' not supported", NULL},
    {"{{ 'x'[::0] }}", "{}", "slice step cannot be zero", NULL},
    {"{{ 1[0:1] }}", "{}", "'int' object is not subscriptable", NULL},
    {"{{ undefined_var|tojson }}", "{}", "'undefined_var' is undefined", NULL},
    {"{{ namespace(a=1)|tojson }}", "{}", "not JSON serializable", NULL},
    {"{% set x = 1 %}{% set x.a = 2 %}", "{}", "non-namespace", NULL},
    {"{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", "{}", "takes not more than 1 argument", NULL},
    {"{% macro m(a) %}{% endmacro %}{{ m(b=1) }}", "{}", "no keyword argument 'b'", NULL},
    {"{{ 'a'.split('') }}", "{}", "empty separator", NULL},
    {"{{ '%d' % 'x' }}", "{}", "real number is required", NULL},
    {"{{ '%s %s' % (1,) }}", "{}", "not enough arguments", NULL},
    {"{{ 'x'|indent(2) ~ 1.5|indent(2) }}", "{}", "indent", NULL},
    {"{{ cycler(1, 2) }}", "{}", "unsupported function 'cycler'", NULL},
};

START_TEST(test_errors) {
    for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++)
        expect_error(error_cases[i].tmpl, strlen(error_cases[i].tmpl), error_cases[i].vars, error_cases[i].want1,
                     error_cases[i].want2);
}
END_TEST

START_TEST(test_bad_input) {
    /* invalid UTF-8 in the template source */
    expect_error("ok \xff\xfe", 5, "{}", "invalid UTF-8", NULL);
    /* a NUL inside the source is plain text, not an end */
    char *out, err[256];
    size_t len;
    static const char nul_tmpl[] = "a\0b{{ 1 }}";
    ck_assert_int_eq(render(nul_tmpl, sizeof nul_tmpl - 1, "{}", &out, &len, err, sizeof err), 0);
    ck_assert_int_eq(len, 4);
    ck_assert(memcmp(out, "a\0b1", 4) == 0);
    free(out);
    /* API misuse */
    ck_assert_ptr_null(qrm_template_compile(NULL, 3, err, sizeof err));
    ck_assert(strstr(err, "chat template") != NULL);
    qrm_template *t = qrm_template_compile("x", 1, err, sizeof err);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(qrm_template_render(NULL, NULL, NULL, 0, &out, &len, err, sizeof err), -1);
    ck_assert_int_eq(qrm_template_render(t, NULL, NULL, 0, NULL, &len, err, sizeof err), -1);
    qj_doc *d = qj_parse("[1]", 3, err, sizeof err);
    ck_assert_int_eq(qrm_template_render(t, NULL, qj_root(d), 0, &out, &len, err, sizeof err), -1);
    ck_assert(strstr(err, "must be a JSON object") != NULL);
    qj_free(d);
    /* a NULL err buffer is allowed */
    ck_assert_int_eq(qrm_template_render(t, NULL, NULL, 0, &out, NULL, NULL, 0), 0);
    ck_assert_str_eq(out, "x");
    free(out);
    qrm_template_free(t);
    qrm_template_free(NULL);
    ck_assert_ptr_null(qrm_template_compile("{% if %}", 8, NULL, 0));
    /* messages NULL: the template sees an undefined `messages` */
    t = qrm_template_compile("{{ messages is defined }}{{ add_generation_prompt }}", 52, err, sizeof err);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(qrm_template_render(t, NULL, NULL, 1, &out, &len, err, sizeof err), 0);
    ck_assert_str_eq(out, "FalseTrue");
    free(out);
    qrm_template_free(t);
}
END_TEST

/* ---------------------------------------------------------------- limits */

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A limit must stop a render long before a user would give up: 60 s here,
 * times Check's CK_TIMEOUT_MULTIPLIER where the environment is known to be
 * slow (make test-aarch64 sets it for qemu, which runs 20-50x slower). */
static void expect_limit(const char *tmpl, const char *want) {
    const char *mul = getenv("CK_TIMEOUT_MULTIPLIER");
    double limit = 60 * (mul && atof(mul) >= 1 ? atof(mul) : 1);
    double t0 = now_seconds();
    expect_error(tmpl, strlen(tmpl), "{}", want, NULL);
    double dt = now_seconds() - t0;
    ck_assert_msg(dt < limit, "%s took %.1f s to fail (limit %.0f s)", tmpl, dt, limit);
}

START_TEST(test_limits) {
    /* a loop of 10^10 iterations stops at the step limit */
    expect_limit("{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}", "steps");
    /* few steps, each scanning 60 MB: data-proportional work counts too */
    expect_limit("{% set s = 'x' * 60000000 %}{% for i in range(100000) %}{% if s|length %}{% endif %}{% endfor %}",
                 "steps");
    /* unbounded macro recursion */
    expect_limit("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "nested more than");
    /* output size */
    expect_limit("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "longer than");
    /* a string doubling in a loop */
    expect_limit("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                 "longer than");
    /* a list doubling in a loop hits the memory limit */
    expect_limit("{% set ns = namespace(s=[1]) %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
                 "out of memory");
    expect_limit("{{ 'x' * 100000000 }}", "longer than");

    /* deeply nested source is a syntax error, not a stack overflow */
    size_t n = 20000;
    char *deep = malloc(2 * n + 16);
    ck_assert_ptr_nonnull(deep);
    size_t k = 0;
    memcpy(deep, "{{ ", 3);
    k = 3;
    for (size_t i = 0; i < n; i++) deep[k++] = '(';
    deep[k++] = '1';
    for (size_t i = 0; i < n; i++) deep[k++] = ')';
    memcpy(deep + k, " }}", 4);
    expect_error(deep, strlen(deep), "{}", "nested too deeply", NULL);
    /* long chains (a.b.c..., x|f|g..., a + b + ...) nest in the tree too;
     * only `~` builds a flat list and renders */
    static const char *const links[] = {".a", "|trim", " + 1", " and 1", " if 1 else 2", " ~ 'x'"};
    for (size_t l = 0; l < sizeof links / sizeof links[0]; l++) {
        size_t ln = strlen(links[l]), reps = 5000, at = 4;
        char *chain = malloc(reps * ln + 16);
        ck_assert_ptr_nonnull(chain);
        memcpy(chain, "{{ x", 4);
        for (size_t i = 0; i < reps; i++, at += ln) memcpy(chain + at, links[l], ln);
        memcpy(chain + at, " }}", 4);
        char *out, err[512];
        size_t len;
        int rc = render(chain, strlen(chain), "{\"x\": \"\"}", &out, &len, err, sizeof err);
        if (links[l][1] == '~') {
            ck_assert_msg(rc == 0, "flat concatenation: %s", err);
            ck_assert_int_eq(len, reps);
            free(out);
        } else {
            ck_assert_int_eq(rc, -1);
            ck_assert_msg(strstr(err, "nested too deeply") != NULL, "chain %s: %s", links[l], err);
        }
        free(chain);
    }
    /* 300 nested ifs fail cleanly; 40 render */
    for (int depth = 40; depth <= 300; depth += 260) {
        char *s = malloc((size_t)depth * 30 + 16);
        ck_assert_ptr_nonnull(s);
        s[0] = 0;
        for (int i = 0; i < depth; i++) strcat(s, "{% if 1 %}");
        strcat(s, "x");
        for (int i = 0; i < depth; i++) strcat(s, "{% endif %}");
        char *out, err[512];
        size_t len;
        int rc = render(s, strlen(s), "{}", &out, &len, err, sizeof err);
        if (depth == 40) {
            ck_assert_msg(rc == 0, "40 nested ifs: %s", err);
            ck_assert_str_eq(out, "x");
            free(out);
        } else {
            ck_assert_int_eq(rc, -1);
            ck_assert(strstr(err, "nested too deeply") != NULL);
        }
        free(s);
    }
    free(deep);
}
END_TEST

/* ---------------------------------------------------------------- fixtures */

/* The variables transformers passes: the config's special tokens (strings, or
 * objects with "content"), tools=None, documents=None. */
static qj_doc *template_vars(const qj_value *cfg) {
    static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                       "pad_token", "cls_token", "mask_token"};
    qj_buf b = {0};
    qj_buf_puts(&b, "{\"tools\": null, \"documents\": null");
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const qj_value *v = qj_get(cfg, keys[i]);
        if (v && v->type == QJ_OBJECT) v = qj_get(v, "content");
        if (!v || v->type != QJ_STRING) continue;
        qj_buf_printf(&b, ", \"%s\": ", keys[i]);
        qj_buf_put_string(&b, v->u.str, v->len);
    }
    const qj_value *extra = qj_get_type(cfg, "additional_special_tokens", QJ_ARRAY);
    if (extra && extra->len) {
        qj_buf_puts(&b, ", \"additional_special_tokens\": [");
        for (uint32_t i = 0; i < extra->len; i++) {
            const qj_value *v = &extra->u.items[i];
            if (v->type == QJ_OBJECT) v = qj_get(v, "content");
            ck_assert(v && v->type == QJ_STRING);
            if (i) qj_buf_puts(&b, ", ");
            qj_buf_put_string(&b, v->u.str, v->len);
        }
        qj_buf_puts(&b, "]");
    }
    qj_buf_puts(&b, "}");
    ck_assert(!b.oom);
    char err[256];
    qj_doc *d = qj_parse(b.buf, b.len, err, sizeof err);
    ck_assert_msg(d != NULL, "%s", err);
    qj_buf_free(&b);
    return d;
}

typedef struct {
    const qrm_template *t;
    const qj_value *vars;
    int total, passed;
    const char *name;
} fixture_run;

static void check_fixture_line(const char *line, size_t len, void *arg) {
    fixture_run *f = arg;
    char err[512];
    qj_doc *d = qj_parse(line, len, err, sizeof err);
    ck_assert_msg(d != NULL, "%s chat.jsonl line %d: %s", f->name, f->total + 1, err);
    const qj_value *row = qj_root(d);
    const qj_value *want = qj_get_type(row, "rendered", QJ_STRING);
    ck_assert(want != NULL);
    char *out;
    size_t out_len;
    int rc = qrm_template_render(f->t, qj_get(row, "messages"), f->vars, 0, &out, &out_len, err, sizeof err);
    f->total++;
    if (rc == 0 && out_len == want->len && memcmp(out, want->u.str, out_len) == 0) f->passed++;
    else if (rc == 0) fprintf(stderr, "%s line %d differs:\n  got  %s\n  want %s\n", f->name, f->total, out, want->u.str);
    else fprintf(stderr, "%s line %d: %s\n", f->name, f->total, err);
    free(out);
    qj_free(d);
}

static void run_fixture(const char *name) {
    char path[256], err[512];
    snprintf(path, sizeof path, TEST_DATA "/tokenizers/%s/tokenizer_config.json", name);
    size_t len;
    char *text = tu_read_file(path, &len);
    qj_doc *cfg = qj_parse(text, len, err, sizeof err);
    ck_assert_msg(cfg != NULL, "%s: %s", path, err);
    const qj_value *src = qj_get_type(qj_root(cfg), "chat_template", QJ_STRING);
    ck_assert_msg(src != NULL, "%s has no chat_template string", path);
    qrm_template *t = qrm_template_compile(src->u.str, src->len, err, sizeof err);
    ck_assert_msg(t != NULL, "%s: %s", name, err);
    qj_doc *vars = template_vars(qj_root(cfg));
    fixture_run f = {.t = t, .vars = qj_root(vars), .name = name};
    snprintf(path, sizeof path, TEST_DATA "/tokenizers/%s/chat.jsonl", name);
    tu_for_each_line(path, check_fixture_line, &f);
    printf("chat template %-7s %d/%d conversations rendered byte-exact\n", name, f.passed, f.total);
    ck_assert_int_gt(f.total, 0);
    ck_assert_int_eq(f.passed, f.total);
    qj_free(vars);
    qrm_template_free(t);
    qj_free(cfg);
    free(text);
}

START_TEST(test_fixture_qwen3) { run_fixture("qwen3"); }
END_TEST
START_TEST(test_fixture_llama3) { run_fixture("llama3"); }
END_TEST
START_TEST(test_fixture_gemma3) { run_fixture("gemma3"); }
END_TEST

/* The toy template of the tiny model fixtures. */
START_TEST(test_toy_templates) {
    static const char *const models[] = {"gemma2-tiny", "llama3-tiny", "qwen3-tiny"};
    static const char messages[] = "[{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"hello\"}]";
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
        char path[256], err[512];
        snprintf(path, sizeof path, TEST_DATA "/models/%s/tokenizer_config.json", models[m]);
        size_t len;
        char *text = tu_read_file(path, &len);
        qj_doc *cfg = qj_parse(text, len, err, sizeof err);
        ck_assert_msg(cfg != NULL, "%s: %s", path, err);
        const qj_value *src = qj_get_type(qj_root(cfg), "chat_template", QJ_STRING);
        ck_assert(src != NULL);
        qrm_template *t = qrm_template_compile(src->u.str, src->len, err, sizeof err);
        ck_assert_msg(t != NULL, "%s", err);
        qj_doc *vars = template_vars(qj_root(cfg));
        qj_doc *msgs = qj_parse(messages, strlen(messages), err, sizeof err);
        char *out;
        size_t out_len;
        ck_assert_int_eq(qrm_template_render(t, qj_root(msgs), qj_root(vars), 0, &out, &out_len, err, sizeof err), 0);
        ck_assert_str_eq(out, "<|begin_of_text|>user: hi<|eot_id|>assistant: hello<|eot_id|>");
        free(out);
        qj_free(msgs);
        qj_free(vars);
        qrm_template_free(t);
        qj_free(cfg);
        free(text);
    }
}
END_TEST

/* ---------------------------------------------------------------- threads */

typedef struct {
    const qrm_template *t;
    const qj_value *messages, *vars;
    const char *want;
    int ok;
} thread_job;

static void *render_many(void *arg) {
    thread_job *j = arg;
    j->ok = 1;
    for (int i = 0; i < 50; i++) {
        char *out, err[256];
        size_t len;
        if (qrm_template_render(j->t, j->messages, j->vars, 0, &out, &len, err, sizeof err) != 0 ||
            strcmp(out, j->want) != 0)
            j->ok = 0;
        free(out);
    }
    return NULL;
}

/* A compiled template is immutable: threads may render it at once. */
START_TEST(test_threads) {
    static const char tmpl[] = "{% for m in messages %}{% set x = m.role|upper %}{{ x }}:{{ m.content|trim }};{% endfor %}";
    static const char msgs[] = "[{\"role\": \"user\", \"content\": \" a \"}, {\"role\": \"assistant\", \"content\": \"b\"}]";
    char err[256];
    qrm_template *t = qrm_template_compile(tmpl, sizeof tmpl - 1, err, sizeof err);
    ck_assert_ptr_nonnull(t);
    qj_doc *d = qj_parse(msgs, sizeof msgs - 1, err, sizeof err);
    thread_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (thread_job){.t = t, .messages = qj_root(d), .want = "USER:a;ASSISTANT:b;"};
        ck_assert_int_eq(pthread_create(&th[i], NULL, render_many, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert(jobs[i].ok);
    }
    qj_free(d);
    qrm_template_free(t);
}
END_TEST

/* ---------------------------------------------------------------- robustness */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* Mutated real templates must compile-and-render or fail with a message,
 * never crash (run under AddressSanitizer to catch memory errors). */
START_TEST(test_mutations) {
    static const char *const names[] = {"qwen3", "llama3", "gemma3"};
    static const char pieces[][8] = {"{{", "}}", "{%", "%}", "{#", "#}", "-", "+", "(", ")", "[", "]", "|",
                                     "'", "\"", "\n", " ", ".", ",", "=", "\\", "\xc3\xa9", "\xff", "{", "}"};
    static const char msgs[] =
        "{\"messages\": [{\"role\": \"system\", \"content\": \"s\"}, {\"role\": \"user\", \"content\": \"<think>u</think>\"},"
        " {\"role\": \"assistant\", \"content\": \"a\"}], \"bos_token\": \"<s>\"}";
    int rendered = 0, failed = 0;
    for (size_t f = 0; f < 3; f++) {
        char path[256], err[512];
        snprintf(path, sizeof path, TEST_DATA "/tokenizers/%s/tokenizer_config.json", names[f]);
        size_t len;
        char *text = tu_read_file(path, &len);
        qj_doc *cfg = qj_parse(text, len, err, sizeof err);
        const qj_value *src = qj_get_type(qj_root(cfg), "chat_template", QJ_STRING);
        ck_assert(src != NULL);
        for (int iter = 0; iter < 300; iter++) {
            size_t n = src->len;
            char *m = malloc(n + 64 * 8 + 1);
            ck_assert_ptr_nonnull(m);
            memcpy(m, src->u.str, n);
            int edits = 1 + (int)(rnd() % 4);
            for (int e = 0; e < edits; e++) {
                size_t at = n ? rnd() % n : 0;
                switch (rnd() % 3) {
                case 0: { /* insert a piece */
                    const char *p = pieces[rnd() % (sizeof pieces / sizeof pieces[0])];
                    size_t pl = strlen(p);
                    memmove(m + at + pl, m + at, n - at);
                    memcpy(m + at, p, pl);
                    n += pl;
                    break;
                }
                case 1: { /* delete a run */
                    size_t dl = 1 + rnd() % 8;
                    if (at + dl > n) dl = n - at;
                    memmove(m + at, m + at + dl, n - at - dl);
                    n -= dl;
                    break;
                }
                default: /* truncate */
                    if (rnd() % 4 == 0) n = at;
                }
            }
            char *out;
            size_t out_len;
            int rc = render(m, n, msgs, &out, &out_len, err, sizeof err);
            if (rc == 0) {
                ck_assert_ptr_nonnull(out);
                rendered++;
                free(out);
            } else {
                ck_assert_msg(strncmp(err, "chat template: ", 15) == 0, "message: %s", err);
                failed++;
            }
            free(m);
        }
        qj_free(cfg);
        free(text);
    }
    ck_assert_int_gt(rendered, 0);
    ck_assert_int_gt(failed, 0);
}
END_TEST

static Suite *chat_template_suite(void) {
    Suite *s = suite_create("chat_template");
    TCase *c = tcase_create("constructs");
    tcase_add_test(c, test_whitespace);
    tcase_add_test(c, test_expressions);
    tcase_add_test(c, test_statements);
    tcase_add_test(c, test_scoping);
    tcase_add_test(c, test_filters);
    tcase_add_test(c, test_tests);
    tcase_add_test(c, test_methods);
    tcase_add_test(c, test_templates);
    suite_add_tcase(s, c);

    c = tcase_create("errors");
    tcase_add_test(c, test_errors);
    tcase_add_test(c, test_bad_input);
    suite_add_tcase(s, c);

    c = tcase_create("limits");
    tcase_set_timeout(c, 120);
    tcase_add_test(c, test_limits);
    suite_add_tcase(s, c);

    c = tcase_create("fixtures");
    tcase_set_timeout(c, 60);
    tcase_add_test(c, test_fixture_qwen3);
    tcase_add_test(c, test_fixture_llama3);
    tcase_add_test(c, test_fixture_gemma3);
    tcase_add_test(c, test_toy_templates);
    suite_add_tcase(s, c);

    c = tcase_create("robustness");
    tcase_set_timeout(c, 120);
    tcase_add_test(c, test_threads);
    tcase_add_test(c, test_mutations);
    suite_add_tcase(s, c);
    return s;
}

int main(void) { return tu_run(chat_template_suite()); }
