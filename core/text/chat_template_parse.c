/* Chat templates: the parser. A recursive-descent copy of Jinja2's grammar,
 * so precedence and the odd corners match:
 *
 *   expression  := or ['if' or ['else' expression]]
 *   or, and, not, compare (== != < <= > >= in, not in; chained)
 *   math1 (+ -)  concat (~)  math2 (* / // %)  pow (**)
 *   unary (- +) then postfix (.attr [index] (call)) then filters (|f) and
 *   tests (is [not] t), which bind tighter than any binary operator.
 *
 * Statements: if/elif/else, for (with else, a filter condition, tuple
 * targets), set (also namespace attributes and block set), macro, call,
 * filter, with, break, continue, print, generation. Template inheritance
 * and includes are rejected by name.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_template_internal.h"

void qrm_ct_compile_fail(ct_compiler *c, int line, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->arena && c->arena->oom) snprintf(msg, sizeof msg, "out of memory");
    /* one line, as render errors (qrm_ct_fail): a message may quote a token
     * of the template, and a string literal's value can hold a line break */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
    if (c->err && c->errlen) {
        if (line > 0) snprintf(c->err, c->errlen, "chat template: line %d: %s", line, msg);
        else snprintf(c->err, c->errlen, "chat template: %s", msg);
    }
    longjmp(c->jb, 1);
}

/* ---------------------------------------------------------------- token helpers */

static ct_token *cur(ct_compiler *c) { return &c->toks[c->pos]; }
static ct_token *look(ct_compiler *c) { return &c->toks[c->pos + (c->toks[c->pos].kind != T_EOF)]; }
static void advance(ct_compiler *c) {
    if (c->toks[c->pos].kind != T_EOF) c->pos++;
}

static int tok_is_op(const ct_token *t, const char *op) {
    return t->kind == T_OP && t->n == strlen(op) && memcmp(t->p, op, t->n) == 0;
}
static int tok_is_name(const ct_token *t, const char *name) {
    return t->kind == T_NAME && t->n == strlen(name) && memcmp(t->p, name, t->n) == 0;
}
static int is_op(ct_compiler *c, const char *op) { return tok_is_op(cur(c), op); }
static int is_name(ct_compiler *c, const char *name) { return tok_is_name(cur(c), name); }

static int skip_op(ct_compiler *c, const char *op) {
    if (!is_op(c, op)) return 0;
    advance(c);
    return 1;
}
static int skip_name(ct_compiler *c, const char *name) {
    if (!is_name(c, name)) return 0;
    advance(c);
    return 1;
}

static const char *describe(const ct_token *t, char *buf, size_t n) {
    switch (t->kind) {
    case T_EOF: return "end of template";
    case T_BLOCK_END: return "end of statement block";
    case T_VAR_END: return "end of print statement";
    case T_BLOCK_BEGIN: return "begin of statement block";
    case T_VAR_BEGIN: return "begin of print statement";
    case T_STRING: return "string";
    case T_INT: return "integer";
    case T_FLOAT: return "float";
    case T_TEXT: return "template data";
    default: snprintf(buf, n, "'%.*s'", (int)(t->n > 40 ? 40 : t->n), t->p); return buf;
    }
}

CT_NORETURN static void fail_unexpected(ct_compiler *c, const char *expected) {
    char buf[64];
    if (expected)
        qrm_ct_compile_fail(c, cur(c)->line, "expected %s, got %s", expected, describe(cur(c), buf, sizeof buf));
    qrm_ct_compile_fail(c, cur(c)->line, "unexpected %s", describe(cur(c), buf, sizeof buf));
}

static void expect_op(ct_compiler *c, const char *op) {
    if (!skip_op(c, op)) {
        char want[16];
        snprintf(want, sizeof want, "'%s'", op);
        fail_unexpected(c, want);
    }
}

static void expect_kind(ct_compiler *c, int kind, const char *what) {
    if (cur(c)->kind != kind) fail_unexpected(c, what);
    advance(c);
}

static const char *dup_tok(ct_compiler *c, const ct_token *t) {
    char *s = qrm_ct_arena_alloc(c->arena, t->n + 1);
    if (!s) qrm_ct_compile_fail(c, t->line, "template too large");
    memcpy(s, t->p, t->n);
    s[t->n] = 0;
    return s;
}

static const char *expect_name(ct_compiler *c) {
    if (cur(c)->kind != T_NAME) fail_unexpected(c, "a name");
    const char *s = dup_tok(c, cur(c));
    advance(c);
    return s;
}

static ct_node *node(ct_compiler *c, int kind, int line) {
    ct_node *n = qrm_ct_arena_alloc(c->arena, sizeof *n);
    if (!n) qrm_ct_compile_fail(c, line, "template too large");
    memset(n, 0, sizeof *n);
    n->kind = (uint16_t)kind;
    n->line = line;
    return n;
}

static void enter(ct_compiler *c) {
    if (++c->depth > QRM_TEMPLATE_MAX_NESTING)
        qrm_ct_compile_fail(c, cur(c)->line, "template nested too deeply (limit %d)", QRM_TEMPLATE_MAX_NESTING);
}
static void leave(ct_compiler *c) { c->depth--; }

/* A list builder over the `next` links. */
typedef struct {
    ct_node *head, *tail;
    int count;
} nlist;

static void nl_add(nlist *l, ct_node *n) {
    if (l->tail) l->tail->next = n;
    else l->head = n;
    l->tail = n;
    l->count++;
}

/* ---------------------------------------------------------------- expressions */

static ct_node *parse_expression(ct_compiler *c, int with_condexpr);
static ct_node *parse_tuple(ct_compiler *c, int simplified, int with_condexpr, const char *extra_end,
                            int explicit_parens);
static ct_node *parse_unary(ct_compiler *c, int with_filter);
static ct_node *parse_primary(ct_compiler *c, int with_namespace);
static ct_node *parse_postfix(ct_compiler *c, ct_node *n);
static ct_node *parse_filter_expr(ct_compiler *c, ct_node *n);

static ct_node *parse_call_args(ct_compiler *c) {
    int line = cur(c)->line;
    expect_op(c, "(");
    nlist args = {0};
    int seen_kw = 0, seen_star = 0, seen_starkw = 0, need_comma = 0;
    while (!is_op(c, ")")) {
        if (need_comma) {
            expect_op(c, ",");
            if (is_op(c, ")")) break;
        }
        ct_node *a;
        if (skip_op(c, "*")) {
            if (seen_star || seen_starkw) qrm_ct_compile_fail(c, line, "invalid syntax for function call expression");
            a = node(c, N_STARARG, cur(c)->line);
            a->a = parse_expression(c, 1);
            seen_star = 1;
        } else if (skip_op(c, "**")) {
            if (seen_starkw) qrm_ct_compile_fail(c, line, "invalid syntax for function call expression");
            a = node(c, N_STARKW, cur(c)->line);
            a->a = parse_expression(c, 1);
            seen_starkw = 1;
        } else if (cur(c)->kind == T_NAME && tok_is_op(look(c), "=")) {
            if (seen_starkw) qrm_ct_compile_fail(c, line, "invalid syntax for function call expression");
            a = node(c, N_KWARG, cur(c)->line);
            a->name = expect_name(c);
            advance(c);
            a->a = parse_expression(c, 1);
            seen_kw = 1;
        } else {
            if (seen_kw || seen_star || seen_starkw)
                qrm_ct_compile_fail(c, line, "invalid syntax for function call expression");
            a = parse_expression(c, 1);
        }
        nl_add(&args, a);
        need_comma = 1;
    }
    expect_op(c, ")");
    return args.head;
}

static ct_node *parse_filter(ct_compiler *c, ct_node *operand, int start_inline) {
    int links = 0; /* x|f|g nests: each filter is a level */
    while (is_op(c, "|") || start_inline) {
        if (!start_inline) advance(c);
        start_inline = 0;
        enter(c);
        links++;
        int line = cur(c)->line;
        const char *name = expect_name(c);
        if (is_op(c, ".")) qrm_ct_compile_fail(c, line, "no filter named '%s.%.*s'", name, (int)look(c)->n, look(c)->p);
        int id = qrm_ct_filter_id(name);
        if (id < 0) qrm_ct_compile_fail(c, line, "no filter named '%s'", name);
        ct_node *f = node(c, N_FILTER, line);
        f->name = name;
        f->op = (uint16_t)id;
        f->a = operand;
        if (is_op(c, "(")) f->b = parse_call_args(c);
        operand = f;
    }
    c->depth -= links;
    return operand;
}

static ct_node *parse_test(ct_compiler *c, ct_node *operand) {
    int line = cur(c)->line;
    advance(c); /* is */
    int negated = skip_name(c, "not");
    const char *name = expect_name(c);
    if (is_op(c, ".")) qrm_ct_compile_fail(c, line, "no test named '%s.%.*s'", name, (int)look(c)->n, look(c)->p);
    ct_node *t = node(c, N_TEST, line);
    t->name = name;
    t->op = (uint16_t)(qrm_ct_test_id(name) + 1); /* 0: unknown, reported when evaluated */
    t->a = operand;
    ct_token *k = cur(c);
    if (is_op(c, "(")) {
        t->b = parse_call_args(c);
    } else if ((k->kind == T_NAME || k->kind == T_STRING || k->kind == T_INT || k->kind == T_FLOAT ||
                tok_is_op(k, "(") || tok_is_op(k, "[") || tok_is_op(k, "{")) &&
               !tok_is_name(k, "else") && !tok_is_name(k, "or") && !tok_is_name(k, "and")) {
        if (tok_is_name(k, "is")) qrm_ct_compile_fail(c, line, "You cannot chain multiple tests with is");
        t->b = parse_postfix(c, parse_primary(c, 0));
    }
    if (negated) {
        ct_node *n = node(c, N_NOT, line);
        n->a = t;
        return n;
    }
    return t;
}

static ct_node *parse_list(ct_compiler *c) {
    ct_node *n = node(c, N_LIST, cur(c)->line);
    expect_op(c, "[");
    nlist items = {0};
    while (!is_op(c, "]")) {
        if (items.count) expect_op(c, ",");
        if (is_op(c, "]")) break;
        nl_add(&items, parse_expression(c, 1));
    }
    expect_op(c, "]");
    n->a = items.head;
    return n;
}

static ct_node *parse_dict(ct_compiler *c) {
    ct_node *n = node(c, N_DICT, cur(c)->line);
    expect_op(c, "{");
    nlist items = {0};
    while (!is_op(c, "}")) {
        if (items.count) expect_op(c, ",");
        if (is_op(c, "}")) break;
        ct_node *p = node(c, N_PAIR, cur(c)->line);
        p->a = parse_expression(c, 1);
        expect_op(c, ":");
        p->b = parse_expression(c, 1);
        nl_add(&items, p);
    }
    expect_op(c, "}");
    n->a = items.head;
    return n;
}

static void note_name(ct_compiler *c, const char *name) {
    if (!c->macro) return;
    if (strcmp(name, "caller") == 0) c->macro->flags |= CT_F_USES_CALLER;
    else if (strcmp(name, "varargs") == 0) c->macro->flags |= CT_F_USES_VARARGS;
    else if (strcmp(name, "kwargs") == 0) c->macro->flags |= CT_F_USES_KWARGS;
}

static ct_node *parse_primary(ct_compiler *c, int with_namespace) {
    ct_token *t = cur(c);
    ct_node *n;
    enter(c);
    if (t->kind == T_NAME) {
        advance(c);
        if (tok_is_name(t, "true") || tok_is_name(t, "True") || tok_is_name(t, "false") || tok_is_name(t, "False")) {
            n = node(c, N_CONST, t->line);
            n->val = qrm_ct_bool(t->p[0] == 't' || t->p[0] == 'T');
        } else if (tok_is_name(t, "none") || tok_is_name(t, "None")) {
            n = node(c, N_CONST, t->line);
            n->val = qrm_ct_none();
        } else if (with_namespace && is_op(c, ".")) {
            advance(c);
            n = node(c, N_NSREF, t->line);
            n->name = dup_tok(c, t);
            n->name2 = expect_name(c);
        } else {
            n = node(c, N_NAME, t->line);
            n->name = dup_tok(c, t);
            note_name(c, n->name);
        }
    } else if (t->kind == T_STRING) {
        n = node(c, N_CONST, t->line);
        size_t total = 0;
        size_t k = c->pos;
        while (c->toks[k].kind == T_STRING) total += c->toks[k++].n;
        char *s = qrm_ct_arena_alloc(c->arena, total + 1);
        if (!s) qrm_ct_compile_fail(c, t->line, "template too large");
        size_t at = 0;
        while (cur(c)->kind == T_STRING) { /* adjacent literals concatenate */
            memcpy(s + at, cur(c)->p, cur(c)->n);
            at += cur(c)->n;
            advance(c);
        }
        s[at] = 0;
        n->val = qrm_ct_str(s, at);
    } else if (t->kind == T_INT || t->kind == T_FLOAT) {
        advance(c);
        n = node(c, N_CONST, t->line);
        n->val = t->kind == T_INT ? qrm_ct_int(t->i) : qrm_ct_float(t->f);
    } else if (tok_is_op(t, "(")) {
        advance(c);
        n = parse_tuple(c, 0, 1, NULL, 1);
        expect_op(c, ")");
    } else if (tok_is_op(t, "[")) {
        n = parse_list(c);
    } else if (tok_is_op(t, "{")) {
        n = parse_dict(c);
    } else {
        fail_unexpected(c, NULL);
    }
    leave(c);
    return n;
}

static ct_node *parse_subscribed(ct_compiler *c) {
    int line = cur(c)->line;
    ct_node *parts[3] = {NULL, NULL, NULL};
    if (is_op(c, ":")) {
        advance(c);
    } else {
        ct_node *e = parse_expression(c, 1);
        if (!is_op(c, ":")) return e;
        advance(c);
        parts[0] = e;
    }
    if (is_op(c, ":")) {
        /* no stop */
    } else if (!is_op(c, "]") && !is_op(c, ",")) {
        parts[1] = parse_expression(c, 1);
    }
    if (is_op(c, ":")) {
        advance(c);
        if (!is_op(c, "]") && !is_op(c, ",")) parts[2] = parse_expression(c, 1);
    }
    ct_node *s = node(c, N_SLICE, line);
    s->a = parts[0];
    s->b = parts[1];
    s->c = parts[2];
    return s;
}

static ct_node *parse_subscript(ct_compiler *c, ct_node *obj) {
    ct_token *t = cur(c);
    advance(c);
    if (tok_is_op(t, ".")) {
        ct_token *a = cur(c);
        advance(c);
        if (a->kind == T_NAME) {
            ct_node *n = node(c, N_GETATTR, t->line);
            n->a = obj;
            n->name = dup_tok(c, a);
            return n;
        }
        if (a->kind != T_INT) qrm_ct_compile_fail(c, a->line, "expected name or number");
        ct_node *n = node(c, N_GETITEM, t->line);
        n->a = obj;
        n->b = node(c, N_CONST, a->line);
        n->b->val = qrm_ct_int(a->i);
        return n;
    }
    nlist args = {0};
    while (!is_op(c, "]")) {
        if (args.count) expect_op(c, ",");
        nl_add(&args, parse_subscribed(c));
    }
    expect_op(c, "]");
    if (args.count == 0) qrm_ct_compile_fail(c, t->line, "expected subscript expression");
    ct_node *n = node(c, N_GETITEM, t->line);
    n->a = obj;
    if (args.count == 1) {
        n->b = args.head;
    } else {
        n->b = node(c, N_TUPLE, t->line);
        n->b->a = args.head;
    }
    return n;
}

static ct_node *parse_call(ct_compiler *c, ct_node *fn) {
    ct_node *n = node(c, N_CALL, cur(c)->line);
    n->a = fn;
    n->b = parse_call_args(c);
    return n;
}

/* Chains like a.b.c or x|f|g nest in the tree, so every link counts as a
 * nesting level (the renderer recurses over the tree). */
static ct_node *parse_postfix(ct_compiler *c, ct_node *n) {
    int links = 0;
    for (;; links++) {
        if (is_op(c, ".") || is_op(c, "[")) n = parse_subscript(c, n);
        else if (is_op(c, "(")) n = parse_call(c, n);
        else break;
        enter(c);
    }
    c->depth -= links;
    return n;
}

static ct_node *parse_filter_expr(ct_compiler *c, ct_node *n) {
    int links = 0;
    for (;; links++) {
        if (is_op(c, "|")) n = parse_filter(c, n, 0);
        else if (is_name(c, "is")) n = parse_test(c, n);
        else if (is_op(c, "(")) n = parse_call(c, n);
        else break;
        enter(c);
    }
    c->depth -= links;
    return n;
}

static ct_node *parse_unary(ct_compiler *c, int with_filter) {
    int line = cur(c)->line;
    ct_node *n;
    enter(c);
    if (is_op(c, "-") || is_op(c, "+")) {
        int neg = is_op(c, "-");
        advance(c);
        n = node(c, neg ? N_NEG : N_POS, line);
        n->a = parse_unary(c, 0);
    } else {
        n = parse_primary(c, 0);
    }
    n = parse_postfix(c, n);
    if (with_filter) n = parse_filter_expr(c, n);
    leave(c);
    return n;
}

static ct_node *binop(ct_compiler *c, int op, ct_node *a, ct_node *b, int line) {
    ct_node *n = node(c, N_BIN, line);
    n->op = (uint16_t)op;
    n->a = a;
    n->b = b;
    return n;
}

static ct_node *parse_pow(ct_compiler *c) {
    ct_node *left = parse_unary(c, 1);
    int links = 0;
    while (is_op(c, "**")) {
        int line = cur(c)->line;
        advance(c);
        enter(c);
        links++;
        left = binop(c, OP_POW, left, parse_unary(c, 1), line);
    }
    c->depth -= links;
    return left;
}

static ct_node *parse_math2(ct_compiler *c) {
    ct_node *left = parse_pow(c);
    int links = 0;
    for (;;) {
        int op = is_op(c, "*") ? OP_MUL : is_op(c, "/") ? OP_DIV : is_op(c, "//") ? OP_FLOORDIV : is_op(c, "%") ? OP_MOD : -1;
        if (op < 0) break;
        int line = cur(c)->line;
        advance(c);
        enter(c);
        links++;
        left = binop(c, op, left, parse_pow(c), line);
    }
    c->depth -= links;
    return left;
}

static ct_node *parse_concat(ct_compiler *c) {
    ct_node *first = parse_math2(c);
    if (!is_op(c, "~")) return first;
    ct_node *n = node(c, N_CONCAT, cur(c)->line);
    nlist items = {0};
    nl_add(&items, first);
    while (skip_op(c, "~")) nl_add(&items, parse_math2(c));
    n->a = items.head;
    return n;
}

static ct_node *parse_math1(ct_compiler *c) {
    ct_node *left = parse_concat(c);
    int links = 0;
    for (;;) {
        int op = is_op(c, "+") ? OP_ADD : is_op(c, "-") ? OP_SUB : -1;
        if (op < 0) break;
        int line = cur(c)->line;
        advance(c);
        enter(c);
        links++;
        left = binop(c, op, left, parse_concat(c), line);
    }
    c->depth -= links;
    return left;
}

static ct_node *parse_compare(ct_compiler *c) {
    int line = cur(c)->line;
    ct_node *expr = parse_math1(c);
    nlist ops = {0};
    for (;;) {
        int op = is_op(c, "==") ? OP_EQ : is_op(c, "!=") ? OP_NE : is_op(c, "<") ? OP_LT
               : is_op(c, "<=") ? OP_LE : is_op(c, ">") ? OP_GT : is_op(c, ">=") ? OP_GE : -1;
        if (op >= 0) {
            advance(c);
        } else if (is_name(c, "in")) {
            advance(c);
            op = OP_IN;
        } else if (is_name(c, "not") && tok_is_name(look(c), "in")) {
            advance(c);
            advance(c);
            op = OP_NOTIN;
        } else {
            break;
        }
        ct_node *o = node(c, N_CMPOP, cur(c)->line);
        o->op = (uint16_t)op;
        o->a = parse_math1(c);
        nl_add(&ops, o);
    }
    if (!ops.count) return expr;
    ct_node *n = node(c, N_COMPARE, line);
    n->a = expr;
    n->b = ops.head;
    return n;
}

static ct_node *parse_not(ct_compiler *c) {
    if (is_name(c, "not")) {
        int line = cur(c)->line;
        advance(c);
        enter(c);
        ct_node *n = node(c, N_NOT, line);
        n->a = parse_not(c);
        leave(c);
        return n;
    }
    return parse_compare(c);
}

static ct_node *parse_and(ct_compiler *c) {
    ct_node *left = parse_not(c);
    int links = 0;
    while (is_name(c, "and")) {
        int line = cur(c)->line;
        advance(c);
        enter(c);
        links++;
        ct_node *n = node(c, N_AND, line);
        n->a = left;
        n->b = parse_not(c);
        left = n;
    }
    c->depth -= links;
    return left;
}

static ct_node *parse_or(ct_compiler *c) {
    ct_node *left = parse_and(c);
    int links = 0;
    while (is_name(c, "or")) {
        int line = cur(c)->line;
        advance(c);
        enter(c);
        links++;
        ct_node *n = node(c, N_OR, line);
        n->a = left;
        n->b = parse_and(c);
        left = n;
    }
    c->depth -= links;
    return left;
}

static ct_node *parse_condexpr(ct_compiler *c) {
    enter(c);
    ct_node *expr = parse_or(c);
    int links = 0;
    while (is_name(c, "if")) {
        int line = cur(c)->line;
        advance(c);
        enter(c);
        links++;
        ct_node *n = node(c, N_COND, line);
        n->b = expr;
        n->a = parse_or(c);
        if (skip_name(c, "else")) n->c = parse_condexpr(c);
        expr = n;
    }
    c->depth -= links;
    leave(c);
    return expr;
}

static ct_node *parse_expression(ct_compiler *c, int with_condexpr) {
    return with_condexpr ? parse_condexpr(c) : parse_or(c);
}

static int is_tuple_end(ct_compiler *c, const char *extra_end) {
    ct_token *t = cur(c);
    if (t->kind == T_VAR_END || t->kind == T_BLOCK_END || t->kind == T_EOF || tok_is_op(t, ")")) return 1;
    return extra_end && tok_is_name(t, extra_end);
}

static ct_node *parse_tuple(ct_compiler *c, int simplified, int with_condexpr, const char *extra_end,
                            int explicit_parens) {
    int line = cur(c)->line;
    nlist items = {0};
    int is_tuple = 0;
    for (;;) {
        if (items.count) expect_op(c, ",");
        if (is_tuple_end(c, extra_end)) break;
        nl_add(&items, simplified ? parse_primary(c, 1) : parse_expression(c, with_condexpr));
        if (is_op(c, ",")) is_tuple = 1;
        else break;
    }
    if (!is_tuple) {
        if (items.count) return items.head;
        if (!explicit_parens) {
            char buf[64];
            qrm_ct_compile_fail(c, cur(c)->line, "expected an expression, got %s", describe(cur(c), buf, sizeof buf));
        }
    }
    ct_node *n = node(c, N_TUPLE, line);
    n->a = items.head;
    return n;
}

/* ---------------------------------------------------------------- statements */

static ct_node *subparse(ct_compiler *c, const char *const *end_names);

static void check_assignable(ct_compiler *c, ct_node *t, int allow_ns) {
    if (t->kind == N_NAME) {
        const char *n = t->name;
        if (!strcmp(n, "true") || !strcmp(n, "false") || !strcmp(n, "none") || !strcmp(n, "True") ||
            !strcmp(n, "False") || !strcmp(n, "None"))
            qrm_ct_compile_fail(c, t->line, "can't assign to '%s'", n);
        return;
    }
    if (t->kind == N_NSREF && allow_ns) return;
    if (t->kind == N_TUPLE) {
        for (ct_node *i = t->a; i; i = i->next) check_assignable(c, i, allow_ns);
        return;
    }
    qrm_ct_compile_fail(c, t->line, "can't assign to this expression");
}

static ct_node *parse_assign_target(ct_compiler *c, const char *extra_end, int with_namespace) {
    ct_node *t = parse_tuple(c, 1, 1, extra_end, 0);
    check_assignable(c, t, with_namespace);
    return t;
}

/* Parses `%}` body up to one of end_names; returns the body with the end
 * tag's name as the current token. `what` names the construct for messages. */
static ct_node *parse_body(ct_compiler *c, const char *const *end_names, const char *what, int line) {
    skip_op(c, ":");
    expect_kind(c, T_BLOCK_END, "end of statement block");
    ct_node *body = subparse(c, end_names);
    if (cur(c)->kind == T_EOF)
        qrm_ct_compile_fail(c, line, "unclosed '%s' block: expected '%s' before the end of the template", what, end_names[0]);
    return body;
}

static ct_node *parse_if(ct_compiler *c) {
    static const char *const ends[] = {"endif", "elif", "else", NULL};
    static const char *const end_only[] = {"endif", NULL};
    int line = cur(c)->line;
    advance(c);
    ct_node *top = node(c, S_IF, line), *n = top;
    int links = 0; /* each elif nests one level deeper */
    for (;;) {
        n->a = parse_tuple(c, 0, 0, NULL, 0);
        n->b = parse_body(c, ends, "if", line);
        if (skip_name(c, "elif")) {
            ct_node *e = node(c, S_IF, cur(c)->line);
            n->c = e;
            n = e;
            enter(c);
            links++;
            continue;
        }
        if (skip_name(c, "else")) n->c = parse_body(c, end_only, "if", line);
        advance(c); /* endif */
        c->depth -= links;
        return top;
    }
}

static ct_node *parse_for(ct_compiler *c) {
    static const char *const ends[] = {"endfor", "else", NULL};
    static const char *const end_only[] = {"endfor", NULL};
    int line = cur(c)->line;
    advance(c);
    ct_node *n = node(c, S_FOR, line);
    n->a = parse_assign_target(c, "in", 0);
    if (!skip_name(c, "in")) fail_unexpected(c, "'in'");
    n->b = parse_tuple(c, 0, 0, "recursive", 0);
    if (skip_name(c, "if")) n->e = parse_expression(c, 1);
    if (is_name(c, "recursive")) qrm_ct_compile_fail(c, line, "unsupported: recursive for loops");
    n->c = parse_body(c, ends, "for", line);
    if (skip_name(c, "else")) n->d = parse_body(c, end_only, "for", line);
    advance(c); /* endfor */
    return n;
}

static ct_node *parse_set(ct_compiler *c) {
    static const char *const ends[] = {"endset", NULL};
    int line = cur(c)->line;
    advance(c);
    ct_node *target = parse_assign_target(c, NULL, 1);
    if (skip_op(c, "=")) {
        ct_node *n = node(c, S_SET, line);
        n->a = target;
        n->b = parse_tuple(c, 0, 1, NULL, 0);
        return n;
    }
    ct_node *n = node(c, S_SETBLOCK, line);
    n->a = target;
    n->b = parse_filter(c, NULL, 0);
    n->c = parse_body(c, ends, "set", line);
    advance(c);
    return n;
}

static ct_node *parse_signature(ct_compiler *c) {
    expect_op(c, "(");
    nlist params = {0};
    int has_default = 0;
    while (!is_op(c, ")")) {
        if (params.count) expect_op(c, ",");
        ct_node *p = node(c, N_PARAM, cur(c)->line);
        p->name = expect_name(c);
        if (skip_op(c, "=")) {
            p->a = parse_expression(c, 1);
            has_default = 1;
        } else if (has_default) {
            qrm_ct_compile_fail(c, p->line, "non-default argument follows default argument");
        }
        nl_add(&params, p);
    }
    expect_op(c, ")");
    return params.head;
}

static ct_node *parse_macro(ct_compiler *c) {
    static const char *const ends[] = {"endmacro", NULL};
    int line = cur(c)->line;
    advance(c);
    ct_node *n = node(c, S_MACRO, line);
    n->name = expect_name(c);
    n->a = parse_signature(c);
    ct_node *saved = c->macro;
    c->macro = n;
    n->c = parse_body(c, ends, "macro", line);
    c->macro = saved;
    advance(c);
    return n;
}

static ct_node *parse_call_block(ct_compiler *c) {
    static const char *const ends[] = {"endcall", NULL};
    int line = cur(c)->line;
    advance(c);
    ct_node *n = node(c, S_CALLBLOCK, line);
    if (is_op(c, "(")) n->b = parse_signature(c);
    n->a = parse_expression(c, 1);
    if (n->a->kind != N_CALL) qrm_ct_compile_fail(c, line, "expected call");
    ct_node *saved = c->macro;
    c->macro = n; /* the body is the `caller` macro */
    n->c = parse_body(c, ends, "call", line);
    c->macro = saved;
    advance(c);
    return n;
}

static ct_node *parse_filter_block(ct_compiler *c) {
    static const char *const ends[] = {"endfilter", NULL};
    int line = cur(c)->line;
    advance(c);
    ct_node *n = node(c, S_FILTERBLOCK, line);
    n->b = parse_filter(c, NULL, 1);
    n->c = parse_body(c, ends, "filter", line);
    advance(c);
    return n;
}

static ct_node *parse_with(ct_compiler *c) {
    static const char *const ends[] = {"endwith", NULL};
    int line = cur(c)->line;
    advance(c);
    ct_node *n = node(c, S_WITH, line);
    nlist targets = {0}, values = {0};
    while (cur(c)->kind != T_BLOCK_END) {
        if (targets.count) expect_op(c, ",");
        ct_node *t = parse_assign_target(c, NULL, 0);
        expect_op(c, "=");
        nl_add(&targets, t);
        nl_add(&values, parse_expression(c, 1));
    }
    n->a = targets.head;
    n->b = values.head;
    n->c = parse_body(c, ends, "with", line);
    advance(c);
    return n;
}

static ct_node *parse_print(ct_compiler *c) {
    int line = cur(c)->line;
    advance(c);
    nlist outs = {0};
    while (cur(c)->kind != T_BLOCK_END) {
        if (outs.count) expect_op(c, ",");
        ct_node *o = node(c, S_OUTPUT, line);
        o->a = parse_expression(c, 1);
        nl_add(&outs, o);
    }
    /* several outputs: wrap them in an `if true` so one node comes back */
    ct_node *n = node(c, S_IF, line);
    n->a = node(c, N_CONST, line);
    n->a->val = qrm_ct_bool(1);
    n->b = outs.head;
    return n;
}

static ct_node *parse_generation(ct_compiler *c) {
    static const char *const ends[] = {"endgeneration", NULL};
    int line = cur(c)->line;
    advance(c);
    ct_node *n = node(c, S_GENERATION, line);
    n->c = parse_body(c, ends, "generation", line);
    advance(c);
    return n;
}

static ct_node *parse_statement(ct_compiler *c) {
    ct_token *t = cur(c);
    if (t->kind != T_NAME) qrm_ct_compile_fail(c, t->line, "tag name expected");
    enter(c);
    ct_node *n;
    if (tok_is_name(t, "if")) n = parse_if(c);
    else if (tok_is_name(t, "for")) n = parse_for(c);
    else if (tok_is_name(t, "set")) n = parse_set(c);
    else if (tok_is_name(t, "macro")) n = parse_macro(c);
    else if (tok_is_name(t, "call")) n = parse_call_block(c);
    else if (tok_is_name(t, "filter")) n = parse_filter_block(c);
    else if (tok_is_name(t, "with")) n = parse_with(c);
    else if (tok_is_name(t, "print")) n = parse_print(c);
    else if (tok_is_name(t, "generation")) n = parse_generation(c);
    else if (tok_is_name(t, "break") || tok_is_name(t, "continue")) {
        n = node(c, tok_is_name(t, "break") ? S_BREAK : S_CONTINUE, t->line);
        advance(c);
    } else if (tok_is_name(t, "block") || tok_is_name(t, "extends") || tok_is_name(t, "include") ||
               tok_is_name(t, "import") || tok_is_name(t, "from") || tok_is_name(t, "autoescape")) {
        qrm_ct_compile_fail(c, t->line, "unsupported tag '%.*s'", (int)t->n, t->p);
    } else if ((t->n > 3 && memcmp(t->p, "end", 3) == 0) || tok_is_name(t, "elif") || tok_is_name(t, "else")) {
        qrm_ct_compile_fail(c, t->line, "unexpected '%.*s': no open block it could close or continue",
                            (int)(t->n > 40 ? 40 : t->n), t->p);
    } else {
        qrm_ct_compile_fail(c, t->line, "unknown tag '%.*s'", (int)(t->n > 40 ? 40 : t->n), t->p);
    }
    leave(c);
    return n;
}

static ct_node *subparse(ct_compiler *c, const char *const *end_names) {
    nlist body = {0};
    for (;;) {
        ct_token *t = cur(c);
        if (t->kind == T_EOF) return body.head;
        if (t->kind == T_TEXT) {
            ct_node *n = node(c, S_TEXT, t->line);
            n->val = qrm_ct_str(t->p, t->n);
            nl_add(&body, n);
            advance(c);
        } else if (t->kind == T_VAR_BEGIN) {
            advance(c);
            ct_node *n = node(c, S_OUTPUT, t->line);
            n->a = parse_tuple(c, 0, 1, NULL, 0);
            expect_kind(c, T_VAR_END, "end of print statement");
            nl_add(&body, n);
        } else if (t->kind == T_BLOCK_BEGIN) {
            advance(c);
            if (end_names)
                for (int i = 0; end_names[i]; i++)
                    if (is_name(c, end_names[i])) return body.head;
            nl_add(&body, parse_statement(c));
            expect_kind(c, T_BLOCK_END, "end of statement block");
        } else {
            fail_unexpected(c, NULL);
        }
    }
}

/* break/continue must sit inside a for loop of the same macro. */
static void check_loops(ct_compiler *c, const ct_node *n, int in_loop) {
    for (; n; n = n->next) {
        switch (n->kind) {
        case S_BREAK:
        case S_CONTINUE:
            if (!in_loop) qrm_ct_compile_fail(c, n->line, "'%s' outside of a for loop", n->kind == S_BREAK ? "break" : "continue");
            break;
        case S_IF:
            check_loops(c, n->b, in_loop);
            check_loops(c, n->c, in_loop);
            break;
        case S_FOR:
            check_loops(c, n->c, 1);
            check_loops(c, n->d, in_loop);
            break;
        case S_MACRO:
        case S_CALLBLOCK:
        case S_GENERATION: /* bodies of functions in Jinja's compiled code */
            check_loops(c, n->c, 0);
            break;
        case S_SETBLOCK:
        case S_FILTERBLOCK:
        case S_WITH: check_loops(c, n->c, in_loop); break;
        default: break;
        }
    }
}

ct_node *qrm_ct_parse(ct_compiler *c) {
    c->pos = 0;
    ct_node *body = subparse(c, NULL);
    if (cur(c)->kind != T_EOF) fail_unexpected(c, NULL);
    check_loops(c, body, 0);
    return body;
}

/* ---------------------------------------------------------------- entry */

#define CT_COMPILE_MEMORY (256u << 20)

qrm_template *qrm_template_compile(const char *src, size_t len, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!src && len) {
        if (err && errlen) snprintf(err, errlen, "chat template: no source");
        return NULL;
    }
    qrm_template *t = calloc(1, sizeof *t);
    ct_compiler *c = calloc(1, sizeof *c); /* on the heap: longjmp leaves it intact */
    if (!t || !c) {
        free(t);
        free(c);
        if (err && errlen) snprintf(err, errlen, "chat template: out of memory");
        return NULL;
    }
    t->arena.cap = CT_COMPILE_MEMORY;
    c->arena = &t->arena;
    c->err = err;
    c->errlen = errlen;
    if (setjmp(c->jb)) {
        qrm_ct_arena_free(&t->arena);
        free(t);
        free(c);
        return NULL;
    }
    qrm_ct_lex(c, src ? src : "", len);
    t->body = qrm_ct_parse(c);
    t->undef = qrm_ct_analyze_scopes(c, t->body);
    free(c);
    return t;
}

void qrm_template_free(qrm_template *t) {
    if (!t) return;
    qrm_ct_arena_free(&t->arena);
    free(t);
}
