/* A small AMQP 0-9-1 client on librabbitmq (rabbitmq-c, Debian's librabbitmq-dev), for
 * amqp_scenarios.py: what a C program written against RabbitMQ does, run against a broker.
 * Every socket operation has a timeout (librabbitmq's RPC timeout and consume timeouts), so
 * nothing here hangs.
 *
 * usage: amqp_librabbitmq HOST PORT MODE [ARGS]
 *   roundtrip QUEUE COUNT SIZE   declare QUEUE (exclusive), publish COUNT messages of SIZE
 *                                bytes with publisher confirms and every property set, consume
 *                                them (prefetch 50, manual acks), check order, properties and
 *                                bodies, then basic.get: empty
 *   refused                      log in as guest with a wrong password: connection.close 403
 *   tune CHANNEL_MAX FRAME_MAX HEARTBEAT
 *                                log in asking for these, print what was negotiated
 *   closed-channel               close channel 1, then queue.declare on it: connection.close 504
 *   tx QUEUE                     tx.select, publish, rollback (nothing), publish, commit (one)
 * Prints "ok: ..." and exits 0, or "FAIL: ..." and exits 1.
 *
 * build: cc -O2 -Wall -o amqp_librabbitmq amqp_librabbitmq.c -lrabbitmq
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static amqp_connection_state_t conn;
static const char *host;
static int port;

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("FAIL: ", stdout);
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
	exit(1);
}

/* "connection.close 403 ACCESS_REFUSED - ..." or a library error, for messages */
static const char *describe(amqp_rpc_reply_t r)
{
	static char buf[512];
	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		return "normal";
	case AMQP_RESPONSE_NONE:
		return "no reply";
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		snprintf(buf, sizeof(buf), "library error: %s", amqp_error_string2(r.library_error));
		return buf;
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			amqp_connection_close_t *c = r.reply.decoded;
			snprintf(buf, sizeof(buf), "connection.close %u %.*s", c->reply_code,
				 (int)c->reply_text.len, (char *)c->reply_text.bytes);
		} else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			amqp_channel_close_t *c = r.reply.decoded;
			snprintf(buf, sizeof(buf), "channel.close %u %.*s", c->reply_code,
				 (int)c->reply_text.len, (char *)c->reply_text.bytes);
		} else {
			snprintf(buf, sizeof(buf), "server method 0x%08x", r.reply.id);
		}
		return buf;
	}
	return "?";
}

static void expect_normal(const char *what)
{
	amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
		fail("%s: %s", what, describe(r));
}

static amqp_rpc_reply_t connect_login(const char *pass, int channel_max, int frame_max,
				      int heartbeat)
{
	struct timeval tv = {5, 0};
	conn = amqp_new_connection();
	amqp_socket_t *s = amqp_tcp_socket_new(conn);
	if (!s)
		fail("amqp_tcp_socket_new");
	if (amqp_socket_open_noblock(s, host, port, &tv) != AMQP_STATUS_OK)
		fail("cannot connect to %s:%d", host, port);
	if (amqp_set_rpc_timeout(conn, &tv) != AMQP_STATUS_OK)
		fail("amqp_set_rpc_timeout");
	return amqp_login(conn, "/", channel_max, frame_max, heartbeat, AMQP_SASL_METHOD_PLAIN,
			  "guest", pass);
}

static void login_ok(void)
{
	amqp_rpc_reply_t r = connect_login("guest", 0, 131072, 0);
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
		fail("login: %s", describe(r));
	amqp_channel_open(conn, 1);
	expect_normal("channel.open");
}

static void finish(void)
{
	amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(conn);
}

/* the next frame that is a method on channel 1 (confirms), within 5 s */
static amqp_method_t wait_method(void)
{
	amqp_frame_t f;
	struct timeval tv = {5, 0};
	for (;;) {
		int rc = amqp_simple_wait_frame_noblock(conn, &f, &tv);
		if (rc == AMQP_STATUS_TIMEOUT)
			fail("no frame from the broker within 5 s");
		if (rc != AMQP_STATUS_OK)
			fail("waiting for a frame: %s", amqp_error_string2(rc));
		if (f.frame_type == AMQP_FRAME_METHOD)
			return f.payload.method;
	}
}

static void fill(char *buf, size_t size, unsigned i)
{
	for (size_t k = 0; k < size; k++)
		buf[k] = (char)('a' + (i * 7 + k * 13) % 26);
}

static int roundtrip(const char *queue, unsigned count, size_t size)
{
	login_ok();
	amqp_bytes_t q = amqp_cstring_bytes(queue);
	amqp_queue_declare(conn, 1, q, 0, 0, 1, 0, amqp_empty_table);
	expect_normal("queue.declare");
	amqp_confirm_select(conn, 1);
	expect_normal("confirm.select");

	char *body = malloc(size ? size : 1), *want = malloc(size ? size : 1);
	amqp_table_entry_t hdr[2];
	hdr[0].key = amqp_cstring_bytes("x-seq");
	hdr[0].value.kind = AMQP_FIELD_KIND_I32;
	hdr[1].key = amqp_cstring_bytes("x-origin");
	hdr[1].value.kind = AMQP_FIELD_KIND_UTF8;
	hdr[1].value.value.bytes = amqp_cstring_bytes("librabbitmq");
	uint64_t acked = 0;
	for (unsigned i = 0; i < count; i++) {
		char id[32];
		snprintf(id, sizeof(id), "m%u", i);
		amqp_basic_properties_t p = {0};
		p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_CONTENT_ENCODING_FLAG |
			   AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
			   AMQP_BASIC_PRIORITY_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG |
			   AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_EXPIRATION_FLAG |
			   AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
			   AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_USER_ID_FLAG | AMQP_BASIC_APP_ID_FLAG;
		p.content_type = amqp_cstring_bytes("application/octet-stream");
		p.content_encoding = amqp_cstring_bytes("identity");
		hdr[0].value.value.i32 = (int32_t)i;
		p.headers.num_entries = 2;
		p.headers.entries = hdr;
		p.delivery_mode = 2;
		p.priority = 3;
		p.correlation_id = amqp_cstring_bytes("corr");
		p.reply_to = amqp_cstring_bytes("nowhere");
		p.expiration = amqp_cstring_bytes("600000");
		p.message_id = amqp_cstring_bytes(id);
		p.timestamp = 1700000000 + i;
		p.type = amqp_cstring_bytes("test");
		p.user_id = amqp_cstring_bytes("guest"); /* must be the user logged in */
		p.app_id = amqp_cstring_bytes("amqp_librabbitmq");
		fill(body, size, i);
		amqp_bytes_t b = {size, body};
		int rc = amqp_basic_publish(conn, 1, amqp_empty_bytes, q, 1, 0, &p, b);
		if (rc != AMQP_STATUS_OK)
			fail("basic.publish %u: %s", i, amqp_error_string2(rc));
	}
	while (acked < count) {
		amqp_method_t m = wait_method();
		if (m.id == AMQP_BASIC_ACK_METHOD) {
			amqp_basic_ack_t *a = m.decoded;
			if (a->delivery_tag <= acked || a->delivery_tag > count)
				fail("basic.ack %llu after %llu (of %u)", (unsigned long long)a->delivery_tag,
				     (unsigned long long)acked, count);
			if (!a->multiple && a->delivery_tag != acked + 1)
				fail("basic.ack %llu (single) after %llu", (unsigned long long)a->delivery_tag,
				     (unsigned long long)acked);
			acked = a->delivery_tag;
		} else if (m.id == AMQP_BASIC_NACK_METHOD) {
			fail("basic.nack from the broker");
		} else {
			fail("method 0x%08x while waiting for confirms", m.id);
		}
	}

	amqp_basic_qos(conn, 1, 0, 50, 0);
	expect_normal("basic.qos");
	amqp_basic_consume_ok_t *ok = amqp_basic_consume(conn, 1, q, amqp_empty_bytes, 0, 0, 0,
							 amqp_empty_table);
	expect_normal("basic.consume");
	if (ok->consumer_tag.len == 0)
		fail("empty generated consumer tag");
	amqp_bytes_t tag = amqp_bytes_malloc_dup(ok->consumer_tag); /* buffers get released */
	for (unsigned i = 0; i < count; i++) {
		amqp_envelope_t e;
		struct timeval tv = {5, 0};
		amqp_maybe_release_buffers(conn);
		amqp_rpc_reply_t r = amqp_consume_message(conn, &e, &tv, 0);
		if (r.reply_type != AMQP_RESPONSE_NORMAL)
			fail("message %u of %u: %s", i, count, describe(r));
		amqp_basic_properties_t *p = &e.message.properties;
		char id[32];
		snprintf(id, sizeof(id), "m%u", i);
		fill(want, size, i);
		if (e.delivery_tag != i + 1)
			fail("delivery tag %llu for message %u", (unsigned long long)e.delivery_tag, i);
		if (e.message.body.len != size || memcmp(e.message.body.bytes, want, size) != 0)
			fail("message %u: body of %zu bytes differs", i, e.message.body.len);
		if (!(p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) || p->message_id.len != strlen(id) ||
		    memcmp(p->message_id.bytes, id, strlen(id)) != 0)
			fail("message %u: message-id '%.*s'", i, (int)p->message_id.len,
			     (char *)p->message_id.bytes);
		if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG) || p->headers.num_entries != 2 ||
		    p->headers.entries[0].value.kind != AMQP_FIELD_KIND_I32 ||
		    p->headers.entries[0].value.value.i32 != (int32_t)i)
			fail("message %u: headers not as sent", i);
		if (p->delivery_mode != 2 || p->priority != 3 || p->timestamp != 1700000000u + i ||
		    p->correlation_id.len != 4 || p->content_type.len != 24 || p->type.len != 4 ||
		    p->user_id.len != 5 || p->app_id.len != 16 || p->reply_to.len != 7 ||
		    p->expiration.len != 6 || p->content_encoding.len != 8)
			fail("message %u: properties not as sent (flags 0x%04x)", i, p->_flags);
		if ((i + 1) % 10 == 0 || i + 1 == count) {
			if (amqp_basic_ack(conn, 1, e.delivery_tag, 1) != AMQP_STATUS_OK)
				fail("basic.ack");
		}
		amqp_destroy_envelope(&e);
	}
	amqp_basic_cancel(conn, 1, tag);
	amqp_bytes_free(tag);
	expect_normal("basic.cancel");
	amqp_rpc_reply_t r = amqp_basic_get(conn, 1, q, 1);
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
		fail("basic.get: %s", describe(r));
	if (r.reply.id != AMQP_BASIC_GET_EMPTY_METHOD)
		fail("basic.get after everything was acked: 0x%08x, not get-empty", r.reply.id);
	finish();
	printf("ok: %u messages of %zu bytes, confirmed, consumed in order with all properties\n",
	       count, size);
	free(body);
	free(want);
	return 0;
}

static int refused(void)
{
	amqp_rpc_reply_t r = connect_login("not-the-password", 0, 131072, 0);
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		fail("logged in with a wrong password");
	if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION || r.reply.id != AMQP_CONNECTION_CLOSE_METHOD)
		fail("wrong password: %s, not connection.close 403", describe(r));
	amqp_connection_close_t *c = r.reply.decoded;
	if (c->reply_code != 403)
		fail("wrong password: %s", describe(r));
	printf("ok: %s\n", describe(r));
	amqp_destroy_connection(conn);
	return 0;
}

static int tune(int channel_max, int frame_max, int heartbeat)
{
	amqp_rpc_reply_t r = connect_login("guest", channel_max, frame_max, heartbeat);
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
		fail("login: %s", describe(r));
	printf("ok: channel_max %d frame_max %d heartbeat %d\n", amqp_get_channel_max(conn),
	       amqp_get_frame_max(conn), amqp_get_heartbeat(conn));
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(conn);
	return 0;
}

static int closed_channel(void)
{
	login_ok();
	amqp_rpc_reply_t r = amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
		fail("channel.close: %s", describe(r));
	amqp_queue_declare(conn, 1, amqp_cstring_bytes("tq-closed-channel"), 0, 0, 1, 1,
			   amqp_empty_table);
	r = amqp_get_rpc_reply(conn);
	if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION || r.reply.id != AMQP_CONNECTION_CLOSE_METHOD)
		fail("queue.declare on a closed channel: %s, not connection.close 504", describe(r));
	amqp_connection_close_t *c = r.reply.decoded;
	if (c->reply_code != 504)
		fail("queue.declare on a closed channel: %s", describe(r));
	printf("ok: %s\n", describe(r));
	amqp_destroy_connection(conn);
	return 0;
}

static unsigned message_count(amqp_bytes_t q)
{
	amqp_queue_declare_ok_t *d = amqp_queue_declare(conn, 1, q, 1, 0, 0, 0, amqp_empty_table);
	expect_normal("queue.declare passive");
	return d->message_count;
}

static int tx(const char *queue)
{
	login_ok();
	amqp_bytes_t q = amqp_cstring_bytes(queue);
	amqp_queue_declare(conn, 1, q, 0, 0, 0, 1, amqp_empty_table);
	expect_normal("queue.declare");
	amqp_channel_open(conn, 2);
	expect_normal("channel.open 2");
	amqp_tx_select(conn, 2);
	expect_normal("tx.select");
	amqp_basic_publish(conn, 2, amqp_empty_bytes, q, 0, 0, NULL, amqp_cstring_bytes("rolled back"));
	amqp_tx_rollback(conn, 2);
	expect_normal("tx.rollback");
	if (message_count(q) != 0)
		fail("a rolled back publish reached the queue");
	amqp_basic_publish(conn, 2, amqp_empty_bytes, q, 0, 0, NULL, amqp_cstring_bytes("committed"));
	if (message_count(q) != 0)
		fail("an uncommitted publish reached the queue");
	amqp_tx_commit(conn, 2);
	expect_normal("tx.commit");
	unsigned n = message_count(q);
	if (n != 1)
		fail("%u messages after the commit, expected 1", n);
	amqp_rpc_reply_t r = amqp_basic_get(conn, 1, q, 1);
	if (r.reply_type != AMQP_RESPONSE_NORMAL || r.reply.id != AMQP_BASIC_GET_OK_METHOD)
		fail("basic.get: %s", describe(r));
	amqp_message_t m;
	r = amqp_read_message(conn, 1, &m, 0);
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
		fail("reading the message: %s", describe(r));
	if (m.body.len != 9 || memcmp(m.body.bytes, "committed", 9) != 0)
		fail("got '%.*s'", (int)m.body.len, (char *)m.body.bytes);
	amqp_destroy_message(&m);
	amqp_queue_delete(conn, 1, q, 0, 0);
	expect_normal("queue.delete");
	amqp_channel_close(conn, 2, AMQP_REPLY_SUCCESS);
	finish();
	printf("ok: rollback dropped, commit delivered\n");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 4) {
		fprintf(stderr, "usage: %s HOST PORT roundtrip|refused|tune|closed-channel|tx [ARGS]\n",
			argv[0]);
		return 2;
	}
	host = argv[1];
	port = atoi(argv[2]);
	const char *mode = argv[3];
	if (!strcmp(mode, "roundtrip") && argc == 7)
		return roundtrip(argv[4], (unsigned)atoi(argv[5]), (size_t)atol(argv[6]));
	if (!strcmp(mode, "refused"))
		return refused();
	if (!strcmp(mode, "tune") && argc == 7)
		return tune(atoi(argv[4]), atoi(argv[5]), atoi(argv[6]));
	if (!strcmp(mode, "closed-channel"))
		return closed_channel();
	if (!strcmp(mode, "tx") && argc == 5)
		return tx(argv[4]);
	fprintf(stderr, "%s: bad mode or arguments\n", argv[0]);
	return 2;
}
