/* Shared helpers for the Check suites. Tests run from the repository root. */
#ifndef QRM_TESTUTIL_H
#define QRM_TESTUTIL_H

#include <check.h>
#include <stddef.h>

#include "convert.h"

#define TEST_DATA "tests/data"

/* Where the suites find the programs they run (qrm, qrm-convert): build/,
 * unless the build names its own folder, as test-sanitize does so that the
 * command-line paths run instrumented too. (test-aarch64 keeps build/: its
 * ARM programs would not run on the host.) */
#ifndef QRM_TEST_BIN_DIR
#define QRM_TEST_BIN_DIR "build"
#endif

/* Reads a whole file (NUL-terminated); aborts the test with a message if missing. */
char *tu_read_file(const char *path, size_t *len);
/* Calls fn(line, len, arg) for each line of a text file (without the newline);
 * returns the number of lines. */
int tu_for_each_line(const char *path, void (*fn)(const char *line, size_t len, void *arg),
                     void *arg);
/* A fresh temporary directory (under $TMPDIR or /tmp); caller frees the string. */
char *tu_tmpdir(void);
/* Converts tests/data/models/FIXTURE at quant (with the head options of
 * extra, which may be NULL) into a fresh temporary folder; the converted
 * file's path, for tu_remove_converted. */
char *tu_convert(const char *fixture, const char *quant, const qrm_convert_opts *extra);
/* Removes the file and its folder, and frees path. */
void tu_remove_converted(char *path);
/* The programs' rule, for the suites: QRM_ISA (as `make test` sets it per
 * family) becomes the library's default family (qrm_set_default_isa), since
 * the library reads no environment. tu_run does it first; a test that
 * changes the default calls it again to restore. Aborts on an unusable
 * family. */
void tu_apply_isa_env(void);
/* Runs the suite, prints Check's summary, returns the process exit code. */
int tu_run(Suite *s);

#endif
