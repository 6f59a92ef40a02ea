/* tq_json: values, escapes, nesting limits, errors and their positions; guard-page inputs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "control/tq_json.h"
#include "tq_test.h"

/* Parse @len bytes of @text placed against a guard page; *@err_pos set on failure. */
static struct tq_json *
parse_n(const char *text, size_t len, size_t *err_pos)
{
	uint8_t *g = tq_test_guarded(text, len);
	struct tq_json *j;

	errno = 0;
	*err_pos = (size_t)-1;
	j = tq_json_parse((const char *)g, len, err_pos);
	tq_test_guard_free(g, len);
	return j;
}

static struct tq_json *
parse(const char *text)
{
	size_t pos;

	return parse_n(text, strlen(text), &pos);
}

/* Does @text fail with EINVAL at offset @want_pos? */
static void
assert_error_at(const char *text, size_t want_pos)
{
	size_t pos;
	struct tq_json *j = parse_n(text, strlen(text), &pos);

	CU_ASSERT_PTR_NULL(j);
	CU_ASSERT_EQUAL(errno, EINVAL);
	if (pos != want_pos)
		fprintf(stderr, "\n  \"%s\": error at %zu, want %zu\n", text, pos, want_pos);
	CU_ASSERT_EQUAL(pos, want_pos);
	tq_json_free(j);
}

static void
test_scalars(void)
{
	static const struct {
		const char *text;
		enum tq_json_type type;
		const char *value; /* text of NUMBER/STRING */
		bool boolean;
	} cases[] = {
		{"null", TQ_JSON_NULL, NULL, false},
		{"true", TQ_JSON_BOOL, NULL, true},
		{"false", TQ_JSON_BOOL, NULL, false},
		{"0", TQ_JSON_NUMBER, "0", false},
		{"-12.5e+3", TQ_JSON_NUMBER, "-12.5e+3", false},
		{" \t\r\n42 \n", TQ_JSON_NUMBER, "42", false},
		{"\"\"", TQ_JSON_STRING, "", false},
		{"\"hello world\"", TQ_JSON_STRING, "hello world", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tq_json *j = parse(cases[i].text);

		CU_ASSERT_PTR_NOT_NULL_FATAL(j);
		CU_ASSERT_EQUAL(j->type, cases[i].type);
		CU_ASSERT_PTR_NULL(j->key);
		CU_ASSERT_PTR_NULL(j->child);
		CU_ASSERT_PTR_NULL(j->next);
		if (cases[i].value)
			CU_ASSERT_STRING_EQUAL(j->text, cases[i].value);
		if (cases[i].type == TQ_JSON_BOOL)
			CU_ASSERT_EQUAL(j->boolean, cases[i].boolean);
		tq_json_free(j);
	}
}

static void
test_string_escapes(void)
{
	static const struct {
		const char *text;
		const char *want;
	} cases[] = {
		{"\"a\\\"b\"", "a\"b"},
		{"\"\\\\\"", "\\"},
		{"\"\\/\"", "/"},
		{"\"\\b\\f\\n\\r\\t\"", "\b\f\n\r\t"},
		{"\"\\u0041\\u0062\"", "Ab"},
		{"\"\\u00e9\"", "\xc3\xa9"},
		{"\"\\u00E9\"", "\xc3\xa9"},
		{"\"\\u07ff\"", "\xdf\xbf"},
		{"\"\\u20ac\"", "\xe2\x82\xac"},
		{"\"\\uffff\"", "\xef\xbf\xbf"},
		{"\"caf\xc3\xa9\"", "caf\xc3\xa9"}, /* raw UTF-8 passes through */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tq_json *j = parse(cases[i].text);

		CU_ASSERT_PTR_NOT_NULL_FATAL(j);
		CU_ASSERT_EQUAL(j->type, TQ_JSON_STRING);
		CU_ASSERT_STRING_EQUAL(j->text, cases[i].want);
		tq_json_free(j);
	}
}

static void
test_string_errors(void)
{
	static const char *const bad[] = {
		"\"abc",	 /* unterminated */
		"\"abc\\\"",	 /* the only quote is escaped */
		"\"\\",		 /* backslash at the end */
		"\"\\x\"",	 /* unknown escape */
		"\"\\u12\"",	 /* short \u */
		"\"\\u12g4\"",	 /* not hex */
		"\"\\u\"",
		"\"a\tb\"",	 /* raw control character */
		"\"a\nb\"",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t pos;
		struct tq_json *j = parse_n(bad[i], strlen(bad[i]), &pos);

		CU_ASSERT_PTR_NULL(j);
		CU_ASSERT_EQUAL(errno, EINVAL);
		CU_ASSERT(pos <= strlen(bad[i]));
		tq_json_free(j);
	}
	/* a NUL byte inside a string is a control character too */
	{
		size_t pos;
		struct tq_json *j = parse_n("\"a\0b\"", 5, &pos);

		CU_ASSERT_PTR_NULL(j);
		tq_json_free(j);
	}
}

static void
test_containers(void)
{
	struct tq_json *j = parse(" {\"name\" : \"w0\", \"ports\": [0, 1, 2], \"up\": true,"
				  " \"inner\": {\"a\": null, \"b\": []}, \"empty\": {}} ");
	const struct tq_json *ports, *inner, *e;
	uint64_t want = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	CU_ASSERT_EQUAL(j->type, TQ_JSON_OBJECT);
	CU_ASSERT_STRING_EQUAL(tq_json_get(j, "name")->text, "w0");
	CU_ASSERT_EQUAL(tq_json_get(j, "up")->boolean, true);
	ports = tq_json_get(j, "ports");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ports);
	CU_ASSERT_EQUAL(ports->type, TQ_JSON_ARRAY);
	for (e = ports->child; e; e = e->next, want++) {
		CU_ASSERT_PTR_NULL(e->key);
		CU_ASSERT_EQUAL(tq_json_u64(e), want);
	}
	CU_ASSERT_EQUAL(want, 3);
	inner = tq_json_get(j, "inner");
	CU_ASSERT_PTR_NOT_NULL_FATAL(inner);
	CU_ASSERT_EQUAL(tq_json_get(inner, "a")->type, TQ_JSON_NULL);
	CU_ASSERT_EQUAL(tq_json_get(inner, "b")->type, TQ_JSON_ARRAY);
	CU_ASSERT_PTR_NULL(tq_json_get(inner, "b")->child);
	CU_ASSERT_PTR_NULL(tq_json_get(tq_json_get(j, "empty"), "x"));
	CU_ASSERT_PTR_NULL(tq_json_get(j, "nosuch"));
	CU_ASSERT_PTR_NULL(tq_json_get(ports, "0")); /* not an object */
	CU_ASSERT_PTR_NULL(tq_json_get(NULL, "name"));
	/* members keep their order */
	CU_ASSERT_STRING_EQUAL(j->child->key, "name");
	CU_ASSERT_STRING_EQUAL(j->child->next->key, "ports");
	tq_json_free(j);
	tq_json_free(NULL);
}

static void
test_u64(void)
{
	static const struct {
		const char *text;
		uint64_t want;
	} cases[] = {
		{"0", 0}, {"42", 42}, {"18446744073709551615", UINT64_MAX}, {"-1", 0},
		{"1.5", 0}, {"1e3", 0}, {"\"7\"", 0}, {"true", 0}, {"null", 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tq_json *j = parse(cases[i].text);

		CU_ASSERT_PTR_NOT_NULL_FATAL(j);
		CU_ASSERT_EQUAL(tq_json_u64(j), cases[i].want);
		tq_json_free(j);
	}
	CU_ASSERT_EQUAL(tq_json_u64(NULL), 0);
}

static void
test_syntax_errors_point_at_the_byte(void)
{
	assert_error_at("", 0);
	assert_error_at("   ", 3);
	assert_error_at("1 x", 2);
	assert_error_at("[1,]", 3);
	assert_error_at("[,1]", 1);
	assert_error_at("[1 2]", 3);
	assert_error_at("[1,", 3);
	assert_error_at("{\"a\" 1}", 5);
	assert_error_at("{\"a\":1,}", 7);
	assert_error_at("{1:2}", 1);
	assert_error_at("{\"a\":}", 5);
	assert_error_at("tru", 0);
	assert_error_at("nul", 0);
	assert_error_at("fals", 0);
	assert_error_at("trueX", 4);
	assert_error_at("-", 1);
	assert_error_at("-a", 1);
	assert_error_at(".5", 0);
	assert_error_at("+1", 0);
	assert_error_at("}", 0);
	assert_error_at("[]]", 2);
	assert_error_at("{}{}", 2);
	/* a NUL byte after a value is trailing garbage, not the end of the input */
	{
		size_t pos;
		struct tq_json *j = parse_n("1\0", 2, &pos);

		CU_ASSERT_PTR_NULL(j);
		CU_ASSERT_EQUAL(pos, 1);
		tq_json_free(j);
	}
}

/* Nesting: TQ_JSON_MAX_DEPTH values deep parse, one more is refused (no stack overflow). */
static void
test_depth_limit(void)
{
	char doc[2 * 4096 + 8];

	for (size_t depth = 1; depth <= TQ_JSON_MAX_DEPTH + 1; depth++) {
		size_t pos;
		struct tq_json *j;

		memset(doc, '[', depth);
		memset(doc + depth, ']', depth);
		j = parse_n(doc, 2 * depth, &pos);
		if (depth <= TQ_JSON_MAX_DEPTH) {
			CU_ASSERT_PTR_NOT_NULL(j);
		} else {
			CU_ASSERT_PTR_NULL(j);
			CU_ASSERT_EQUAL(errno, EINVAL);
		}
		tq_json_free(j);
	}
	/* far too deep: still refused, quickly */
	memset(doc, '[', 4096);
	memset(doc + 4096, ']', 4096);
	{
		size_t pos;
		struct tq_json *j = parse_n(doc, 8192, &pos);

		CU_ASSERT_PTR_NULL(j);
		tq_json_free(j);
	}
	/* objects count the same way */
	{
		size_t n = 0, pos;
		struct tq_json *j;

		for (int i = 0; i < TQ_JSON_MAX_DEPTH - 1; i++)
			n += (size_t)sprintf(doc + n, "{\"k\":");
		n += (size_t)sprintf(doc + n, "1");
		for (int i = 0; i < TQ_JSON_MAX_DEPTH - 1; i++)
			doc[n++] = '}';
		j = parse_n(doc, n, &pos);
		CU_ASSERT_PTR_NOT_NULL(j);
		tq_json_free(j);
	}
}

/*
 * Every strict prefix of a document that ends with a closing bracket fails (with the error
 * inside the input), without reading past it; the whole document parses.
 */
static void
test_every_prefix(void)
{
	static const char doc[] = "{\"v\":[1,-2.5e3,\"s\\u00e9\\n\",true,false,null,{}],"
				  "\"o\":{\"k\":\"\\\"\"}}";
	size_t n = strlen(doc);

	for (size_t len = 0; len <= n; len++) {
		size_t pos;
		struct tq_json *j = parse_n(doc, len, &pos);

		if (len < n) {
			CU_ASSERT_PTR_NULL(j);
			CU_ASSERT(pos <= len);
		} else {
			CU_ASSERT_PTR_NOT_NULL(j);
		}
		tq_json_free(j);
	}
}

int
main(void)
{
	static const struct tq_test_case tests[] = {
		TQ_TEST(test_scalars),
		TQ_TEST(test_string_escapes),
		TQ_TEST(test_string_errors),
		TQ_TEST(test_containers),
		TQ_TEST(test_u64),
		TQ_TEST(test_syntax_errors_point_at_the_byte),
		TQ_TEST(test_depth_limit),
		TQ_TEST(test_every_prefix),
	};

	if (CU_initialize_registry() != CUE_SUCCESS || TQ_SUITE("json", tests) != CUE_SUCCESS)
		return EXIT_FAILURE;
	return tq_test_run();
}
