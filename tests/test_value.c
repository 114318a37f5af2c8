/*
 * test_value.c - values and value sets.
 */
#include <stdlib.h>
#include <string.h>
#include <train/value.h>

#include "testlib.h"

static void test_value(void)
{
	train_value *v, *w, *x;
	CU_ASSERT_EQUAL_FATAL(train_value_new("text/plain", "abc", 3, &v), 0);
	CU_ASSERT_STRING_EQUAL(train_value_type(v), "text/plain");
	CU_ASSERT_EQUAL(train_value_size(v), 3);
	CU_ASSERT_EQUAL(memcmp(train_value_data(v), "abc", 3), 0);
	CU_ASSERT_EQUAL_FATAL(train_value_new("text/plain", "abc", 3, &w), 0);
	CU_ASSERT(train_fp_eq(train_value_fp(v), train_value_fp(w)));
	/* The type is part of the fingerprint. */
	CU_ASSERT_EQUAL_FATAL(train_value_new("text/csv", "abc", 3, &x), 0);
	CU_ASSERT(!train_fp_eq(train_value_fp(v), train_value_fp(x)));
	train_value_unref(x);
	CU_ASSERT_EQUAL(train_value_new("", "abc", 3, &x), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_value_new("t", NULL, 3, &x), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_value_new("t", NULL, 0, &x), 0);
	CU_ASSERT_EQUAL(train_value_size(x), 0);
	train_value_unref(x);
	/* References. */
	train_value_ref(v);
	train_value_unref(v);
	CU_ASSERT_EQUAL(train_value_size(v), 3);
	train_value_unref(v);
	train_value_unref(w);
	train_value_unref(NULL);
	char *heap = malloc(4);
	memcpy(heap, "wxyz", 4);
	CU_ASSERT_EQUAL_FATAL(train_value_new_take("bytes", heap, 4, &v), 0);
	CU_ASSERT_PTR_EQUAL(train_value_data(v), heap);
	train_value_unref(v);
}

static void test_set(void)
{
	train_values *s;
	CU_ASSERT_EQUAL_FATAL(train_values_create(&s), 0);
	CU_ASSERT_PTR_NULL(train_values_get(s, "a"));
	for (int i = 0; i < 20; i++) {
		char name[8], data[8];
		snprintf(name, sizeof name, "n%d", i);
		snprintf(data, sizeof data, "d%d", i);
		CU_ASSERT_EQUAL(train_values_put_bytes(s, name, "t", data, strlen(data)), 0);
	}
	CU_ASSERT_EQUAL(train_values_len(s), 20);
	CU_ASSERT_STRING_EQUAL(train_values_name_at(s, 7), "n7");
	CU_ASSERT_STRING_EQUAL(train_value_data(train_values_get(s, "n13")), "d13");
	/* Replacing keeps one entry. */
	CU_ASSERT_EQUAL(train_values_put_bytes(s, "n13", "t", "new", 3), 0);
	CU_ASSERT_EQUAL(train_values_len(s), 20);
	CU_ASSERT_STRING_EQUAL(train_value_data(train_values_get(s, "n13")), "new");
	CU_ASSERT_PTR_NULL(train_values_at(s, 20));
	CU_ASSERT_EQUAL(train_values_put_take(s, "", NULL), TRAIN_EINVAL);
	train_values_destroy(s);
	train_values_destroy(NULL);
}

int main(void)
{
	static const test_case cases[] = {
		{ "values", test_value },
		{ "value sets", test_set },
		{ NULL, NULL },
	};
	return test_main("value", cases);
}
