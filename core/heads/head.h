/* The head component: what turns final hidden states into a reward. One file
 * per head kind (linear.c, prm.c, gated.c), listed once in registry.c; see
 * docs/adding-a-head.md.
 *
 * A head decides three things, so that nothing else has to know its kind:
 *   - which positions of a sequence it reads (positions),
 *   - what it computes from the final-normed hidden states there (apply),
 *   - which tensors and metadata it stores (tensors, to_json / from_json),
 *     and how it is found in a Hugging Face checkpoint (from_hf).
 * A sequence gives one score point (a sequence head) or one per step
 * separator or token read (point_per_row); every point has n_outputs values. */
#ifndef QRM_HEAD_H
#define QRM_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "hparams.h"
#include "json.h"
#include "kernels.h"
#include "qrm.h"
#include "tensor.h"

#define QRM_HEAD_MAX_TENSORS 24
#define QRM_LABEL_MAX 64
#define QRM_PATTERN_MAX 32

typedef struct qrm_head qrm_head;

/* One tensor of a head: its name in the file and in the checkpoint, its
 * shape (ne1 = 1 for a vector), and the slot it binds to. */
typedef struct {
    char name[QRM_TENSOR_NAME_MAX];
    char hf_name[128];
    int64_t ne0, ne1;
    int ndim;
    int slot;                   /* index into qrm_head.t */
    qrm_role_kind kind;         /* QRM_ROLE_HEAD: f32; QRM_ROLE_MATRIX: stored like the backbone */
    /* Rows picked from a larger checkpoint tensor [src_ne0, ne1] (a vocabulary
     * head's token rows); n_rows 0 takes the whole tensor. */
    int n_rows;
    int32_t rows[2];
    int64_t src_ne0;
} qrm_head_tensor;

/* An f32 head tensor: file name, checkpoint name, shape, dimensions, slot. */
#define QRM_HEAD_F32(name_, hf_, ne0_, ne1_, ndim_, slot_)                                  \
    ((qrm_head_tensor){.name = name_, .hf_name = hf_, .ne0 = ne0_, .ne1 = ne1_, .ndim = ndim_, \
                       .slot = slot_, .kind = QRM_ROLE_HEAD})

/* A head specification for a *ForCausalLM checkpoint, whose head is the
 * vocabulary: which tokens, which positions, which normalization. */
typedef struct {
    const char *judge_yes, *judge_no;   /* --judge-tokens YES,NO */
    int judge_full;                     /* --judge-norm full */
    const char *step_tag, *good, *bad;  /* --step-tag TAG --good GOOD --bad BAD */
    int lm;                             /* --head lm */
} qrm_head_spec;

/* What the converter offers a head to find itself in a checkpoint. */
typedef struct {
    const qj_value *cfg;        /* config.json */
    const qrm_hparams *hp;
    void *ctx;
    /* 1 and the shape when the checkpoint has the tensor, else 0 */
    int (*shape)(void *ctx, const char *hf_name, int *ndim, int64_t shape[2]);
    /* text -> ids without special tokens, as HF encode(add_special_tokens=False) */
    int (*encode)(void *ctx, const char *text, int32_t **ids, size_t *n, char *err, size_t errlen);
    /* the piece of a token id, for messages (NUL-terminated into buf) */
    void (*piece)(void *ctx, int32_t id, char *buf, size_t n);
    const qrm_head_spec *spec; /* a causal LM's head specification (never NULL) */
    int tie_default;            /* transformers' tie_word_embeddings default for the architecture */
    /* user overrides (NULL: the checkpoint's own) */
    const char *labels;         /* comma-separated output names */
    const char *step_separator; /* PRM separator text */
    const char *gating_pattern; /* ArmoRM gating pattern text */
} qrm_head_source;

/* How a step head's input is built from a prompt and steps (core/text/ctx_text.c). */
typedef enum {
    QRM_STEPS_NONE = 0,         /* not a step head */
    QRM_STEPS_CHAT,             /* Qwen2.5-Math-PRM: chat template, the separator after each step */
    QRM_STEPS_TAGGED_TEXT,      /* Math-Shepherd: "prompt step1 TAG\n\nstep2 TAG", BOS added */
} qrm_steps_rule;

/* What apply may use besides the hidden states: the kernels, and a matmul
 * that runs on the context's threads (quantizing x for a packed weight). */
typedef struct {
    const qrm_kernels *k;
    void (*matmul)(void *ctx, const qrm_tensor *w, const float *x, int M, float *y);
    /* fn(arg, i, thread) for i in [0, n) on the context's threads */
    void (*parallel)(void *ctx, int n, void (*fn)(void *arg, int i, int thread), void *arg);
    /* a buffer of at least bytes owned by the context, kept between calls
     * (a fresh 40 MB of logits each call costs more in page faults than the
     * matmul that fills it); NULL when out of memory */
    void *(*scratch)(void *ctx, size_t bytes);
    void *ctx;
} qrm_head_run;

typedef struct qrm_head_ops {
    const char *kind;           /* the metadata's head.kind: "linear", "prm", ... */
    const char *hf_suffix;      /* "ForSequenceClassification"; NULL: chosen by a head specification */
    int point_per_row;          /* a score point at every row read (else one per sequence) */
    qrm_steps_rule steps;       /* a step head: how its input is built */
    int per_row;                /* apply treats each row alone (per-token scores possible) */
    /* Converter: fills the head's parameters and labels from the checkpoint. */
    int (*from_hf)(qrm_head *h, const qrm_head_source *src, char *err, size_t errlen);
    /* Metadata: the kind's own members (after "kind", before "labels"). */
    void (*to_json)(const qrm_head *h, qj_buf *b);
    int (*from_json)(qrm_head *h, const qj_value *o, const qrm_hparams *hp, char *err,
                     size_t errlen);
    /* The tensors, in file order; returns their count. */
    int (*tensors)(const qrm_head *h, const qrm_hparams *hp, qrm_head_tensor *out);
    /* The rows the head reads for ids[0..n): pos[0..*npos) (the buffer holds
     * n + 2), in the order apply takes them. -1 with a message when the
     * sequence cannot be scored by this head. */
    int (*positions)(const qrm_head *h, const int32_t *ids, size_t n, int32_t *pos,
                     size_t *npos, char *err, size_t errlen);
    /* hid: rows x D final hidden states at positions pos of ids -> out: the
     * values of the score points (point_per_row: one point per row). */
    int (*apply)(const qrm_head *h, const qrm_head_run *run, const int32_t *ids,
                 const int32_t *pos, const float *hid, int rows, int D, float *out);
} qrm_head_ops;

struct qrm_head {
    const qrm_head_ops *ops;
    int n_outputs;              /* values per score point */
    char label[QRM_MAX_OUTPUTS][QRM_LABEL_MAX];
    qrm_tensor t[QRM_HEAD_MAX_TENSORS];
    /* linear */
    int has_bias;
    /* prm, step_tag: the step separator or tag */
    int32_t sep_id;
    /* judge: yes, no; step_tag: good, bad */
    int32_t tok[2];
    int full_norm;              /* judge: normalized over the whole vocabulary */
    float logit_softcap;        /* vocabulary heads: cap * tanh(z / cap) first (Gemma2); 0: none */
    char tag_text[32];          /* step_tag: the tag as the specification wrote it (" ки") */
    char lm_src[64];            /* converter: the checkpoint's vocabulary matrix */
    int fc_dim;                 /* width of the hidden layer */
    /* gated */
    int n_obj, gate_layers, gate_dim;
    float temperature;
    int32_t pattern[QRM_PATTERN_MAX];
    int n_pattern;
    int32_t pad_id;
};

/* The registry (core/heads/registry.c). */
const qrm_head_ops *qrm_head_by_kind(const char *kind);
const qrm_head_ops *qrm_head_by_hf_suffix(const char *suffix);
/* "linear, prm, gated", or with suffixes "ForSequenceClassification, ..." */
void qrm_head_list(char *buf, size_t n, int suffixes);

/* The common part of the metadata: {"kind", the kind's members, "n_outputs",
 * "labels"}; reading checks the kind, the labels and their count. */
void qrm_head_to_json(const qrm_head *h, qj_buf *b);
int qrm_head_from_json(qrm_head *h, const qj_value *o, const qrm_hparams *hp, char *err,
                       size_t errlen);
/* Labels from a comma-separated override, else the given defaults;
 * checks count, length and uniqueness. */
int qrm_head_set_labels(qrm_head *h, const char *csv, const char *const *dflt, char *err,
                        size_t errlen);
/* s for a one-line message: control bytes as \n, \t or \xHH, cut to n. */
void qrm_printable(const char *s, char *out, size_t n);
/* y[rows][N] = x[rows][K] W^T (+ b when b is non-NULL): a head's f32 layer. */
void qrm_head_dense(const qrm_kernels *k, const qrm_tensor *w, const qrm_tensor *b,
                     const float *x, int rows, float *y);
/* The positions of a step head: every occurrence of sep_id, in order. */
int qrm_head_separator_positions(const qrm_head *h, const int32_t *ids, size_t n, int32_t *pos,
                                 size_t *npos, char *err, size_t errlen);
/* Output names: non-empty and unique. */
int qrm_head_check_labels(const qrm_head *h, char *err, size_t errlen);
/* Resolves text to exactly one token (an error shows the pieces otherwise). */
int qrm_head_single_token(const qrm_head_source *src, const char *what, const char *text,
                          int32_t *id, char *err, size_t errlen);

#endif
