/* Chat templates (core/chat_template*.c): the input is template source,
 * compiled and rendered against a small fixed conversation, with and
 * without the generation prompt. Both steps may fail, with a one-line
 * "chat template: " message, but never crash or run unbounded. */
#include <string.h>

#include "chat_template.h"
#include "fuzz.h"
#include "json.h"

/* Every role and field kind the real templates look at. */
static const char messages_json[] =
    "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"user\",\"content\":\"What is 2+2? <b>\\u00e9</b>\"},"
    "{\"role\":\"assistant\",\"content\":\"4\",\"tool_calls\":[{\"type\":\"function\","
    "\"function\":{\"name\":\"add\",\"arguments\":{\"a\":2,\"b\":2}}}]},"
    "{\"role\":\"tool\",\"content\":[{\"type\":\"text\",\"text\":\"4\"}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"image\"},{\"type\":\"text\",\"text\":\"ok?\"}]}]";
static const char extra_json[] =
    "{\"bos_token\":\"<s>\",\"eos_token\":\"</s>\",\"tools\":[{\"type\":\"function\","
    "\"function\":{\"name\":\"add\",\"parameters\":{\"type\":\"object\"}}}],"
    "\"date_string\":\"26 Jul 2024\"}";
static qj_doc *messages, *extra;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    char err[256];
    messages = qj_parse(messages_json, strlen(messages_json), err, sizeof err);
    FZ_SETUP(messages, "messages: %s", err);
    extra = qj_parse(extra_json, strlen(extra_json), err, sizeof err);
    FZ_SETUP(extra, "extra: %s", err);
    return 0;
}

static void check_error(const char *err) {
    FZ_CHECK(!strncmp(err, "chat template: ", 15), "error without the prefix: %s", err);
    FZ_CHECK(!strchr(err, '\n'), "error spans lines: %s", err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    qrm_template *t = qrm_template_compile((const char *)data, size, err, sizeof err);
    if (!t) {
        check_error(err);
        return 0;
    }
    for (int agp = 0; agp < 2; agp++) {
        char *out = NULL;
        size_t out_len = 0;
        if (qrm_template_render(t, qj_root(messages), qj_root(extra), agp, &out, &out_len, err,
                                sizeof err) == 0) {
            FZ_CHECK(out && out[out_len] == 0 && out_len <= QRM_TEMPLATE_MAX_OUTPUT,
                     "bad rendered text");
            free(out);
        } else {
            check_error(err);
        }
    }
    qrm_template_free(t);
    return 0;
}
