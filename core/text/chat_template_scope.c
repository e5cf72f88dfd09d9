/* Chat templates: Jinja2's static scoping, emulated.
 *
 * Jinja2 compiles a template to Python functions, one "frame" per template,
 * for-loop body, loop else, macro, call block, set block, filter block, with
 * block and generation block. Which variable a name means is decided at
 * compile time: a name whose first use in a frame is an unconditional
 * assignment is a fresh local of that frame, Undefined until the assignment
 * runs, even where the render variables have that name. So in
 *
 *     {% for m in messages %}{{ x }}{% endfor %}{% set x = 1 %}
 *
 * the loop prints nothing even when the caller passed x. Everything else
 * behaves like a dynamic scope lookup, which the renderer does. This pass
 * finds, per frame, the names that start out Undefined (Jinja's
 * VAR_LOAD_UNDEFINED) so the renderer binds them at frame entry.
 */
#include <string.h>

#include "chat_template_internal.h"

enum { K_RESOLVE, K_ALIAS, K_UNDEFINED, K_PARAM };

typedef struct symtab symtab;
struct symtab {
    symtab *parent;
    const char **names;
    int *kinds;
    size_t n, cap;
    const char **stores;
    size_t nstores, capstores;
};

static void *grow(ct_compiler *c, void *p, size_t old, size_t n) {
    void *q = qrm_ct_arena_grow(c->arena, p, old, n);
    if (!q) qrm_ct_compile_fail(c, 0, "template too large");
    return q;
}

static int find_local(const symtab *t, const char *name) {
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->names[i], name) == 0) return (int)i;
    return -1;
}

static int has_ref(const symtab *t, const char *name) {
    for (; t; t = t->parent)
        if (find_local(t, name) >= 0) return 1;
    return 0;
}

static void define(ct_compiler *c, symtab *t, const char *name, int kind) {
    int i = find_local(t, name);
    if (i >= 0) {
        t->kinds[i] = kind;
        return;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        t->names = grow(c, t->names, t->n * sizeof(char *), cap * sizeof(char *));
        t->kinds = grow(c, t->kinds, t->n * sizeof(int), cap * sizeof(int));
        t->cap = cap;
    }
    t->names[t->n] = name;
    t->kinds[t->n++] = kind;
}

static int stored(const symtab *t, const char *name) {
    for (size_t i = 0; i < t->nstores; i++)
        if (strcmp(t->stores[i], name) == 0) return 1;
    return 0;
}

static void add_store(ct_compiler *c, symtab *t, const char *name) {
    if (stored(t, name)) return;
    if (t->nstores == t->capstores) {
        size_t cap = t->capstores ? t->capstores * 2 : 8;
        t->stores = grow(c, t->stores, t->nstores * sizeof(char *), cap * sizeof(char *));
        t->capstores = cap;
    }
    t->stores[t->nstores++] = name;
}

static void sym_load(ct_compiler *c, symtab *t, const char *name) {
    if (!has_ref(t, name)) define(c, t, name, K_RESOLVE);
}

static void sym_store(ct_compiler *c, symtab *t, const char *name) {
    add_store(c, t, name);
    if (find_local(t, name) >= 0) return;
    define(c, t, name, t->parent && has_ref(t->parent, name) ? K_ALIAS : K_UNDEFINED);
}

static void sym_param(ct_compiler *c, symtab *t, const char *name) {
    add_store(c, t, name);
    define(c, t, name, K_PARAM);
}

static symtab *copy_tab(ct_compiler *c, const symtab *t) {
    symtab *u = grow(c, NULL, 0, sizeof *u);
    *u = *t;
    u->names = grow(c, NULL, 0, (t->cap ? t->cap : 1) * sizeof(char *));
    u->kinds = grow(c, NULL, 0, (t->cap ? t->cap : 1) * sizeof(int));
    u->stores = grow(c, NULL, 0, (t->capstores ? t->capstores : 1) * sizeof(char *));
    if (t->n) {
        memcpy(u->names, t->names, t->n * sizeof(char *));
        memcpy(u->kinds, t->kinds, t->n * sizeof(int));
    }
    if (t->nstores) memcpy(u->stores, t->stores, t->nstores * sizeof(char *));
    return u;
}

static void visit_expr(ct_compiler *c, symtab *t, const ct_node *e) {
    for (; e; e = NULL) {
        if (e->kind == N_NAME) {
            sym_load(c, t, e->name);
            return;
        }
        if (e->kind == N_CONST) return;
        /* children; lists hang off a/b through `next` */
        const ct_node *kids[5] = {e->a, e->b, e->c, e->d, e->e};
        for (int k = 0; k < 5; k++)
            for (const ct_node *n = kids[k]; n; n = n->next) visit_expr(c, t, n);
    }
}

static void visit_target(ct_compiler *c, symtab *t, const ct_node *target, int as_param) {
    if (target->kind == N_NAME) {
        if (as_param) sym_param(c, t, target->name);
        else sym_store(c, t, target->name);
    } else if (target->kind == N_NSREF) {
        sym_load(c, t, target->name);
    } else {
        for (const ct_node *i = target->a; i; i = i->next) visit_target(c, t, i, as_param);
    }
}

static void visit_filter_chain(ct_compiler *c, symtab *t, const ct_node *f) {
    for (; f; f = f->a)
        for (const ct_node *a = f->b; a; a = a->next) visit_expr(c, t, a);
}

static void visit_stmts(ct_compiler *c, symtab *t, const ct_node *n);

/* The frame-level view of one statement (Jinja's FrameSymbolVisitor). */
static void visit_stmt(ct_compiler *c, symtab *t, const ct_node *n) {
    switch (n->kind) {
    case S_OUTPUT: visit_expr(c, t, n->a); break;
    case S_IF: {
        visit_expr(c, t, n->a);
        symtab *body = copy_tab(c, t), *other = copy_tab(c, t);
        visit_stmts(c, body, n->b);
        visit_stmts(c, other, n->c);
        /* branch_update: a name assigned in only some branches keeps the
         * outer value until assigned, so it is never fresh-Undefined */
        symtab *branches[2] = {body, other};
        const char *news[256];
        size_t nnew = 0;
        int overflow = 0;
        for (int b = 0; b < 2; b++)
            for (size_t i = 0; i < branches[b]->nstores; i++) {
                const char *s = branches[b]->stores[i];
                if (stored(t, s)) continue;
                int dup = 0;
                for (size_t k = 0; k < nnew; k++) dup |= strcmp(news[k], s) == 0;
                if (dup) continue;
                if (nnew < 256) news[nnew++] = s;
                else overflow = 1;
            }
        if (overflow) qrm_ct_compile_fail(c, n->line, "too many variables assigned in one if block");
        for (int b = 0; b < 2; b++) {
            for (size_t i = 0; i < branches[b]->n; i++) define(c, t, branches[b]->names[i], branches[b]->kinds[i]);
            for (size_t i = 0; i < branches[b]->nstores; i++) add_store(c, t, branches[b]->stores[i]);
        }
        for (size_t k = 0; k < nnew; k++)
            define(c, t, news[k], t->parent && has_ref(t->parent, news[k]) ? K_ALIAS : K_RESOLVE);
        break;
    }
    case S_FOR: visit_expr(c, t, n->b); break;
    case S_SET:
        visit_expr(c, t, n->b);
        visit_target(c, t, n->a, 0);
        break;
    case S_SETBLOCK: visit_target(c, t, n->a, 0); break;
    case S_MACRO: sym_store(c, t, n->name); break;
    case S_CALLBLOCK: visit_expr(c, t, n->a); break;
    case S_FILTERBLOCK: visit_filter_chain(c, t, n->b); break;
    case S_WITH:
        for (const ct_node *v = n->b; v; v = v->next) visit_expr(c, t, v);
        break;
    default: break;
    }
}

static void visit_stmts(ct_compiler *c, symtab *t, const ct_node *n) {
    for (; n; n = n->next) visit_stmt(c, t, n);
}

static const char **undefined_names(ct_compiler *c, const symtab *t) {
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++) k += t->kinds[i] == K_UNDEFINED;
    if (!k) return NULL;
    const char **out = grow(c, NULL, 0, (k + 1) * sizeof(char *));
    k = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->kinds[i] == K_UNDEFINED) out[k++] = t->names[i];
    out[k] = NULL;
    return out;
}

static void analyze_children(ct_compiler *c, symtab *t, const ct_node *n);

/* A child frame: its own symbols (with `parent` above), then its children. */
static const char **frame(ct_compiler *c, symtab *parent, const ct_node *params, const ct_node *param_targets,
                          const ct_node *body) {
    symtab *t = grow(c, NULL, 0, sizeof *t);
    memset(t, 0, sizeof *t);
    t->parent = parent;
    for (const ct_node *p = params; p; p = p->next) sym_param(c, t, p->name);
    for (const ct_node *p = params; p; p = p->next)
        if (p->a) visit_expr(c, t, p->a);
    for (const ct_node *p = param_targets; p; p = p->next) visit_target(c, t, p, 1);
    visit_stmts(c, t, body);
    analyze_children(c, t, body);
    return undefined_names(c, t);
}

/* Finds the child frames among statements of the frame `t` (also inside its
 * if branches) and analyzes each. */
static void analyze_children(ct_compiler *c, symtab *t, const ct_node *n) {
    for (; n; n = n->next) {
        ct_node *m = (ct_node *)n; /* annotating the tree we own */
        switch (n->kind) {
        case S_IF:
            analyze_children(c, t, n->b);
            analyze_children(c, t, n->c);
            break;
        case S_FOR: {
            ct_node target = *n->a;
            target.next = NULL;
            m->undef = frame(c, t, NULL, &target, n->c);
            m->undef2 = frame(c, t, NULL, NULL, n->d);
            break;
        }
        case S_MACRO: m->undef = frame(c, t, n->a, NULL, n->c); break;
        case S_CALLBLOCK: m->undef = frame(c, t, n->b, NULL, n->c); break;
        case S_SETBLOCK:
        case S_FILTERBLOCK:
        case S_GENERATION: m->undef = frame(c, t, NULL, NULL, n->c); break;
        case S_WITH: m->undef = frame(c, t, NULL, n->a, n->c); break;
        default: break;
        }
    }
}

const char **qrm_ct_analyze_scopes(ct_compiler *c, ct_node *body) {
    symtab *root = grow(c, NULL, 0, sizeof *root);
    memset(root, 0, sizeof *root);
    visit_stmts(c, root, body);
    analyze_children(c, root, body);
    return undefined_names(c, root);
}
