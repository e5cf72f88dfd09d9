/* Internals shared by core/text/chat_template*.c (not a public header).
 *
 *   chat_template_lex.c      source -> tokens (whitespace control, trim/lstrip_blocks)
 *   chat_template_parse.c    tokens -> syntax tree (statements and expressions)
 *   chat_template_value.c    arena, values, Python str()/repr()/json.dumps, comparisons
 *   chat_template_text.c     Python string semantics: whitespace, case, split, find, ...
 *   chat_template_eval.c     the renderer: scopes, statements, expressions, macros
 *   chat_template_filters.c  Jinja filters and tests
 *   chat_template_methods.c  str/dict/list methods, loop attributes, global functions
 *
 * Memory: a template owns one arena (its syntax tree); a render owns another
 * (every value it creates) that is dropped in one go at the end, so values
 * never need freeing. Errors inside a render or a compile longjmp back to the
 * entry point with the message already written.
 */
#ifndef QRM_CHAT_TEMPLATE_IMPL_H
#define QRM_CHAT_TEMPLATE_IMPL_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include "chat_template.h"

#if defined(__GNUC__)
#define CT_NORETURN __attribute__((noreturn))
#define CT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CT_NORETURN
#define CT_PRINTF(a, b)
#endif

/* ---------------------------------------------------------------- arena */

typedef struct ct_block ct_block;
typedef struct {
    ct_block *head;
    size_t total;   /* bytes of all blocks */
    size_t cap;     /* limit on total */
    int oom;        /* a malloc failed (not the cap): the failures say so */
} ct_arena;

/* 16-byte aligned; NULL when the cap would be exceeded or malloc fails. */
void *qrm_ct_arena_alloc(ct_arena *a, size_t n);
/* Grows the allocation p (old bytes) to n bytes, in place when p is the most
 * recent allocation, else by copying. NULL on failure (p stays valid). */
void *qrm_ct_arena_grow(ct_arena *a, void *p, size_t old, size_t n);
void qrm_ct_arena_free(ct_arena *a);

/* ---------------------------------------------------------------- values */

typedef enum {
    CT_ABSENT,  /* internal: "argument not given"; never visible to templates */
    CT_UNDEF,   /* Jinja2 Undefined; u.s holds the error message using it gives */
    CT_NONE,
    CT_BOOL,
    CT_INT,
    CT_FLOAT,
    CT_STR,
    CT_LIST,    /* list, tuple, range, dict views: see ct_list.kind */
    CT_DICT,
    CT_ITER,    /* a one-pass iterator (generator) over a materialized list */
    CT_NS,      /* namespace(): the only mutable object */
    CT_LOOP,
    CT_MACRO,
    CT_FUNC,    /* global function: u.i is a CT_FN_* id */
    CT_METHOD,  /* bound method: u.method */
} ct_type;

enum { CT_LK_LIST, CT_LK_TUPLE, CT_LK_RANGE, CT_LK_ITEMS, CT_LK_KEYS, CT_LK_VALUES };

enum {
    CT_FN_RANGE,
    CT_FN_NAMESPACE,
    CT_FN_DICT,
    CT_FN_RAISE_EXCEPTION,
    CT_FN_STRFTIME_NOW,
    CT_FN_CYCLER,
    CT_FN_JOINER,
    CT_FN_LIPSUM,
    CT_FN_COUNT
};

typedef struct ct_list ct_list;
typedef struct ct_dict ct_dict;
typedef struct ct_iter ct_iter;
typedef struct ct_loop ct_loop;
typedef struct ct_macro ct_macro;
typedef struct ct_method ct_method;

typedef struct ct_value {
    uint8_t type;    /* ct_type */
    uint8_t markup;  /* CT_STR: a markupsafe.Markup string (from safe/escape) */
    union {
        int b;
        int64_t i;
        double f;
        struct {
            const char *p;   /* UTF-8, not NUL-terminated */
            size_t n;
        } s;
        ct_list *list;
        ct_dict *dict;   /* CT_DICT and CT_NS */
        ct_iter *iter;
        ct_loop *loop;
        ct_macro *macro;
        ct_method *method;
    } u;
} ct_value;

struct ct_list {
    ct_value *items;
    size_t n;
    int kind;                    /* CT_LK_* (how it prints, whether it indexes) */
    int64_t start, stop, step;   /* CT_LK_RANGE, for repr */
};

/* Insertion-ordered; small, so lookups are linear. */
struct ct_dict {
    ct_value *keys, *vals;
    size_t n, cap;
};

struct ct_iter {
    ct_value *items;
    size_t n, pos;
    const char *what;  /* Python type name for messages: "generator", ... */
};

typedef struct ct_node ct_node;
typedef struct ct_scope ct_scope;

struct ct_loop {
    ct_value *items;
    size_t n, i;
    int depth;
    int has_changed;
    ct_value last_changed;
};

struct ct_macro {
    const ct_node *def;  /* S_MACRO, or S_CALLBLOCK for `caller` */
    ct_scope *closure;   /* where it was defined */
    ct_macro *caller;    /* the `caller` a call block passes (NULL otherwise) */
};

struct ct_method {
    ct_value self;
    int id;              /* CT_M_* from chat_template_methods.c */
};

/* ---------------------------------------------------------------- syntax tree */

typedef enum {
    /* expressions */
    N_CONST, N_NAME, N_GETATTR, N_GETITEM, N_SLICE, N_CALL, N_FILTER, N_TEST,
    N_NOT, N_NEG, N_POS, N_BIN, N_CONCAT, N_COMPARE, N_CMPOP, N_AND, N_OR, N_COND,
    N_LIST, N_TUPLE, N_DICT, N_PAIR, N_KWARG, N_STARARG, N_STARKW, N_NSREF, N_PARAM,
    /* statements */
    S_TEXT, S_OUTPUT, S_IF, S_FOR, S_SET, S_SETBLOCK, S_MACRO, S_CALLBLOCK,
    S_FILTERBLOCK, S_WITH, S_BREAK, S_CONTINUE, S_GENERATION
} ct_kind;

/* N_BIN operators and N_CMPOP comparisons. */
enum {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW,
    OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN
};

/* Node flags. */
#define CT_F_USES_CALLER 1   /* S_MACRO body mentions `caller` */
#define CT_F_USES_VARARGS 2  /* ... `varargs` */
#define CT_F_USES_KWARGS 4   /* ... `kwargs` */

/* Children by kind (unused ones are NULL):
 *   N_GETATTR a=object name        N_GETITEM a=object b=index
 *   N_SLICE a,b,c=start,stop,step  N_CALL a=callee b=argument list
 *   N_FILTER a=operand (NULL in filter blocks) name op=filter id b=arguments
 *   N_TEST a=operand name op=test id b=arguments
 *   N_BIN op a b   N_CONCAT a=operand list   N_COMPARE a=first b=N_CMPOP list (op, a)
 *   N_COND a=test b=then c=else   N_LIST/N_TUPLE a=items   N_DICT a=N_PAIR list (a, b)
 *   N_KWARG name a   N_STARARG a   N_STARKW a   N_NSREF name=variable name2=attribute
 *   N_PARAM name a=default
 *   S_TEXT val   S_OUTPUT a   S_IF a=test b=body c=else (elif: a single S_IF)
 *   S_FOR a=target b=iterable c=body d=else e=filter
 *   S_SET a=target b=value   S_SETBLOCK a=target b=filter chain c=body
 *   S_MACRO name a=params c=body   S_CALLBLOCK a=call b=params c=body
 *   S_FILTERBLOCK b=filter chain c=body   S_WITH a=targets b=values c=body
 *   S_GENERATION c=body */
struct ct_node {
    uint16_t kind;
    uint16_t op;
    int flags;
    int line;
    ct_node *next;
    ct_node *a, *b, *c, *d, *e;
    const char *name;
    const char *name2;
    ct_value val;
    /* Frames (see chat_template_scope.c): names that start out Undefined in
     * the frame this statement opens (for: body; undef2: the loop's else). */
    const char **undef, **undef2;
};

/* ---------------------------------------------------------------- tokens */

typedef enum {
    T_TEXT, T_VAR_BEGIN, T_VAR_END, T_BLOCK_BEGIN, T_BLOCK_END,
    T_NAME, T_STRING, T_INT, T_FLOAT, T_OP, T_EOF
} ct_tok_kind;

typedef struct {
    int kind;
    int line;
    const char *p;    /* T_TEXT, T_NAME, T_STRING (decoded), T_OP: the text */
    size_t n;
    int64_t i;        /* T_INT */
    double f;         /* T_FLOAT */
} ct_token;

/* ---------------------------------------------------------------- compile */

struct qrm_template {
    ct_arena arena;
    ct_node *body;
    const char **undef;   /* the template frame's fresh-Undefined names */
};

typedef struct {
    ct_arena *arena;
    jmp_buf jb;
    char *err;
    size_t errlen;
    ct_token *toks;
    size_t ntok, captok;
    size_t pos;
    int depth;         /* expression/statement nesting, bounded */
    ct_node *macro;    /* innermost macro being parsed (for CT_F_USES_*) */
} ct_compiler;

CT_NORETURN void qrm_ct_compile_fail(ct_compiler *c, int line, const char *fmt, ...)
    CT_PRINTF(3, 4);
void qrm_ct_lex(ct_compiler *c, const char *src, size_t len);
ct_node *qrm_ct_parse(ct_compiler *c);
/* Annotates frames with their fresh-Undefined names; returns the root's. */
const char **qrm_ct_analyze_scopes(ct_compiler *c, ct_node *body);

/* Filter and test ids; -1: no such name in Jinja2 (filters are then a compile
 * error, tests a render error, as in Jinja2). */
int qrm_ct_filter_id(const char *name);
int qrm_ct_test_id(const char *name);

/* ---------------------------------------------------------------- render */

typedef struct {
    const char *name;
    ct_value v;
} ct_var;

struct ct_scope {
    ct_scope *parent;
    ct_var *vars;
    size_t n, cap;
};

/* A growable string in the render arena. */
typedef struct {
    char *p;
    size_t n, cap;
} ct_sbuf;

typedef struct {
    ct_value *pos;
    size_t npos;
    const char **kw_names;
    ct_value *kw;
    size_t nkw;
} ct_args;

typedef struct ct_render {
    const qrm_template *t;
    ct_arena arena;
    jmp_buf jb;
    char *err;
    size_t errlen;
    int line;          /* of the node being evaluated, for messages */
    long steps;
    int call_depth;
    ct_scope *globals; /* the render's variables */
    ct_sbuf *out;      /* where output goes (a capture while in a macro or set block) */
} ct_render;

CT_NORETURN void qrm_ct_fail(ct_render *r, const char *fmt, ...) CT_PRINTF(2, 3);
void *qrm_ct_alloc(ct_render *r, size_t n);

/* values: constructors */
/* msg: what using it reports ("'foo' is undefined"). */
ct_value qrm_ct_undef(const char *msg);
CT_NORETURN void qrm_ct_fail_undef(ct_render *r, ct_value v);
ct_value qrm_ct_none(void);
ct_value qrm_ct_bool(int b);
ct_value qrm_ct_int(int64_t i);
ct_value qrm_ct_float(double f);
ct_value qrm_ct_str(const char *p, size_t n);
ct_value qrm_ct_str_copy(ct_render *r, const char *p, size_t n);
ct_value qrm_ct_list_new(ct_render *r, size_t n, int kind);  /* n items, all None */
ct_value qrm_ct_iter_new(ct_render *r, ct_value *items, size_t n, const char *what);
ct_value qrm_ct_dict_new(ct_render *r);
/* Sets key (replacing an equal key in place, as a Python dict does). */
void qrm_ct_dict_set(ct_render *r, ct_dict *d, ct_value key, ct_value val);
/* NULL when absent. */
ct_value *qrm_ct_dict_find(ct_render *r, ct_dict *d, ct_value key);
ct_value *qrm_ct_dict_find_str(ct_dict *d, const char *s, size_t n);
ct_value qrm_ct_from_json(ct_render *r, const qj_value *j);

/* string buffers */
void qrm_ct_sb_put(ct_render *r, ct_sbuf *b, const char *s, size_t n);
void qrm_ct_sb_puts(ct_render *r, ct_sbuf *b, const char *s);
void qrm_ct_sb_putc(ct_render *r, ct_sbuf *b, char ch);
void qrm_ct_sb_put_cp(ct_render *r, ct_sbuf *b, uint32_t cp);
void qrm_ct_sb_printf(ct_render *r, ct_sbuf *b, const char *fmt, ...) CT_PRINTF(3, 4);
ct_value qrm_ct_sb_value(ct_sbuf *b);

/* Python semantics */
const char *qrm_ct_type_name(ct_value v);  /* "str", "int", "list", "NoneType", ... */
int qrm_ct_truthy(ct_render *r, ct_value v);
int qrm_ct_equal(ct_render *r, ct_value a, ct_value b);
/* <0, 0, >0; errors like Python for unorderable types. */
int qrm_ct_compare(ct_render *r, ct_value a, ct_value b);
void qrm_ct_put_str(ct_render *r, ct_sbuf *b, ct_value v);   /* str(v) */
void qrm_ct_put_repr(ct_render *r, ct_sbuf *b, ct_value v);  /* repr(v) */
ct_value qrm_ct_to_str(ct_render *r, ct_value v);            /* str(v) as a value */
void qrm_ct_format_float(double f, char *out, size_t outlen); /* repr(float) */
typedef struct {
    int indent;            /* <0: none */
    const char *indent_str;
    const char *item_sep, *key_sep;
    int sort_keys;
    int ensure_ascii;
} ct_json_opts;
void qrm_ct_put_json(ct_render *r, ct_sbuf *b, ct_value v, const ct_json_opts *o);
/* Items of an iterable as an array (consumes iterators); errors if not iterable.
 * Strings yield their characters, dicts their keys. */
ct_value *qrm_ct_iterate(ct_render *r, ct_value v, size_t *n);
/* len(v), or an error. */
size_t qrm_ct_length(ct_render *r, ct_value v);
int qrm_ct_is_number(ct_value v);  /* bool, int, float */
double qrm_ct_as_double(ct_value v);

/* text: Python str operations on valid UTF-8 */
int qrm_ct_py_isspace(uint32_t cp);
uint32_t qrm_ct_next_cp(const char *s, size_t n, size_t *i);  /* decodes at *i, advances */
size_t qrm_ct_cp_count(const char *s, size_t n);
/* byte offset of code point index k (k <= count) */
size_t qrm_ct_cp_offset(const char *s, size_t n, size_t k);
enum { CT_CASE_UPPER, CT_CASE_LOWER, CT_CASE_TITLE };
void qrm_ct_put_case(ct_render *r, ct_sbuf *b, const char *s, size_t n, int which);
int qrm_ct_is_cased(ct_render *r, uint32_t cp, int *is_upper, int *is_lower);
ct_value qrm_ct_str_strip(ct_render *r, ct_value s, ct_value chars, int left, int right);
ct_value qrm_ct_str_split(ct_render *r, ct_value s, ct_value sep, int64_t maxsplit, int from_right);
ct_value qrm_ct_str_splitlines(ct_render *r, ct_value s, int keepends);
ct_value qrm_ct_str_replace(ct_render *r, ct_value s, ct_value old, ct_value new_, int64_t count);
ct_value qrm_ct_str_capitalize(ct_render *r, ct_value s);
ct_value qrm_ct_str_pytitle(ct_render *r, ct_value s);   /* str.title() */
/* Python's slice.indices(): clamps start/stop (in place) for a sequence of
 * length len; returns how many elements the slice selects. step != 0. */
size_t qrm_ct_slice_indices(int64_t len, int64_t *start, int64_t *stop, int64_t step, int has_start,
                            int has_stop);
ct_value qrm_ct_str_slice(ct_render *r, ct_value s, int64_t start, int64_t stop, int64_t step,
                          int has_start, int has_stop);
/* Python str.find on code points; -1 if absent. */
int64_t qrm_ct_str_find(const char *h, size_t hn, const char *nd, size_t nn, int from_right);
size_t qrm_ct_str_count(const char *h, size_t hn, const char *nd, size_t nn);
ct_value qrm_ct_html_escape(ct_render *r, ct_value v);
/* Python % formatting (str % args) */
ct_value qrm_ct_percent_format(ct_render *r, ct_value fmt, ct_value args);
/* Python int(str) / float(str); 0 on failure */
int qrm_ct_parse_int(const char *s, size_t n, int base, int64_t *out);
int qrm_ct_parse_float(const char *s, size_t n, double *out);

/* eval */
ct_value qrm_ct_eval(ct_render *r, const ct_node *e, ct_scope *s);
ct_value qrm_ct_getattr(ct_render *r, ct_value obj, const char *name, size_t n);
ct_value qrm_ct_getitem(ct_render *r, ct_value obj, ct_value key);
ct_value qrm_ct_call(ct_render *r, ct_value fn, ct_args *a);
void qrm_ct_step(ct_render *r);
/* Work proportional to data size counts too (a step per 64 bytes), so a
 * loop over a huge string cannot run for hours on few steps. */
void qrm_ct_charge(ct_render *r, size_t bytes);

/* filters, tests, methods */
ct_value qrm_ct_apply_filter(ct_render *r, int id, const char *name, ct_value v, ct_args *a);
int qrm_ct_apply_test(ct_render *r, int id, const char *name, ct_value v, ct_args *a);
/* attribute lookup for builtin types; sets *found */
ct_value qrm_ct_builtin_attr(ct_render *r, ct_value obj, const char *name, size_t n, int *found);
ct_value qrm_ct_call_method(ct_render *r, ct_method *m, ct_args *a);
ct_value qrm_ct_call_global(ct_render *r, int fn, ct_args *a);
const char *qrm_ct_global_name(int fn);

/* Binds call arguments to parameter names (Python rules). Missing ones are
 * CT_ABSENT. `fname` is for messages. */
void qrm_ct_bind(ct_render *r, const char *fname, ct_args *a, const char *const *params,
                 size_t nparams, ct_value *out);

#endif
