/* Chat templates: the renderer. Walks the syntax tree with Jinja2's runtime
 * rules: scopes (a for-loop body gets a fresh scope every iteration, so a
 * `set` inside a loop never leaks out; `if` has no scope), Undefined for
 * missing names and attributes, Python operator semantics, macros with
 * `caller`, and the sandbox's refusal to mutate lists and dicts. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_template_internal.h"

void qrm_ct_fail(ct_render *r, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (r->arena.oom) snprintf(msg, sizeof msg, "out of memory");
    /* errors are one line, and a template's own text (raise_exception's
     * message, a key) may hold line breaks */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
    if (r->err && r->errlen) {
        if (r->line > 0) snprintf(r->err, r->errlen, "chat template: line %d: %s", r->line, msg);
        else snprintf(r->err, r->errlen, "chat template: %s", msg);
    }
    longjmp(r->jb, 1);
}

void qrm_ct_step(ct_render *r) {
    if (++r->steps > QRM_TEMPLATE_MAX_STEPS)
        qrm_ct_fail(r, "rendering took more than %ld steps (a runaway loop?)", (long)QRM_TEMPLATE_MAX_STEPS);
}

void qrm_ct_charge(ct_render *r, size_t bytes) {
    r->steps += (long)(bytes >> 6);
    qrm_ct_step(r);
}

/* ---------------------------------------------------------------- scopes */

static ct_scope *scope_new(ct_render *r, ct_scope *parent) {
    ct_scope *s = qrm_ct_alloc(r, sizeof *s);
    memset(s, 0, sizeof *s);
    s->parent = parent;
    return s;
}

static void scope_set(ct_render *r, ct_scope *s, const char *name, ct_value v) {
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->vars[i].name, name) == 0) {
            s->vars[i].v = v;
            return;
        }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        ct_var *vars = qrm_ct_arena_grow(&r->arena, s->vars, s->n * sizeof(ct_var), cap * sizeof(ct_var));
        if (!vars) qrm_ct_fail(r, "out of memory");
        s->vars = vars;
        s->cap = cap;
    }
    s->vars[s->n].name = name;
    s->vars[s->n].v = v;
    s->n++;
}

static ct_value *scope_find(ct_scope *s, const char *name) {
    for (; s; s = s->parent)
        for (size_t i = s->n; i-- > 0;)
            if (strcmp(s->vars[i].name, name) == 0) return &s->vars[i].v;
    return NULL;
}

/* Frame entry: Jinja's compile-time scoping makes these names fresh locals. */
static void bind_undefined(ct_render *r, ct_scope *s, const char **names) {
    if (!names) return;
    for (; *names; names++) {
        char *msg = qrm_ct_alloc(r, strlen(*names) + 20);
        sprintf(msg, "'%s' is undefined", *names);
        scope_set(r, s, *names, qrm_ct_undef(msg));
    }
}

static ct_value lookup(ct_render *r, ct_scope *s, const char *name) {
    ct_value *v = scope_find(s, name);
    if (v) return *v;
    for (int fn = 0; fn < CT_FN_COUNT; fn++)
        if (strcmp(qrm_ct_global_name(fn), name) == 0) {
            ct_value f = {.type = CT_FUNC};
            f.u.i = fn;
            return f;
        }
    char *msg = qrm_ct_alloc(r, strlen(name) + 20);
    sprintf(msg, "'%s' is undefined", name);
    return qrm_ct_undef(msg);
}

/* ---------------------------------------------------------------- attributes and items */

static ct_value undef_attr(ct_render *r, ct_value obj, const char *name, size_t n) {
    char *msg = qrm_ct_alloc(r, n + 64);
    snprintf(msg, n + 64, "'%s object' has no attribute '%.*s'", qrm_ct_type_name(obj), (int)n, name);
    return qrm_ct_undef(msg);
}

/* environment.getattr: the attribute (method) first, then obj[name]. */
ct_value qrm_ct_getattr(ct_render *r, ct_value obj, const char *name, size_t n) {
    if (obj.type == CT_UNDEF) qrm_ct_fail_undef(r, obj);
    int found = 0;
    ct_value v = qrm_ct_builtin_attr(r, obj, name, n, &found);
    if (found) return v;
    if (obj.type == CT_DICT) {
        ct_value *hit = qrm_ct_dict_find_str(obj.u.dict, name, n);
        if (hit) return *hit;
    }
    return undef_attr(r, obj, name, n);
}

static int index_of(ct_value key, int64_t *i) {
    if (key.type == CT_INT) return *i = key.u.i, 1;
    if (key.type == CT_BOOL) return *i = key.u.b, 1;
    return 0;
}

/* environment.getitem: obj[key] first, then the attribute named key. */
ct_value qrm_ct_getitem(ct_render *r, ct_value obj, ct_value key) {
    int64_t i;
    switch (obj.type) {
    case CT_UNDEF: qrm_ct_fail_undef(r, obj);
    case CT_DICT: {
        ct_value *hit = qrm_ct_dict_find(r, obj.u.dict, key);
        if (hit) return *hit;
        break;
    }
    case CT_LIST:
        if (obj.u.list->kind <= CT_LK_RANGE && index_of(key, &i)) {
            int64_t len = (int64_t)obj.u.list->n;
            if (i < 0) i += len;
            if (i >= 0 && i < len) return obj.u.list->items[i];
        }
        break;
    case CT_STR:
        if (index_of(key, &i)) {
            qrm_ct_charge(r, obj.u.s.n);
            int64_t len = (int64_t)qrm_ct_cp_count(obj.u.s.p, obj.u.s.n);
            if (i < 0) i += len;
            if (i >= 0 && i < len) {
                size_t a = qrm_ct_cp_offset(obj.u.s.p, obj.u.s.n, (size_t)i), z = a;
                qrm_ct_next_cp(obj.u.s.p, obj.u.s.n, &z);
                ct_value ch = qrm_ct_str(obj.u.s.p + a, z - a);
                ch.markup = obj.markup;
                return ch;
            }
        }
        break;
    default: break;
    }
    if (key.type == CT_STR) {
        int found = 0;
        ct_value v = qrm_ct_builtin_attr(r, obj, key.u.s.p, key.u.s.n, &found);
        if (found) return v;
        return undef_attr(r, obj, key.u.s.p, key.u.s.n);
    }
    ct_sbuf b = {0};
    qrm_ct_sb_printf(r, &b, "'%s object' has no element ", qrm_ct_type_name(obj));
    qrm_ct_put_repr(r, &b, key);
    return qrm_ct_undef(b.p);
}

static int64_t slice_bound(ct_render *r, ct_value v, int *given) {
    int64_t i = 0;
    *given = 0;
    if (v.type == CT_ABSENT || v.type == CT_NONE) return 0;
    if (!index_of(v, &i)) qrm_ct_fail(r, "slice indices must be integers or None");
    *given = 1;
    return i;
}

static ct_value eval_slice(ct_render *r, ct_value obj, const ct_node *sl, ct_scope *s) {
    ct_value vs = sl->a ? qrm_ct_eval(r, sl->a, s) : (ct_value){.type = CT_ABSENT};
    ct_value ve = sl->b ? qrm_ct_eval(r, sl->b, s) : (ct_value){.type = CT_ABSENT};
    ct_value vp = sl->c ? qrm_ct_eval(r, sl->c, s) : (ct_value){.type = CT_ABSENT};
    if (obj.type == CT_UNDEF) qrm_ct_fail_undef(r, obj);
    int has_start, has_stop, has_step;
    int64_t start = slice_bound(r, vs, &has_start), stop = slice_bound(r, ve, &has_stop);
    int64_t step = slice_bound(r, vp, &has_step);
    if (!has_step) step = 1;
    if (step == 0) qrm_ct_fail(r, "slice step cannot be zero");
    if (obj.type == CT_STR) {
        qrm_ct_charge(r, obj.u.s.n);
        ct_value out = qrm_ct_str_slice(r, obj, start, stop, step, has_start, has_stop);
        out.markup = obj.markup;
        return out;
    }
    if (obj.type == CT_LIST && obj.u.list->kind <= CT_LK_RANGE) {
        ct_list *l = obj.u.list;
        size_t count = qrm_ct_slice_indices((int64_t)l->n, &start, &stop, step, has_start, has_stop);
        ct_value out = qrm_ct_list_new(r, count, l->kind);
        for (size_t k = 0; k < count; k++) out.u.list->items[k] = l->items[start + (int64_t)k * step];
        if (l->kind == CT_LK_RANGE) { /* what Python's range slicing reports */
            out.u.list->start = l->start + start * l->step;
            out.u.list->stop = l->start + stop * l->step;
            out.u.list->step = l->step * step;
        }
        return out;
    }
    /* slices bypass Jinja's getitem, so Python's TypeError surfaces */
    if (obj.type == CT_UNDEF) qrm_ct_fail_undef(r, obj);
    if (obj.type == CT_DICT) qrm_ct_fail(r, "unhashable type: 'slice'");
    qrm_ct_fail(r, "'%s' object is not subscriptable", qrm_ct_type_name(obj));
}

/* ---------------------------------------------------------------- operators */

static void check_operand(ct_render *r, ct_value v) {
    if (v.type == CT_UNDEF) qrm_ct_fail_undef(r, v);
}

CT_NORETURN static void bad_operands(ct_render *r, const char *op, ct_value a, ct_value b) {
    if (strcmp(op, "+") == 0 && a.type == CT_STR)
        qrm_ct_fail(r, "can only concatenate str (not \"%s\") to str", qrm_ct_type_name(b));
    if (strcmp(op, "+") == 0 && a.type == CT_LIST)
        qrm_ct_fail(r, "can only concatenate %s (not \"%s\") to %s", qrm_ct_type_name(a), qrm_ct_type_name(b), qrm_ct_type_name(a));
    qrm_ct_fail(r, "unsupported operand type(s) for %s: '%s' and '%s'", op, qrm_ct_type_name(a), qrm_ct_type_name(b));
}

static int as_int(ct_value v, int64_t *i) {
    if (v.type == CT_INT) return *i = v.u.i, 1;
    if (v.type == CT_BOOL) return *i = v.u.b, 1;
    return 0;
}

static ct_value repeat(ct_render *r, ct_value seq, int64_t times) {
    if (times < 0) times = 0;
    if (seq.type == CT_STR) {
        if (seq.u.s.n && (uint64_t)times > QRM_TEMPLATE_MAX_OUTPUT / seq.u.s.n)
            qrm_ct_fail(r, "string longer than %u MiB", QRM_TEMPLATE_MAX_OUTPUT >> 20);
        ct_sbuf b = {0};
        for (int64_t k = 0; k < times; k++) qrm_ct_sb_put(r, &b, seq.u.s.p, seq.u.s.n);
        ct_value out = qrm_ct_sb_value(&b);
        out.markup = seq.markup;
        return out;
    }
    ct_list *l = seq.u.list;
    if (l->n && (uint64_t)times > (QRM_TEMPLATE_MAX_MEMORY / sizeof(ct_value)) / l->n)
        qrm_ct_fail(r, "list too long");
    ct_value out = qrm_ct_list_new(r, l->n * (size_t)times, l->kind == CT_LK_TUPLE ? CT_LK_TUPLE : CT_LK_LIST);
    for (int64_t k = 0; k < times; k++)
        memcpy(out.u.list->items + (size_t)k * l->n, l->items, l->n * sizeof(ct_value));
    return out;
}

/* Python float // and % (sign of the divisor). */
static void float_divmod(double x, double y, double *fdiv, double *fmodv) {
    double mod = fmod(x, y);
    double div = (x - mod) / y;
    if (mod != 0) {
        if ((y < 0) != (mod < 0)) {
            mod += y;
            div -= 1.0;
        }
    } else {
        mod = copysign(0.0, y);
    }
    double fl;
    if (div != 0) {
        fl = floor(div);
        if (div - fl > 0.5) fl += 1.0;
    } else {
        fl = copysign(0.0, x / y);
    }
    *fdiv = fl;
    *fmodv = mod;
}

static ct_value markup_concat(ct_render *r, ct_value a, ct_value b) {
    /* Markup + str escapes the plain side, as markupsafe does */
    if (!a.markup) a = qrm_ct_html_escape(r, a);
    if (!b.markup) b = qrm_ct_html_escape(r, b);
    ct_sbuf s = {0};
    qrm_ct_sb_put(r, &s, a.u.s.p, a.u.s.n);
    qrm_ct_sb_put(r, &s, b.u.s.p, b.u.s.n);
    ct_value out = qrm_ct_sb_value(&s);
    out.markup = 1;
    return out;
}

static ct_value binary(ct_render *r, int op, ct_value a, ct_value b) {
    static const char *const names[] = {"+", "-", "*", "/", "//", "%", "**"};
    check_operand(r, a);
    check_operand(r, b);
    int64_t x = 0, y = 0;
    int ints = as_int(a, &x) && as_int(b, &y);
    int nums = qrm_ct_is_number(a) && qrm_ct_is_number(b);
    switch (op) {
    case OP_ADD:
        if (ints) {
            int64_t z;
            if (__builtin_add_overflow(x, y, &z)) qrm_ct_fail(r, "integer overflow");
            return qrm_ct_int(z);
        }
        if (nums) return qrm_ct_float(qrm_ct_as_double(a) + qrm_ct_as_double(b));
        if (a.type == CT_STR && b.type == CT_STR) {
            if (a.markup || b.markup) return markup_concat(r, a, b);
            if (b.u.s.n == 0) return a;
            if (a.u.s.n == 0) return b;
            ct_sbuf s = {0};
            qrm_ct_sb_put(r, &s, a.u.s.p, a.u.s.n);
            qrm_ct_sb_put(r, &s, b.u.s.p, b.u.s.n);
            return qrm_ct_sb_value(&s);
        }
        if (a.type == CT_LIST && b.type == CT_LIST && a.u.list->kind == b.u.list->kind &&
            (a.u.list->kind == CT_LK_LIST || a.u.list->kind == CT_LK_TUPLE)) {
            ct_list *p = a.u.list, *q = b.u.list;
            ct_value out = qrm_ct_list_new(r, p->n + q->n, p->kind);
            memcpy(out.u.list->items, p->items, p->n * sizeof(ct_value));
            memcpy(out.u.list->items + p->n, q->items, q->n * sizeof(ct_value));
            return out;
        }
        break;
    case OP_SUB:
        if (ints) {
            int64_t z;
            if (__builtin_sub_overflow(x, y, &z)) qrm_ct_fail(r, "integer overflow");
            return qrm_ct_int(z);
        }
        if (nums) return qrm_ct_float(qrm_ct_as_double(a) - qrm_ct_as_double(b));
        break;
    case OP_MUL:
        if (ints) {
            int64_t z;
            if (__builtin_mul_overflow(x, y, &z)) qrm_ct_fail(r, "integer overflow");
            return qrm_ct_int(z);
        }
        if (nums) return qrm_ct_float(qrm_ct_as_double(a) * qrm_ct_as_double(b));
        if ((a.type == CT_STR || (a.type == CT_LIST && a.u.list->kind <= CT_LK_TUPLE)) && as_int(b, &y)) return repeat(r, a, y);
        if ((b.type == CT_STR || (b.type == CT_LIST && b.u.list->kind <= CT_LK_TUPLE)) && as_int(a, &x)) return repeat(r, b, x);
        break;
    case OP_DIV:
        if (nums) {
            if (qrm_ct_as_double(b) == 0) qrm_ct_fail(r, "division by zero");
            if (ints) return qrm_ct_float((double)x / (double)y);
            return qrm_ct_float(qrm_ct_as_double(a) / qrm_ct_as_double(b));
        }
        break;
    case OP_FLOORDIV:
    case OP_MOD:
        if (a.type == CT_STR && op == OP_MOD) return qrm_ct_percent_format(r, a, b);
        if (ints) {
            if (y == 0) qrm_ct_fail(r, "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) qrm_ct_fail(r, "integer overflow");
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) {
                q -= 1;
                m += y;
            }
            return qrm_ct_int(op == OP_FLOORDIV ? q : m);
        }
        if (nums) {
            double p = qrm_ct_as_double(a), q = qrm_ct_as_double(b), d, m;
            if (q == 0) qrm_ct_fail(r, "float division by zero");
            float_divmod(p, q, &d, &m);
            return qrm_ct_float(op == OP_FLOORDIV ? d : m);
        }
        break;
    case OP_POW:
        if (ints && y >= 0) {
            int64_t z = 1, base = x;
            for (int64_t e = y; e > 0; e >>= 1) {
                if ((e & 1) && __builtin_mul_overflow(z, base, &z)) qrm_ct_fail(r, "integer overflow");
                if (e > 1 && __builtin_mul_overflow(base, base, &base)) qrm_ct_fail(r, "integer overflow");
            }
            return qrm_ct_int(z);
        }
        if (nums) {
            double p = qrm_ct_as_double(a), q = qrm_ct_as_double(b);
            if (p == 0 && q < 0) qrm_ct_fail(r, "0.0 cannot be raised to a negative power");
            if (p < 0 && q != floor(q)) qrm_ct_fail(r, "unsupported: a negative number to a fractional power is complex");
            double z = pow(p, q);
            if (isinf(z) && !isinf(p)) qrm_ct_fail(r, "numerical result out of range");
            return qrm_ct_float(z);
        }
        break;
    }
    bad_operands(r, names[op], a, b);
}

static int contains(ct_render *r, ct_value container, ct_value item) {
    if (container.type == CT_STR) qrm_ct_charge(r, container.u.s.n);
    if (container.type == CT_LIST) qrm_ct_charge(r, container.u.list->n * 16);
    switch (container.type) {
    case CT_UNDEF: return 0; /* Undefined iterates as empty */
    case CT_STR:
        if (item.type == CT_UNDEF) qrm_ct_fail_undef(r, item);
        if (item.type != CT_STR)
            qrm_ct_fail(r, "'in <string>' requires string as left operand, not %s", qrm_ct_type_name(item));
        return qrm_ct_str_find(container.u.s.p, container.u.s.n, item.u.s.p, item.u.s.n, 0) >= 0;
    case CT_LIST:
        for (size_t i = 0; i < container.u.list->n; i++)
            if (qrm_ct_equal(r, container.u.list->items[i], item)) return 1;
        return 0;
    case CT_DICT:
        if ((item.type == CT_LIST && item.u.list->kind != CT_LK_TUPLE) || item.type == CT_DICT || item.type == CT_NS)
            qrm_ct_fail(r, "unhashable type: '%s'", qrm_ct_type_name(item));
        return qrm_ct_dict_find(r, container.u.dict, item) != NULL;
    case CT_ITER: {
        ct_iter *it = container.u.iter;
        while (it->pos < it->n)
            if (qrm_ct_equal(r, it->items[it->pos++], item)) return 1;
        return 0;
    }
    default: qrm_ct_fail(r, "argument of type '%s' is not iterable", qrm_ct_type_name(container));
    }
}

static int compare_op(ct_render *r, int op, ct_value a, ct_value b) {
    switch (op) {
    case OP_EQ: return qrm_ct_equal(r, a, b);
    case OP_NE: return !qrm_ct_equal(r, a, b);
    case OP_IN: return contains(r, b, a);
    case OP_NOTIN: return !contains(r, b, a);
    }
    int c = qrm_ct_compare(r, a, b);
    /* NaN: every ordering comparison is false */
    if ((a.type == CT_FLOAT && isnan(a.u.f)) || (b.type == CT_FLOAT && isnan(b.u.f))) return 0;
    switch (op) {
    case OP_LT: return c < 0;
    case OP_LE: return c <= 0;
    case OP_GT: return c > 0;
    default: return c >= 0;
    }
}

/* ---------------------------------------------------------------- calls */

static void eval_args(ct_render *r, const ct_node *list, ct_scope *s, ct_args *a, int extra_kw) {
    size_t np = 0, nk = (size_t)extra_kw;
    for (const ct_node *n = list; n; n = n->next) {
        if (n->kind == N_KWARG) nk++;
        else if (n->kind == N_STARARG || n->kind == N_STARKW) {
            /* counted after evaluation */
        } else np++;
    }
    ct_value star = {.type = CT_ABSENT}, starkw = {.type = CT_ABSENT};
    for (const ct_node *n = list; n; n = n->next) {
        if (n->kind == N_STARARG) star = qrm_ct_eval(r, n->a, s);
        if (n->kind == N_STARKW) starkw = qrm_ct_eval(r, n->a, s);
    }
    size_t nstar = 0, nstarkw = 0;
    ct_value *star_items = NULL;
    if (star.type != CT_ABSENT) star_items = qrm_ct_iterate(r, star, &nstar);
    if (starkw.type != CT_ABSENT) {
        if (starkw.type != CT_DICT) qrm_ct_fail(r, "argument after ** must be a mapping, not %s", qrm_ct_type_name(starkw));
        nstarkw = starkw.u.dict->n;
    }
    a->pos = qrm_ct_alloc(r, (np + nstar + 1) * sizeof(ct_value));
    a->kw = qrm_ct_alloc(r, (nk + nstarkw + 1) * sizeof(ct_value));
    a->kw_names = qrm_ct_alloc(r, (nk + nstarkw + 1) * sizeof(char *));
    a->npos = a->nkw = 0;
    for (const ct_node *n = list; n; n = n->next) {
        if (n->kind == N_KWARG) {
            a->kw_names[a->nkw] = n->name;
            a->kw[a->nkw++] = qrm_ct_eval(r, n->a, s);
        } else if (n->kind != N_STARARG && n->kind != N_STARKW) {
            a->pos[a->npos++] = qrm_ct_eval(r, n, s);
        }
    }
    for (size_t i = 0; i < nstar; i++) a->pos[a->npos++] = star_items[i];
    for (size_t i = 0; i < nstarkw; i++) {
        ct_value k = starkw.u.dict->keys[i];
        if (k.type != CT_STR) qrm_ct_fail(r, "keywords must be strings");
        char *name = qrm_ct_alloc(r, k.u.s.n + 1);
        memcpy(name, k.u.s.p, k.u.s.n);
        name[k.u.s.n] = 0;
        a->kw_names[a->nkw] = name;
        a->kw[a->nkw++] = starkw.u.dict->vals[i];
    }
}

void qrm_ct_bind(ct_render *r, const char *fname, ct_args *a, const char *const *params, size_t nparams,
                 ct_value *out) {
    for (size_t i = 0; i < nparams; i++) out[i].type = CT_ABSENT;
    if (a->npos > nparams)
        qrm_ct_fail(r, "%s() takes at most %zu argument%s (%zu given)", fname, nparams, nparams == 1 ? "" : "s", a->npos);
    for (size_t i = 0; i < a->npos; i++) out[i] = a->pos[i];
    for (size_t k = 0; k < a->nkw; k++) {
        size_t i = 0;
        while (i < nparams && strcmp(params[i], a->kw_names[k]) != 0) i++;
        if (i == nparams) qrm_ct_fail(r, "%s() got an unexpected keyword argument '%s'", fname, a->kw_names[k]);
        if (out[i].type != CT_ABSENT) qrm_ct_fail(r, "%s() got multiple values for argument '%s'", fname, params[i]);
        out[i] = a->kw[k];
    }
}

static int exec_list(ct_render *r, const ct_node *n, ct_scope *s);

/* Renders body into a fresh string (macro calls, block set, filter blocks).
 * *flow: a break or continue that left the body (Jinja inlines block set
 * and filter blocks, so those reach the enclosing loop). */
static ct_value capture(ct_render *r, const ct_node *body, ct_scope *s, int *flow) {
    ct_sbuf buf = {0}, *saved = r->out;
    r->out = &buf;
    int f = exec_list(r, body, s);
    r->out = saved;
    if (flow) *flow = f;
    return qrm_ct_sb_value(&buf);
}

static ct_value call_macro(ct_render *r, ct_macro *m, ct_args *a, ct_macro *caller) {
    const ct_node *def = m->def;
    const char *name = def->kind == S_MACRO ? def->name : "caller";
    const ct_node *params = def->kind == S_MACRO ? def->a : def->b;
    if (++r->call_depth > QRM_TEMPLATE_MAX_CALL_DEPTH)
        qrm_ct_fail(r, "macro calls nested more than %d deep", QRM_TEMPLATE_MAX_CALL_DEPTH);
    int saved_line = r->line;
    ct_scope *s = scope_new(r, m->closure);
    bind_undefined(r, s, def->undef);
    size_t nparams = 0;
    for (const ct_node *p = params; p; p = p->next) nparams++;
    if (a->npos > nparams && !(def->flags & CT_F_USES_VARARGS))
        qrm_ct_fail(r, "macro '%s' takes not more than %zu argument(s)", name, nparams);
    ct_value *vals = qrm_ct_alloc(r, (nparams + 1) * sizeof(ct_value));
    for (size_t i = 0; i < nparams; i++) vals[i].type = CT_ABSENT;
    for (size_t i = 0; i < a->npos && i < nparams; i++) vals[i] = a->pos[i];
    ct_value kwargs = qrm_ct_dict_new(r);
    for (size_t k = 0; k < a->nkw; k++) {
        size_t i = 0;
        const ct_node *p = params;
        for (; p && strcmp(p->name, a->kw_names[k]) != 0; p = p->next) i++;
        if (p) {
            if (vals[i].type != CT_ABSENT) qrm_ct_fail(r, "macro '%s' got multiple values for argument '%s'", name, p->name);
            vals[i] = a->kw[k];
        } else if (def->flags & CT_F_USES_KWARGS) {
            qrm_ct_dict_set(r, kwargs.u.dict, qrm_ct_str(a->kw_names[k], strlen(a->kw_names[k])), a->kw[k]);
        } else {
            qrm_ct_fail(r, "macro '%s' takes no keyword argument '%s'", name, a->kw_names[k]);
        }
    }
    size_t i = 0;
    for (const ct_node *p = params; p; p = p->next, i++) {
        if (vals[i].type == CT_ABSENT) {
            if (p->a) {
                vals[i] = qrm_ct_eval(r, p->a, s); /* defaults see earlier parameters */
            } else {
                char *msg = qrm_ct_alloc(r, strlen(p->name) + 40);
                sprintf(msg, "parameter '%s' was not provided", p->name);
                vals[i] = qrm_ct_undef(msg);
            }
        }
        scope_set(r, s, p->name, vals[i]);
    }
    if (def->flags & CT_F_USES_VARARGS) {
        size_t extra = a->npos > nparams ? a->npos - nparams : 0;
        ct_value va = qrm_ct_list_new(r, extra, CT_LK_TUPLE);
        for (size_t k = 0; k < extra; k++) va.u.list->items[k] = a->pos[nparams + k];
        scope_set(r, s, "varargs", va);
    }
    if (def->flags & CT_F_USES_KWARGS) scope_set(r, s, "kwargs", kwargs);
    if (caller) {
        ct_value cv = {.type = CT_MACRO};
        cv.u.macro = caller;
        scope_set(r, s, "caller", cv);
    }
    ct_value out = capture(r, def->c, s, NULL);
    r->call_depth--;
    r->line = saved_line;
    return out;
}

ct_value qrm_ct_call(ct_render *r, ct_value fn, ct_args *a) {
    switch (fn.type) {
    case CT_MACRO: return call_macro(r, fn.u.macro, a, NULL);
    case CT_FUNC: return qrm_ct_call_global(r, (int)fn.u.i, a);
    case CT_METHOD: return qrm_ct_call_method(r, fn.u.method, a);
    case CT_UNDEF: qrm_ct_fail_undef(r, fn);
    default: qrm_ct_fail(r, "'%s' object is not callable", qrm_ct_type_name(fn));
    }
}

/* ---------------------------------------------------------------- expressions */

static ct_value make_list(ct_render *r, const ct_node *items, ct_scope *s, int kind) {
    size_t n = 0;
    for (const ct_node *i = items; i; i = i->next) n++;
    ct_value v = qrm_ct_list_new(r, n, kind);
    n = 0;
    for (const ct_node *i = items; i; i = i->next) v.u.list->items[n++] = qrm_ct_eval(r, i, s);
    return v;
}

ct_value qrm_ct_eval(ct_render *r, const ct_node *e, ct_scope *s) {
    qrm_ct_step(r);
    r->line = e->line;
    switch (e->kind) {
    case N_CONST: return e->val;
    case N_NAME: return lookup(r, s, e->name);
    case N_GETATTR: {
        ct_value obj = qrm_ct_eval(r, e->a, s);
        r->line = e->line;
        return qrm_ct_getattr(r, obj, e->name, strlen(e->name));
    }
    case N_GETITEM: {
        ct_value obj = qrm_ct_eval(r, e->a, s);
        if (e->b->kind == N_SLICE) return eval_slice(r, obj, e->b, s);
        ct_value key = qrm_ct_eval(r, e->b, s);
        r->line = e->line;
        return qrm_ct_getitem(r, obj, key);
    }
    case N_CALL: {
        ct_value fn = qrm_ct_eval(r, e->a, s);
        if (fn.type == CT_UNDEF) {
            r->line = e->line;
            qrm_ct_fail_undef(r, fn);
        }
        ct_args a;
        eval_args(r, e->b, s, &a, 0);
        r->line = e->line;
        return qrm_ct_call(r, fn, &a);
    }
    case N_FILTER: {
        ct_value v = qrm_ct_eval(r, e->a, s);
        ct_args a;
        eval_args(r, e->b, s, &a, 0);
        r->line = e->line;
        return qrm_ct_apply_filter(r, e->op, e->name, v, &a);
    }
    case N_TEST: {
        ct_value v = qrm_ct_eval(r, e->a, s);
        ct_args a;
        eval_args(r, e->b, s, &a, 0);
        r->line = e->line;
        if (e->op == 0) qrm_ct_fail(r, "no test named '%s'", e->name);
        return qrm_ct_bool(qrm_ct_apply_test(r, e->op - 1, e->name, v, &a));
    }
    case N_NOT: return qrm_ct_bool(!qrm_ct_truthy(r, qrm_ct_eval(r, e->a, s)));
    case N_NEG:
    case N_POS: {
        ct_value v = qrm_ct_eval(r, e->a, s);
        r->line = e->line;
        check_operand(r, v);
        if (e->kind == N_POS) {
            if (!qrm_ct_is_number(v)) qrm_ct_fail(r, "bad operand type for unary +: '%s'", qrm_ct_type_name(v));
            return v.type == CT_BOOL ? qrm_ct_int(v.u.b) : v;
        }
        if (v.type == CT_FLOAT) return qrm_ct_float(-v.u.f);
        int64_t i;
        if (as_int(v, &i)) {
            if (i == INT64_MIN) qrm_ct_fail(r, "integer overflow");
            return qrm_ct_int(-i);
        }
        qrm_ct_fail(r, "bad operand type for unary -: '%s'", qrm_ct_type_name(v));
    }
    case N_BIN: {
        ct_value a = qrm_ct_eval(r, e->a, s);
        ct_value b = qrm_ct_eval(r, e->b, s);
        r->line = e->line;
        return binary(r, e->op, a, b);
    }
    case N_CONCAT: {
        ct_sbuf b = {0};
        for (const ct_node *i = e->a; i; i = i->next) {
            ct_value v = qrm_ct_eval(r, i, s);
            r->line = e->line;
            qrm_ct_put_str(r, &b, v);
        }
        return qrm_ct_sb_value(&b);
    }
    case N_COMPARE: {
        ct_value left = qrm_ct_eval(r, e->a, s);
        for (const ct_node *o = e->b; o; o = o->next) {
            ct_value right = qrm_ct_eval(r, o->a, s);
            r->line = e->line;
            if (!compare_op(r, o->op, left, right)) return qrm_ct_bool(0);
            left = right;
        }
        return qrm_ct_bool(1);
    }
    case N_AND: {
        ct_value a = qrm_ct_eval(r, e->a, s);
        return qrm_ct_truthy(r, a) ? qrm_ct_eval(r, e->b, s) : a;
    }
    case N_OR: {
        ct_value a = qrm_ct_eval(r, e->a, s);
        return qrm_ct_truthy(r, a) ? a : qrm_ct_eval(r, e->b, s);
    }
    case N_COND:
        if (qrm_ct_truthy(r, qrm_ct_eval(r, e->a, s))) return qrm_ct_eval(r, e->b, s);
        if (e->c) return qrm_ct_eval(r, e->c, s);
        return qrm_ct_undef("the inline if-expression evaluated to false and no else section was defined");
    case N_LIST: return make_list(r, e->a, s, CT_LK_LIST);
    case N_TUPLE: return make_list(r, e->a, s, CT_LK_TUPLE);
    case N_DICT: {
        ct_value d = qrm_ct_dict_new(r);
        for (const ct_node *p = e->a; p; p = p->next) {
            ct_value k = qrm_ct_eval(r, p->a, s);
            ct_value v = qrm_ct_eval(r, p->b, s);
            if (k.type == CT_LIST && k.u.list->kind != CT_LK_TUPLE) qrm_ct_fail(r, "unhashable type: 'list'");
            if (k.type == CT_DICT || k.type == CT_NS) qrm_ct_fail(r, "unhashable type: '%s'", qrm_ct_type_name(k));
            qrm_ct_dict_set(r, d.u.dict, k, v);
        }
        return d;
    }
    default: qrm_ct_fail(r, "internal error: unexpected node %d in an expression", e->kind);
    }
}

/* ---------------------------------------------------------------- statements */

enum { FLOW_NORMAL, FLOW_BREAK, FLOW_CONTINUE };

static void assign(ct_render *r, const ct_node *target, ct_value v, ct_scope *s) {
    if (target->kind == N_NAME) {
        scope_set(r, s, target->name, v);
        return;
    }
    if (target->kind == N_NSREF) {
        ct_value *ns = scope_find(s, target->name);
        if (!ns || ns->type != CT_NS) qrm_ct_fail(r, "cannot assign attribute on non-namespace object");
        qrm_ct_dict_set(r, ns->u.dict, qrm_ct_str(target->name2, strlen(target->name2)), v);
        return;
    }
    /* tuple unpacking */
    size_t want = 0, n;
    for (const ct_node *t = target->a; t; t = t->next) want++;
    if (v.type == CT_UNDEF) qrm_ct_fail_undef(r, v);
    ct_value *items = qrm_ct_iterate(r, v, &n);
    if (n > want) qrm_ct_fail(r, "too many values to unpack (expected %zu)", want);
    if (n < want) qrm_ct_fail(r, "not enough values to unpack (expected %zu, got %zu)", want, n);
    size_t i = 0;
    for (const ct_node *t = target->a; t; t = t->next) assign(r, t, items[i++], s);
}

static int exec_for(ct_render *r, const ct_node *f, ct_scope *s) {
    ct_value seq = qrm_ct_eval(r, f->b, s);
    r->line = f->line;
    if (seq.type == CT_NONE || seq.type == CT_BOOL || seq.type == CT_INT || seq.type == CT_FLOAT)
        qrm_ct_fail(r, "'%s' object is not iterable", qrm_ct_type_name(seq));
    size_t n;
    ct_value *items = qrm_ct_iterate(r, seq, &n);
    ct_scope *it = scope_new(r, s);
    if (f->e) { /* {% for x in xs if cond %}: filter first, so loop.length counts the kept items */
        ct_value *kept = qrm_ct_alloc(r, (n ? n : 1) * sizeof(ct_value));
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            it->n = 0;
            assign(r, f->a, items[i], it);
            if (qrm_ct_truthy(r, qrm_ct_eval(r, f->e, it))) kept[k++] = items[i];
        }
        items = kept;
        n = k;
    }
    ct_loop *loop = qrm_ct_alloc(r, sizeof *loop);
    memset(loop, 0, sizeof *loop);
    loop->items = items;
    loop->n = n;
    loop->depth = 1;
    ct_value lv = {.type = CT_LOOP};
    lv.u.loop = loop;
    /* Jinja's else runs unless some iteration reached the end of the body:
     * its compiled loop clears the "else" flag as the body's last statement,
     * which break and continue skip. */
    int completed = 0;
    for (size_t i = 0; i < n; i++) {
        qrm_ct_step(r); /* an empty body must still count */
        loop->i = i;
        it->n = 0; /* a fresh scope per iteration: sets inside do not carry over */
        bind_undefined(r, it, f->undef);
        assign(r, f->a, items[i], it);
        scope_set(r, it, "loop", lv);
        int flow = exec_list(r, f->c, it);
        if (flow == FLOW_NORMAL) completed = 1;
        if (flow == FLOW_BREAK) break;
    }
    if (!completed && f->d) { /* the else block sits in the enclosing loop: break/continue reach it */
        ct_scope *e = scope_new(r, s);
        bind_undefined(r, e, f->undef2);
        return exec_list(r, f->d, e);
    }
    return FLOW_NORMAL;
}

static ct_value apply_filter_chain(ct_render *r, const ct_node *chain, ct_value v, ct_scope *s) {
    if (!chain) return v;
    v = apply_filter_chain(r, chain->a, v, s);
    ct_args a;
    eval_args(r, chain->b, s, &a, 0);
    r->line = chain->line;
    return qrm_ct_apply_filter(r, chain->op, chain->name, v, &a);
}

static int exec(ct_render *r, const ct_node *n, ct_scope *s) {
    qrm_ct_step(r);
    r->line = n->line;
    switch (n->kind) {
    case S_TEXT: qrm_ct_sb_put(r, r->out, n->val.u.s.p, n->val.u.s.n); return FLOW_NORMAL;
    case S_OUTPUT: {
        ct_value v = qrm_ct_eval(r, n->a, s);
        r->line = n->line;
        qrm_ct_put_str(r, r->out, v);
        return FLOW_NORMAL;
    }
    case S_IF:
        if (qrm_ct_truthy(r, qrm_ct_eval(r, n->a, s))) return exec_list(r, n->b, s);
        return exec_list(r, n->c, s);
    case S_FOR: return exec_for(r, n, s);
    case S_SET: {
        ct_value v = qrm_ct_eval(r, n->b, s);
        r->line = n->line;
        assign(r, n->a, v, s);
        return FLOW_NORMAL;
    }
    case S_SETBLOCK: {
        ct_scope *inner = scope_new(r, s);
        bind_undefined(r, inner, n->undef);
        int flow;
        ct_value v = capture(r, n->c, inner, &flow);
        if (flow != FLOW_NORMAL) return flow;
        v = apply_filter_chain(r, n->b, v, s);
        r->line = n->line;
        assign(r, n->a, v, s);
        return FLOW_NORMAL;
    }
    case S_MACRO: {
        ct_macro *m = qrm_ct_alloc(r, sizeof *m);
        m->def = n;
        m->closure = s;
        m->caller = NULL;
        ct_value v = {.type = CT_MACRO};
        v.u.macro = m;
        scope_set(r, s, n->name, v);
        return FLOW_NORMAL;
    }
    case S_CALLBLOCK: {
        const ct_node *call = n->a;
        ct_value fn = qrm_ct_eval(r, call->a, s);
        r->line = n->line;
        if (fn.type == CT_UNDEF) qrm_ct_fail_undef(r, fn);
        if (fn.type != CT_MACRO) qrm_ct_fail(r, "unsupported: {%% call %%} of something other than a macro");
        ct_args a;
        eval_args(r, call->b, s, &a, 0);
        ct_macro *caller = qrm_ct_alloc(r, sizeof *caller);
        caller->def = n;
        caller->closure = s;
        caller->caller = NULL;
        ct_value out = call_macro(r, fn.u.macro, &a, caller);
        qrm_ct_sb_put(r, r->out, out.u.s.p, out.u.s.n);
        return FLOW_NORMAL;
    }
    case S_FILTERBLOCK: {
        ct_scope *inner = scope_new(r, s);
        bind_undefined(r, inner, n->undef);
        int flow;
        ct_value v = capture(r, n->c, inner, &flow);
        if (flow != FLOW_NORMAL) return flow;
        v = apply_filter_chain(r, n->b, v, s);
        qrm_ct_put_str(r, r->out, v);
        return FLOW_NORMAL;
    }
    case S_WITH: {
        ct_scope *inner = scope_new(r, s);
        bind_undefined(r, inner, n->undef);
        const ct_node *t = n->a, *v = n->b;
        for (; t && v; t = t->next, v = v->next) assign(r, t, qrm_ct_eval(r, v, s), inner);
        return exec_list(r, n->c, inner);
    }
    case S_GENERATION: { /* a call block in transformers: its own frame */
        ct_scope *inner = scope_new(r, s);
        bind_undefined(r, inner, n->undef);
        return exec_list(r, n->c, inner);
    }
    case S_BREAK: return FLOW_BREAK;
    case S_CONTINUE: return FLOW_CONTINUE;
    default: qrm_ct_fail(r, "internal error: unexpected node %d in a statement", n->kind);
    }
}

static int exec_list(ct_render *r, const ct_node *n, ct_scope *s) {
    for (; n; n = n->next) {
        int flow = exec(r, n, s);
        if (flow != FLOW_NORMAL) return flow;
    }
    return FLOW_NORMAL;
}

/* ---------------------------------------------------------------- entry */

int qrm_template_render(const qrm_template *t, const qj_value *messages, const qj_value *extra_vars,
                        int add_generation_prompt, char **out, size_t *out_len, char *err, size_t errlen) {
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (err && errlen) err[0] = 0;
    if (!t || !out) {
        if (err && errlen) snprintf(err, errlen, "chat template: no template or output pointer");
        return -1;
    }
    if (extra_vars && extra_vars->type != QJ_OBJECT) {
        if (err && errlen) snprintf(err, errlen, "chat template: extra variables must be a JSON object");
        return -1;
    }
    /* on the heap: everything longjmp may skip over lives here, not in locals */
    ct_render *r = calloc(1, sizeof *r);
    if (!r) {
        if (err && errlen) snprintf(err, errlen, "chat template: out of memory");
        return -1;
    }
    r->t = t;
    r->arena.cap = QRM_TEMPLATE_MAX_MEMORY;
    r->err = err;
    r->errlen = errlen;
    if (setjmp(r->jb)) {
        qrm_ct_arena_free(&r->arena);
        free(r);
        return -1;
    }
    r->globals = scope_new(r, NULL);
    if (extra_vars)
        for (uint32_t i = 0; i < extra_vars->len; i++) {
            const qj_member *m = &extra_vars->u.members[i];
            char *name = qrm_ct_alloc(r, m->key_len + 1);
            memcpy(name, m->key, m->key_len);
            name[m->key_len] = 0;
            scope_set(r, r->globals, name, qrm_ct_from_json(r, &m->value));
        }
    scope_set(r, r->globals, "messages", messages ? qrm_ct_from_json(r, messages) : qrm_ct_undef("'messages' is undefined"));
    scope_set(r, r->globals, "add_generation_prompt", qrm_ct_bool(add_generation_prompt));
    ct_sbuf *main_out = qrm_ct_alloc(r, sizeof *main_out);
    memset(main_out, 0, sizeof *main_out);
    r->out = main_out;
    bind_undefined(r, r->globals, t->undef);
    exec_list(r, t->body, r->globals);
    char *text = malloc(main_out->n + 1);
    if (!text) {
        r->line = 0;
        qrm_ct_fail(r, "out of memory");
    }
    if (main_out->n) memcpy(text, main_out->p, main_out->n);
    text[main_out->n] = 0;
    *out = text;
    if (out_len) *out_len = main_out->n;
    qrm_ct_arena_free(&r->arena);
    free(r);
    return 0;
}
