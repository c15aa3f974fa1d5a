/*
 * ut.h - the unit tests' framework: CHECK records a failure with its line
 * and goes on; main() runs the listed tests and prints one closing line
 * "NAME: N passed, N failed" that tests/run adds up.
 */
#ifndef LP_UT_H
#define LP_UT_H

#include <stdio.h>
#include <string.h>

static int ut_failures_in_test;

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			ut_failures_in_test++;                                 \
		}                                                              \
	} while (0)

#define CHECK_STR(a, b)                                                        \
	do {                                                                   \
		const char *ut_a = (a), *ut_b = (b);                           \
		if (ut_a == NULL || ut_b == NULL || strcmp(ut_a, ut_b) != 0) { \
			fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, \
				__LINE__, ut_a ? ut_a : "(null)",              \
				ut_b ? ut_b : "(null)");                       \
			ut_failures_in_test++;                                 \
		}                                                              \
	} while (0)

struct ut_test {
	const char *name;
	void (*fn)(void);
};

static int
ut_run(const char *suite, const struct ut_test *tests, size_t n)
{
	int passed = 0, failed = 0;

	for (size_t i = 0; i < n; i++) {
		ut_failures_in_test = 0;
		tests[i].fn();
		if (ut_failures_in_test == 0) {
			passed++;
		} else {
			failed++;
			fprintf(stderr, "FAIL %s.%s\n", suite, tests[i].name);
		}
	}
	printf("%s: %d passed, %d failed\n", suite, passed, failed);
	return failed == 0 ? 0 : 1;
}

#define UT_MAIN(suite, ...)                                                    \
	int main(void)                                                         \
	{                                                                      \
		static const struct ut_test ut_tests[] = {__VA_ARGS__};        \
		return ut_run(suite, ut_tests,                                 \
			      sizeof(ut_tests) / sizeof(ut_tests[0]));         \
	}
#define UT(fn)                                                                 \
	{                                                                      \
#fn, fn                                                        \
	}

#endif
