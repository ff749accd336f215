/* Helpers shared by the unit tests: locating ../shared and reading files. */
#ifndef NS_TESTUTIL_H
#define NS_TESTUTIL_H

#include <stddef.h>
#include <stdbool.h>

/* Path of $NSTACK_SHARED/<rel> (or ../shared/<rel>) in a static buffer, or
 * NULL with a clear line on stderr when the shared folder is absent. */
const char *ns_test_shared_path(const char *rel);

/* Exit code ctest reads as "skipped". */
#define NS_TEST_SKIP 77

/* Whole file into a malloc'd, NUL-terminated buffer; NULL on error. */
char *ns_test_read_file(const char *path, size_t *len);

#endif
