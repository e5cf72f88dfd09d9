/* qrm: score text with quantized reward models on CPUs. The public C API.
 *
 * A qrm_model is a .qrm file mapped read-only; any number of threads and
 * contexts may share it. A qrm_ctx holds what one scoring stream needs: the
 * KV cache, scratch buffers and a thread pool. Use one context per thread.
 *
 * Errors: functions that can fail return a qrm_status (QRM_OK or negative)
 * or NULL, and leave a one-line message: in the caller's err buffer (err,
 * errlen) for calls without a context, in qrm_ctx_error() for a context's.
 *
 * Memory: what the library allocates for the caller is released with the
 * function named where it is returned (qrm_free, qrm_scores_free,
 * qrm_ctx_free, qrm_model_close); every other pointer it returns is owned
 * by the library (see each). Inputs are never kept past the call, except
 * the buffer of qrm_model_open_memory.
 *
 * The library reads no environment variable and writes nothing to stdout
 * or stderr. */
#ifndef QRM_H
#define QRM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version: the header's, and qrm_version() for the library
 * actually linked (they differ when a program was built against another). */
#define QRM_VERSION_MAJOR 0
#define QRM_VERSION_MINOR 3
#define QRM_VERSION_PATCH 0
#define QRM_VERSION_STRING "0.3.0"
/* The shared library's ABI (libqrm.so.N): 1 since 0.3.0, whose
 * qrm_ctx_params grew (abort_cb, abort_user) and whose
 * qrm_ctx_params_default therefore writes more than 0.2's struct holds: a
 * program built against 0.2's libqrm.so.0 must not load this library. */
#define QRM_ABI_VERSION 1

/* The functions of this header are the library's only exported symbols. */
#if defined(QRM_BUILD) && defined(__GNUC__)
#define QRM_API __attribute__((visibility("default")))
#else
#define QRM_API
#endif

#define QRM_ERR_MAX 256
/* The most values a score point can have (a head's outputs). */
#define QRM_MAX_OUTPUTS 64

/* What every fallible call returns: QRM_OK (0) or a negative status, with
 * a one-line message (see the top of this file). The values are fixed: the
 * Python binding and programs built against 0.2 compare the numbers. */
typedef enum {
    QRM_OK = 0,
    QRM_EINVAL = -1,   /* bad argument (token id out of range, empty input, wrong head, ...) */
    QRM_ENOMEM = -2,   /* an allocation failed; nothing was kept */
    QRM_ETOOLONG = -3, /* sequence longer than the model or the context's KV cap */
    QRM_EFORMAT = -4,  /* malformed model file */
    QRM_EIO = -5,      /* the model file cannot be read or mapped */
    QRM_ETEXT = -6,    /* tokenizer / chat template error, or the file has no tokenizer */
    QRM_EABORTED = -7, /* the context's abort callback asked to stop (the context is reset) */
} qrm_status;

typedef struct qrm_model qrm_model;
typedef struct qrm_ctx qrm_ctx;

QRM_API const char *qrm_version(void); /* "0.3.0"; static storage */
/* Frees what a qrm function returned for the caller to free: the ids of
 * the tokenizer and the encoders, a rendered text. Use it rather than
 * free() so that a program (or a binding) with another allocator is safe.
 * Scores have their own release, qrm_scores_free. NULL is a no-op. */
QRM_API void qrm_free(void *p);

/* The kernel family (ISA) that contexts use when their params name none:
 * name is a family ("scalar", "avx2", "avx512", "neon", "dotprod", "i8mm"),
 * or NULL / "" for the best this CPU runs (the initial choice). QRM_EINVAL
 * with a message in err when the family is unknown or this CPU cannot run
 * it; the choice is then unchanged. Process-wide; contexts already made
 * keep theirs. The library never reads the environment: the qrm programs
 * pass QRM_ISA here (the Python binding: qrm.set_default_isa). */
QRM_API qrm_status qrm_set_default_isa(const char *name, char *err, size_t errlen);

/* ---- models ---- */
/* NULL and a message in err on failure. Close with qrm_model_close. */
QRM_API qrm_model *qrm_model_open(const char *path, char *err, size_t errlen);
/* How qrm_model_open_with holds the file's bytes. */
typedef enum {
    /* Mapped read-only (qrm_model_open): opening is instant, pages are read
     * on first use and shared with every process that maps the same file. */
    QRM_LOAD_MAP = 0,
    /* Copied into private memory that asks the kernel for transparent huge
     * pages: opening reads the whole file (the page cache's copy is no
     * longer used), and the weights then stream faster from memory when
     * one token at a time is scored (README, Performance). */
    QRM_LOAD_COPY = 1,
} qrm_load;
QRM_API qrm_model *qrm_model_open_with(const char *path, qrm_load load, char *err, size_t errlen);
/* buf must stay valid and unchanged until qrm_model_close; 64-byte aligned. */
QRM_API qrm_model *qrm_model_open_memory(const void *buf, size_t len, char *err, size_t errlen);
QRM_API void qrm_model_close(qrm_model *m);

typedef struct {
    const char *arch;          /* "llama", "mistral", "qwen2", "qwen3", "gemma2" */
    const char *hf_architecture;
    const char *quant;         /* "f32", "f16", "int8", "int4" */
    int vocab_size, hidden_size, n_layers, n_heads, n_kv_heads, head_dim, ffn_size;
    int max_positions;
    const char *head;          /* head kind: "linear", "prm", "gated" */
    int per_step;              /* 1: a step head (a PRM): a score point per step */
    int logprobs;              /* 1: the whole vocabulary head (qrm_logprobs, DPO) */
    int n_outputs;             /* values per score point (qrm_model_output_name) */
    int32_t pad_token_id;      /* -1 if none */
    uint64_t file_size;
    uint64_t n_params;
} qrm_model_info;

QRM_API void qrm_model_get_info(const qrm_model *m, qrm_model_info *out);
/* Strings a model returns (names in qrm_model_info, output names, the
 * metadata, the tokenizer blobs) belong to the model: valid until
 * qrm_model_close, never freed by the caller. */
/* The name of output i (0 <= i < n_outputs): an id2label name, "score",
 * an ArmoRM objective, ...; NULL out of range. */
QRM_API const char *qrm_model_output_name(const qrm_model *m, int i);
/* The metadata JSON stored in the file (NUL-terminated). */
QRM_API const char *qrm_model_metadata_json(const qrm_model *m);
/* The tokenizer.json and tokenizer_config.json stored in the file (not
 * NUL-terminated). QRM_ETEXT when the file has none. */
QRM_API qrm_status qrm_model_tokenizer_blobs(const qrm_model *m, const char **tokenizer_json,
                                             size_t *tlen, const char **config_json, size_t *clen);

/* ---- contexts ---- */
/* How the KV cache stores keys and values. AUTO: f16 for quantized models
 * (half the memory and half the bytes a token's attention reads; its
 * rounding is far below the weights' quantization error), f32 for float
 * models (whose scores are compared with float references). Q8: keys as
 * int8 in groups of 32 along the head dimension with an f16 scale each,
 * values as int8 with one scale per token and head, and both attention
 * products on the integer units as q8 GEMMs (the queries, and the
 * probabilities times the value scales, quantized like activations). About
 * as lossy as int8 weights, so never the default. Needs a head_dim that is
 * a multiple of 32. */
typedef enum { QRM_KV_AUTO = 0, QRM_KV_F32 = 1, QRM_KV_F16 = 2, QRM_KV_Q8 = 3 } qrm_kv_type;

/* Fill with qrm_ctx_params_default first, then set what differs: a program
 * rebuilt against a later version then gets the new fields' defaults. */
typedef struct {
    int n_threads;             /* 0: all cores */
    size_t max_tokens;         /* KV cache cap in tokens over all sequences; 0: model max */
    const char *isa;           /* kernel family; NULL: qrm_set_default_isa's choice */
    qrm_kv_type kv_type;
    /* Called on the calling thread before every chunk of tokens, between
     * the layers of a forward pass and between the responses a best-of-N
     * call scores (so within tens of milliseconds on a big model); nonzero
     * stops the call: QRM_EABORTED with a message, everything the call
     * allocated freed, and the context reset (as qrm_ctx_reset: empty,
     * usable). NULL: never. */
    int (*abort_cb)(void *user);
    void *abort_user;
} qrm_ctx_params;

QRM_API void qrm_ctx_params_default(qrm_ctx_params *p);
/* p may be NULL (the defaults). NULL and a message in err on failure. The
 * model must outlive the context. */
QRM_API qrm_ctx *qrm_ctx_new(const qrm_model *m, const qrm_ctx_params *p, char *err, size_t errlen);
QRM_API void qrm_ctx_free(qrm_ctx *c);
/* The message of the context's last failed call; owned by the context,
 * valid until its next call. */
QRM_API const char *qrm_ctx_error(const qrm_ctx *c);
QRM_API const char *qrm_ctx_isa(const qrm_ctx *c); /* static storage */
QRM_API const qrm_model *qrm_ctx_model(const qrm_ctx *c);

/* Scores of one sequence. A sequence head (linear, gated) gives one score
 * point, read at the head's position (the last non-pad token); a step head
 * (prm) gives one per step separator, in order, possibly none. Each point
 * has n_values = n_outputs values (named by qrm_model_output_name). */
typedef struct {
    size_t n_points;
    int n_values;
    float *values;             /* [n_points][n_values] */
    int32_t *positions;        /* [n_points]: the token index each point is read at */
} qrm_scores;

/* Scores exactly these ids (nothing added). out is filled with malloc'd
 * arrays: release them with qrm_scores_free (also after an error). */
QRM_API qrm_status qrm_score(qrm_ctx *c, const int32_t *ids, size_t n, qrm_scores *out);
QRM_API void qrm_scores_free(qrm_scores *s);

/* The scalar case: scores gets the n_outputs values of a sequence head's
 * one point. QRM_EINVAL for a step head (use qrm_score). */
QRM_API qrm_status qrm_score_ids(qrm_ctx *c, const int32_t *ids, size_t n, float *scores);

/* Incremental scoring. qrm_ctx_reset empties the KV cache; qrm_ctx_append
 * runs ids[0..n) after what the context already holds. For a head that reads
 * each token alone (linear, prm), all_scores (may be NULL) receives
 * n * n_outputs floats: the head at every appended position, and
 * last_scores (may be NULL) the head at the last one; a gated head needs the
 * whole sequence and refuses both (QRM_EINVAL). */
QRM_API qrm_status qrm_ctx_reset(qrm_ctx *c);
/* Makes room for n tokens of KV cache now (contents kept), so that later
 * appends never pause to grow it; QRM_ETOOLONG past the context's cap. */
QRM_API qrm_status qrm_ctx_reserve(qrm_ctx *c, size_t n);
QRM_API qrm_status qrm_ctx_append(qrm_ctx *c, const int32_t *ids, size_t n, float *all_scores,
                                  float *last_scores);
QRM_API size_t qrm_ctx_length(const qrm_ctx *c);

/* Best-of-N: one prefix (prompt) and n_resp continuations. The prefix runs
 * once; all continuations then run together through the weights, each
 * attending to the prefix and to itself. out[i] gets the scores of
 * prefix + resp[i], bit for bit what qrm_score gives for that sequence
 * alone (release each with qrm_scores_free). */
QRM_API qrm_status qrm_score_best_of_n(qrm_ctx *c, const int32_t *prefix, size_t n_prefix,
                                       const int32_t *const *resp, const size_t *resp_len, size_t n_resp,
                                       qrm_scores *out);
/* Log-probabilities (a file converted with --head lm): out gets one point
 * per token t in [start, n), log p(ids[t] | ids[<t]) over the whole
 * vocabulary (the label shift of DPO: row t - 1 predicts token t), at
 * position t - 1. start >= 1. */
QRM_API qrm_status qrm_logprobs(qrm_ctx *c, const int32_t *ids, size_t n, size_t start, qrm_scores *out);
/* The same for prefix + resp[i] sharing the prefix: the tokens from start. */
QRM_API qrm_status qrm_logprobs_best_of_n(qrm_ctx *c, const int32_t *prefix, size_t n_prefix,
                                          const int32_t *const *resp, const size_t *resp_len, size_t n_resp,
                                          size_t start, qrm_scores *out);
/* The same for a sequence head, as n_resp * n_outputs floats. */
QRM_API qrm_status qrm_score_shared_prefix(qrm_ctx *c, const int32_t *prefix, size_t n_prefix,
                                           const int32_t *const *resp, const size_t *resp_len,
                                           size_t n_resp, float *scores);

/* ---- text ----
 * The tokenizer and the chat template are read-only state of the model,
 * built from the file on the first text call and then shared: the
 * qrm_model_* functions need no context and any number of threads may call
 * them at once; a failure's message goes to err (errlen bytes; NULL, 0 for
 * none). Each qrm_ctx function of this section is the qrm_model_* one on
 * the context's model, with the message in qrm_ctx_error, and the context's
 * own chat template when it has one (qrm_ctx_set_chat_template).
 *
 * *ids (and *rendered, when asked for) are allocated by the library:
 * release them with qrm_free. After a failure *ids is NULL and *n is 0. */

/* One turn of a conversation: NUL-terminated UTF-8. role is what the chat
 * template expects ("system", "user", "assistant", ...). */
typedef struct {
    const char *role;
    const char *content;
} qrm_message;

/* Tokenizes text as Hugging Face encode(text, add_special_tokens). */
QRM_API qrm_status qrm_model_tokenize(const qrm_model *m, const char *text, size_t len,
                                      int add_special, int32_t **ids, size_t *n, char *err,
                                      size_t errlen);
QRM_API qrm_status qrm_tokenize(qrm_ctx *c, const char *text, size_t len, int add_special,
                                int32_t **ids, size_t *n);

/* The reward-model input rule for a conversation: render the chat
 * template, drop a duplicated leading BOS, tokenize. rendered (may be NULL)
 * receives the rendered text, NUL-terminated. */
QRM_API qrm_status qrm_model_encode_messages(const qrm_model *m, const qrm_message *msgs,
                                             size_t n_msgs, int32_t **ids, size_t *n,
                                             char **rendered, char *err, size_t errlen);
QRM_API qrm_status qrm_encode_messages(qrm_ctx *c, const qrm_message *msgs, size_t n_msgs,
                                       int32_t **ids, size_t *n, char **rendered);
/* The same for the conversation as JSON text: an array of {"role",
 * "content"} objects (other members are passed to the template too). */
QRM_API qrm_status qrm_model_encode_chat(const qrm_model *m, const char *messages_json, size_t len,
                                         int32_t **ids, size_t *n, char **rendered, char *err,
                                         size_t errlen);
QRM_API qrm_status qrm_encode_chat(qrm_ctx *c, const char *messages_json, size_t len,
                                   int32_t **ids, size_t *n, char **rendered);
/* Replaces, for this context only, the chat template the model's
 * tokenizer_config.json gives (Jinja source, len bytes) in every call that
 * renders a conversation; the model and its other contexts are unchanged.
 * QRM_ETEXT, naming the construct and line, when it does not compile (the
 * context keeps its previous template). len 0 restores the model's. */
QRM_API qrm_status qrm_ctx_set_chat_template(qrm_ctx *c, const char *src, size_t len);
/* Same, for a user prompt and one assistant response. */
QRM_API qrm_status qrm_model_encode_prompt_response(const qrm_model *m, const char *prompt,
                                                    size_t plen, const char *response, size_t rlen,
                                                    int32_t **ids, size_t *n, char *err,
                                                    size_t errlen);
QRM_API qrm_status qrm_encode_prompt_response(qrm_ctx *c, const char *prompt, size_t plen,
                                              const char *response, size_t rlen, int32_t **ids,
                                              size_t *n);

/* A process reward model's input: the prompt as the user turn, the steps
 * as the assistant turn, each followed by the model's step separator (its
 * model card's rule). QRM_EINVAL for a model without a step head, an empty
 * step, or a step containing the separator's text. */
QRM_API qrm_status qrm_model_encode_steps(const qrm_model *m, const char *prompt, size_t plen,
                                          const char *const *steps, const size_t *step_len,
                                          size_t n_steps, int32_t **ids, size_t *n, char *err,
                                          size_t errlen);
QRM_API qrm_status qrm_encode_steps(qrm_ctx *c, const char *prompt, size_t plen,
                                    const char *const *steps, const size_t *step_len,
                                    size_t n_steps, int32_t **ids, size_t *n);

/* A DPO sequence from a conversation (JSON array of {"role", "content"})
 * whose last turn is the assistant's response, as RewardBench builds it: BOS
 * (EOS without one) + the tokens of the rendered conversation + EOS; the
 * response (the tokens scored) starts at *response_start. */
QRM_API qrm_status qrm_model_encode_dpo(const qrm_model *m, const char *messages_json, size_t len,
                                        int32_t **ids, size_t *n, size_t *response_start,
                                        char *err, size_t errlen);
QRM_API qrm_status qrm_encode_dpo(qrm_ctx *c, const char *messages_json, size_t len,
                                  int32_t **ids, size_t *n, size_t *response_start);

#ifdef __cplusplus
}
#endif
#endif
