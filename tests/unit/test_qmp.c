/* The QMP parser with the examples of QEMU's qmp-spec.rst, fed whole, byte by byte, and
 * split at every point; and what it must refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/util.h"
#include "qmp/qmp.h"

/* The server's side of the spec's examples, one stream, as QEMU separates them. */
static const char spec_stream[] =
	"{ \"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 0, \"major\": 3},\r\n"
	"     \"package\": \"v3.0.0\"}, \"capabilities\": [\"oob\"] } }\r\n"
	"{ \"return\": {}}\r\n"
	"{ \"return\": { \"enabled\": true, \"present\": true }, \"id\": \"example\"}\r\n"
	"{ \"error\": { \"class\": \"GenericError\", \"desc\": \"JSON parse error, expecting "
	"value\" } }\r\n"
	"{ \"timestamp\": { \"seconds\": 1258551470, \"microseconds\": 802384 },\r\n"
	"    \"event\": \"POWERDOWN\" }\r\n"
	"{ \"id\": 42,\r\n \"error\": { \"class\": \"GenericError\",\r\n"
	"  \"desc\": \"migrate-pause is currently only supported during postcopy-active "
	"state\" } }\r\n";

static void check_spec_messages(struct qp_qmp_reader *r)
{
	struct qp_qmp_msg m;
	assert_int_equal(qp_qmp_reader_next(r, &m), 1);
	assert_int_equal(m.kind, QP_QMP_GREETING);
	assert_non_null(json_object_object_get(m.data, "capabilities"));
	qp_qmp_msg_free(&m);

	assert_int_equal(qp_qmp_reader_next(r, &m), 1);
	assert_int_equal(m.kind, QP_QMP_RETURN);
	assert_null(m.id);
	assert_int_equal(json_object_object_length(m.data), 0);
	qp_qmp_msg_free(&m);

	assert_int_equal(qp_qmp_reader_next(r, &m), 1);
	assert_int_equal(m.kind, QP_QMP_RETURN);
	assert_string_equal(json_object_get_string(m.id), "example");
	assert_true(json_object_get_boolean(json_object_object_get(m.data, "present")));
	qp_qmp_msg_free(&m);

	assert_int_equal(qp_qmp_reader_next(r, &m), 1);
	assert_int_equal(m.kind, QP_QMP_ERROR);
	assert_null(m.id);
	assert_string_equal(m.error_class, "GenericError");
	assert_string_equal(m.error_desc, "JSON parse error, expecting value");
	qp_qmp_msg_free(&m);

	assert_int_equal(qp_qmp_reader_next(r, &m), 1);
	assert_int_equal(m.kind, QP_QMP_EVENT);
	assert_string_equal(m.event, "POWERDOWN");
	assert_null(m.data);
	qp_qmp_msg_free(&m);

	assert_int_equal(qp_qmp_reader_next(r, &m), 1);
	assert_int_equal(m.kind, QP_QMP_ERROR);
	assert_int_equal(json_object_get_int(m.id), 42);
	qp_qmp_msg_free(&m);

	assert_int_equal(qp_qmp_reader_next(r, &m), 0);
}

static void spec_examples_whole(void **state)
{
	struct qp_qmp_reader *r = qp_qmp_reader_new();
	qp_qmp_reader_feed(r, spec_stream, strlen(spec_stream));
	check_spec_messages(r);
	qp_qmp_reader_free(r);
}

static void spec_examples_byte_by_byte(void **state)
{
	struct qp_qmp_reader *r = qp_qmp_reader_new();
	for (size_t i = 0; spec_stream[i]; i++)
		qp_qmp_reader_feed(r, spec_stream + i, 1);
	check_spec_messages(r);
	qp_qmp_reader_free(r);
}

static void spec_examples_split_everywhere(void **state)
{
	size_t n = strlen(spec_stream);
	for (size_t cut = 1; cut < n; cut++) {
		struct qp_qmp_reader *r = qp_qmp_reader_new();
		qp_qmp_reader_feed(r, spec_stream, cut);
		qp_qmp_reader_feed(r, spec_stream + cut, n - cut);
		check_spec_messages(r);
		qp_qmp_reader_free(r);
	}
}

static void large_message(void **state)
{
	/* A reply of 4 MiB (query-qmp-schema is large), in 4 KiB pieces. */
	size_t big = 4u << 20;
	struct qp_buf b = { 0 };
	qp_buf_add(&b, "{\"return\": [");
	for (size_t i = 0; b.len < big; i++)
		qp_buf_addf(&b, "%s{\"name\": \"command-%zu\", \"meta-type\": \"command\"}",
			    i ? "," : "", i);
	qp_buf_add(&b, "], \"id\": 7}\r\n{\"event\": \"STOP\", \"data\": {}}");
	struct qp_qmp_reader *r = qp_qmp_reader_new();
	for (size_t off = 0; off < b.len; off += 4096) {
		size_t n = b.len - off < 4096 ? b.len - off : 4096;
		qp_qmp_reader_feed(r, b.s + off, n);
	}
	struct qp_qmp_msg m;
	assert_int_equal(qp_qmp_reader_next(r, &m), 1);
	assert_int_equal(m.kind, QP_QMP_RETURN);
	assert_true(json_object_array_length(m.data) > 50000);
	assert_int_equal(json_object_get_int(m.id), 7);
	qp_qmp_msg_free(&m);
	assert_int_equal(qp_qmp_reader_next(r, &m), 1);
	assert_string_equal(m.event, "STOP");
	assert_non_null(m.data);
	qp_qmp_msg_free(&m);
	qp_qmp_reader_free(r);
	qp_buf_free(&b);
}

/* A nesting bomb: 65 arrays deep, one more than the reader takes. */
static char *nesting_bomb(void)
{
	struct qp_buf b = { 0 };
	qp_buf_add(&b, "{\"return\": ");
	for (int i = 0; i < 65; i++)
		qp_buf_addc(&b, '[');
	for (int i = 0; i < 65; i++)
		qp_buf_addc(&b, ']');
	qp_buf_addc(&b, '}');
	return qp_buf_steal(&b);
}

static void drops_what_is_not_qmp_and_reads_on(void **state)
{
	qp_autofree char *bomb = nesting_bomb();
	const char *bad[] = {
		"[1, 2]",                                   /* not an object */
		"{\"hello\": 1}",                           /* not a known message */
		"{\"error\": {\"class\": 1}}",              /* an error without its members */
		"{\"event\": 5}",                           /* an event name that is no string */
		"{\"return\": }",                           /* malformed */
		"{\"return\": 'x'}",                        /* not strict JSON */
		"{\"return\": NaN}",                        /* not JSON */
		"{\"return\": [1, 2,]}",                    /* a trailing comma */
		"null",                                     /* not an object */
		"{\"return\": \"a\\u0000b\"}",              /* a NUL in a string */
		bomb,
	};
	for (size_t i = 0; i < QP_ARRAY_SIZE(bad); i++) {
		struct qp_qmp_reader *r = qp_qmp_reader_new();
		/* Then a good event on the next line: the reader must get to it. */
		qp_autofree char *text = qp_xasprintf("%s\r\n{\"event\": \"SHUTDOWN\", "
						      "\"data\": {\"guest\": true}}\r\n", bad[i]);
		qp_qmp_reader_feed(r, text, strlen(text));
		struct qp_qmp_msg m;
		size_t n_bad = 0;
		bool shutdown = false;
		while (qp_qmp_reader_next(r, &m)) {
			if (m.kind == QP_QMP_BAD) {
				assert_non_null(m.bad);
				n_bad++;
			} else if (m.kind == QP_QMP_EVENT) {
				shutdown = !strcmp(m.event, "SHUTDOWN");
			} else {
				fail_msg("read %s as a message", bad[i]);
			}
			qp_qmp_msg_free(&m);
		}
		if (n_bad != 1 || !shutdown)
			fail_msg("%s: %zu bad messages, shutdown %s", bad[i], n_bad,
				 shutdown ? "read" : "lost");
		qp_qmp_reader_free(r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(spec_examples_whole),
		cmocka_unit_test(spec_examples_byte_by_byte),
		cmocka_unit_test(spec_examples_split_everywhere),
		cmocka_unit_test(large_message),
		cmocka_unit_test(drops_what_is_not_qmp_and_reads_on),
	};
	return cmocka_run_group_tests_name("qmp", tests, NULL, NULL);
}
