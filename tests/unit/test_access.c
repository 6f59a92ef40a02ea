/*
 * tq_access: vhosts, RabbitMQ permissions (unanchored ERE search, "" matches nothing, the
 * default exchange as amq.default), topic permissions with {username}/{vhost}/{client_id},
 * MQTT ACLs (per user and everyone, %u/%c, deny precedence, '$' topics), the filter algebra
 * against a brute-force reference over a small universe of topics, enumeration for export,
 * snapshots, and a QSBR reader checking while the main thread publishes new snapshots.
 *
 * The main thread is the control thread: it is not a QSBR reader, so tq_access_publish()
 * may wait for a grace period from it.
 */
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <urcu/urcu-qsbr.h>

#include "control/tq_access.h"
#include "tq_test.h"

#define VH "/"

static struct tq_access_db *D;
static struct tq_access *A;
static uint64_t gen;

static void
setup(void)
{
	D = tq_access_db_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(D);
	CU_ASSERT_EQUAL_FATAL(tq_access_vhost_add(D, VH), 0);
}

/* (Re)build A from D, as the control thread does after a change. */
static void
snap(void)
{
	tq_access_free(A);
	A = tq_access_build(D, ++gen);
	CU_ASSERT_PTR_NOT_NULL_FATAL(A);
}

static void
teardown(void)
{
	tq_access_free(A);
	tq_access_db_free(D);
	A = NULL;
	D = NULL;
}

static int
perms(const char *user, const char *c, const char *w, const char *r)
{
	return tq_access_set_permissions(D, user, VH, c, w, r, NULL, 0);
}

static bool
chk(const char *user, enum tq_perm_op op, const char *name)
{
	return tq_access_check(A, user, VH, op, name, strlen(name));
}

static struct tq_access_who
who(const char *user, const char *client_id)
{
	return (struct tq_access_who){.user = user, .vhost = VH, .client_id = client_id};
}

static bool
topic_ok(const char *user, const char *cid, const char *x, enum tq_perm_op op, const char *key)
{
	const struct tq_access_who w = who(user, cid);

	return tq_access_topic_ok(A, &w, x, op, key, strlen(key));
}

static bool
pub(const char *user, const char *cid, const char *topic)
{
	const struct tq_access_who w = who(user, cid);

	return tq_access_acl_publish(A, &w, topic, strlen(topic));
}

static bool
sub(const char *user, const char *cid, const char *filter)
{
	const struct tq_access_who w = who(user, cid);

	return tq_access_acl_subscribe(A, &w, filter, strlen(filter));
}

static bool
covers(const char *p, const char *f)
{
	return tq_access_filter_covers(p, strlen(p), f, strlen(f));
}

static bool
intersects(const char *p, const char *f)
{
	return tq_access_filter_intersects(p, strlen(p), f, strlen(f));
}

/* ---- vhosts ------------------------------------------------------------------------ */

static void
test_vhosts(void)
{
	char name[TQ_VHOST_NAME_MAX + 2];

	setup();
	CU_ASSERT_EQUAL(tq_access_vhost_add(D, VH), -EEXIST);
	CU_ASSERT_EQUAL(tq_access_vhost_add(D, ""), -EINVAL);
	CU_ASSERT_EQUAL(tq_access_vhost_add(D, NULL), -EINVAL);
	memset(name, 'v', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	CU_ASSERT_EQUAL(tq_access_vhost_add(D, name), -EINVAL); /* 256 bytes */
	name[TQ_VHOST_NAME_MAX] = '\0';
	CU_ASSERT_EQUAL(tq_access_vhost_add(D, name), 0); /* 255 */
	CU_ASSERT_EQUAL(tq_access_vhost_add(D, "prod"), 0);
	CU_ASSERT_EQUAL(tq_access_vhost_add(D, "dev"), 0);
	CU_ASSERT(tq_access_vhost_exists(D, "prod"));
	CU_ASSERT(!tq_access_vhost_exists(D, "staging"));
	CU_ASSERT(!tq_access_vhost_exists(D, "pro"));

	/* name order */
	CU_ASSERT_EQUAL_FATAL(tq_access_vhost_count(D), 4);
	CU_ASSERT_STRING_EQUAL(tq_access_vhost_at(D, 0), "/");
	CU_ASSERT_STRING_EQUAL(tq_access_vhost_at(D, 1), "dev");
	CU_ASSERT_STRING_EQUAL(tq_access_vhost_at(D, 2), "prod");
	CU_ASSERT_STRING_EQUAL(tq_access_vhost_at(D, 3), name);
	CU_ASSERT_PTR_NULL(tq_access_vhost_at(D, 4));

	/* deleting a vhost takes its permissions and topic permissions with it */
	CU_ASSERT_EQUAL(tq_access_set_permissions(D, "u", "prod", ".*", ".*", ".*", NULL, 0), 0);
	CU_ASSERT_EQUAL(tq_access_set_permissions(D, "u", "dev", ".*", ".*", ".*", NULL, 0), 0);
	CU_ASSERT_EQUAL(
		tq_access_set_topic_permissions(D, "u", "prod", "amq.topic", "", "", NULL, 0), 0);
	snap();
	CU_ASSERT(tq_access_vhost_ok(A, "u", "prod"));
	CU_ASSERT_EQUAL(tq_access_vhost_delete(D, "prod"), 0);
	CU_ASSERT_EQUAL(tq_access_vhost_delete(D, "prod"), -ENOENT);
	CU_ASSERT(!tq_access_vhost_exists(D, "prod"));
	CU_ASSERT_EQUAL(tq_access_perm_count(D), 1); /* u on dev stays */
	CU_ASSERT_EQUAL(tq_access_topic_perm_count(D), 0);
	CU_ASSERT(tq_access_vhost_ok(A, "u", "prod")); /* the old snapshot is unchanged */
	snap();
	CU_ASSERT(!tq_access_vhost_ok(A, "u", "prod"));
	CU_ASSERT(tq_access_vhost_ok(A, "u", "dev"));
	/* a vhost added again starts without permissions */
	CU_ASSERT_EQUAL(tq_access_vhost_add(D, "prod"), 0);
	snap();
	CU_ASSERT(!tq_access_vhost_ok(A, "u", "prod"));
	CU_ASSERT_EQUAL(tq_access_vhost_count(D), 4);
	teardown();
}

/* ---- permissions ------------------------------------------------------------------- */

static void
test_permissions(void)
{
	struct tq_access_perm p;

	setup();
	CU_ASSERT_EQUAL(tq_access_set_permissions(D, "u", "nope", ".*", ".*", ".*", NULL, 0),
			-ENOENT);
	CU_ASSERT_EQUAL(perms("u", "^c$", "^w$", "^r$"), 0);
	snap();
	CU_ASSERT(chk("u", TQ_PERM_CONFIGURE, "c"));
	CU_ASSERT(!chk("u", TQ_PERM_CONFIGURE, "w"));
	CU_ASSERT(chk("u", TQ_PERM_WRITE, "w"));
	CU_ASSERT(!chk("u", TQ_PERM_WRITE, "r"));
	CU_ASSERT(chk("u", TQ_PERM_READ, "r"));
	CU_ASSERT(!chk("u", TQ_PERM_READ, "c"));
	CU_ASSERT(!chk("other", TQ_PERM_READ, "r"));
	CU_ASSERT(!tq_access_check(A, "u", "nope", TQ_PERM_READ, "r", 1));

	/* replace: one entry, the new expressions */
	CU_ASSERT_EQUAL(perms("u", "", "^x$", ".*"), 0);
	CU_ASSERT_EQUAL(tq_access_perm_count(D), 1);
	CU_ASSERT_EQUAL(tq_access_perm_at(D, 0, &p), 0);
	CU_ASSERT_STRING_EQUAL(p.user, "u");
	CU_ASSERT_STRING_EQUAL(p.vhost, VH);
	CU_ASSERT_STRING_EQUAL(p.configure, "");
	CU_ASSERT_STRING_EQUAL(p.write, "^x$");
	CU_ASSERT_STRING_EQUAL(p.read, ".*");
	CU_ASSERT_EQUAL(tq_access_perm_at(D, 1, &p), -ENOENT);
	snap();
	CU_ASSERT(!chk("u", TQ_PERM_CONFIGURE, "c"));
	CU_ASSERT(!chk("u", TQ_PERM_WRITE, "w"));
	CU_ASSERT(chk("u", TQ_PERM_WRITE, "x"));
	CU_ASSERT(chk("u", TQ_PERM_READ, "anything"));

	/* clear */
	CU_ASSERT_EQUAL(tq_access_clear_permissions(D, "u", "nope"), -ENOENT);
	CU_ASSERT_EQUAL(tq_access_clear_permissions(D, "v", VH), -ENOENT);
	CU_ASSERT_EQUAL(tq_access_clear_permissions(D, "u", VH), 0);
	CU_ASSERT_EQUAL(tq_access_clear_permissions(D, "u", VH), -ENOENT);
	CU_ASSERT_EQUAL(tq_access_perm_count(D), 0);
	snap();
	CU_ASSERT(!chk("u", TQ_PERM_READ, "anything"));
	CU_ASSERT(!tq_access_vhost_ok(A, "u", VH));
	teardown();
}

/* A refused expression leaves what was there, and @err holds regerror's text for it. */
static void
test_bad_regex(void)
{
	char err[128], want[128];
	struct tq_access_perm p;
	regex_t re;
	int rc;

	rc = regcomp(&re, "a(b", REG_EXTENDED | REG_NOSUB);
	CU_ASSERT_NOT_EQUAL_FATAL(rc, 0);
	regerror(rc, &re, want, sizeof(want));

	setup();
	CU_ASSERT_EQUAL(perms("u", ".*", ".*", ".*"), 0);
	memset(err, 0, sizeof(err));
	CU_ASSERT_EQUAL(tq_access_set_permissions(D, "u", VH, ".*", "a(b", ".*", err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_STRING_EQUAL(err, want);
	CU_ASSERT_EQUAL(tq_access_set_permissions(D, "u", VH, "[z-a]", ".*", ".*", NULL, 0),
			-EINVAL);
	CU_ASSERT_EQUAL(tq_access_set_permissions(D, "u", VH, ".*", ".*", "*{", err, 4), -EINVAL);
	CU_ASSERT_EQUAL(strlen(err), 3); /* truncated to the buffer */
	CU_ASSERT_EQUAL(tq_access_perm_at(D, 0, &p), 0);
	CU_ASSERT_STRING_EQUAL(p.write, ".*");
	CU_ASSERT_EQUAL(tq_access_perm_count(D), 1);
	/* a new user with a bad expression is not added */
	CU_ASSERT_EQUAL(perms("v", "(", "", ""), -EINVAL);
	CU_ASSERT_EQUAL(tq_access_perm_count(D), 1);

	/* topic permissions: the same, and variables are valid only as variables */
	memset(err, 0, sizeof(err));
	CU_ASSERT_EQUAL(tq_access_set_topic_permissions(D, "u", VH, "amq.topic", "a(b", "", err,
							sizeof(err)),
			-EINVAL);
	CU_ASSERT_STRING_EQUAL(err, want);
	CU_ASSERT_EQUAL(tq_access_set_topic_permissions(D, "u", VH, "amq.topic", "^{username}(", "",
							NULL, 0),
			-EINVAL);
	CU_ASSERT_EQUAL(tq_access_set_topic_permissions(D, "u", VH, "amq.topic", "^{username}$",
							"{vhost}|{client_id}", NULL, 0),
			0);
	CU_ASSERT_EQUAL(
		tq_access_set_topic_permissions(D, "u", "nope", "amq.topic", "", "", NULL, 0),
		-ENOENT);
	CU_ASSERT_EQUAL(tq_access_topic_perm_count(D), 1);
	/* in plain permissions "{username}" is no variable, and not a valid ERE either */
	CU_ASSERT_EQUAL(perms("u", "^{username}$", "", ""), -EINVAL);
	regfree(&re);
	teardown();
}

/* RabbitMQ's expressions are searched in the name, not anchored. */
static void
test_search_semantics(void)
{
	setup();
	CU_ASSERT_EQUAL(perms("all", ".*", ".*", ".*"), 0);
	CU_ASSERT_EQUAL(perms("gen", "^amq\\.gen.*", "", "^(a|b)$"), 0);
	CU_ASSERT_EQUAL(perms("sub", "foo", "o+b", "x$"), 0);
	snap();
	CU_ASSERT(chk("all", TQ_PERM_CONFIGURE, "anything"));
	CU_ASSERT(chk("all", TQ_PERM_WRITE, "a\nb"));
	CU_ASSERT(tq_access_check(A, "all", VH, TQ_PERM_READ, "", 0));

	CU_ASSERT(chk("gen", TQ_PERM_CONFIGURE, "amq.gen-JzTY20BRgKO-HjmUJj0wLg"));
	CU_ASSERT(chk("gen", TQ_PERM_CONFIGURE, "amq.gen"));
	CU_ASSERT(!chk("gen", TQ_PERM_CONFIGURE, "amqXgen-1")); /* the dot is escaped */
	CU_ASSERT(!chk("gen", TQ_PERM_CONFIGURE, "x.amq.gen-1"));
	CU_ASSERT(!chk("gen", TQ_PERM_CONFIGURE, "amq.ge"));
	/* "" matches nothing, not even "" */
	CU_ASSERT(!chk("gen", TQ_PERM_WRITE, "x"));
	CU_ASSERT(!chk("gen", TQ_PERM_WRITE, "amq.default"));
	CU_ASSERT(!tq_access_check(A, "gen", VH, TQ_PERM_WRITE, "", 0));
	CU_ASSERT(chk("gen", TQ_PERM_READ, "a"));
	CU_ASSERT(chk("gen", TQ_PERM_READ, "b"));
	CU_ASSERT(!chk("gen", TQ_PERM_READ, "ab"));
	CU_ASSERT(!chk("gen", TQ_PERM_READ, "c"));
	CU_ASSERT(!chk("gen", TQ_PERM_READ, " a"));

	CU_ASSERT(chk("sub", TQ_PERM_CONFIGURE, "xfooy"));
	CU_ASSERT(!chk("sub", TQ_PERM_CONFIGURE, "fo"));
	CU_ASSERT(chk("sub", TQ_PERM_WRITE, "foobar"));
	CU_ASSERT(chk("sub", TQ_PERM_READ, "boxx"));
	CU_ASSERT(!chk("sub", TQ_PERM_READ, "xb"));

	/* the name is @len bytes: no terminator needed, none looked for */
	CU_ASSERT(tq_access_check(A, "gen", VH, TQ_PERM_READ, "ab", 1));
	CU_ASSERT(!tq_access_check(A, "gen", VH, TQ_PERM_READ, "ab", 2));
	CU_ASSERT(tq_access_check(A, "sub", VH, TQ_PERM_READ, "x\0y", 1));
	CU_ASSERT(!tq_access_check(A, "sub", VH, TQ_PERM_READ, "x\0y", 3)); /* x is not last */
	CU_ASSERT(!tq_access_check(A, "gen", VH, TQ_PERM_READ, "a\0", 2));
	/* bad arguments deny */
	CU_ASSERT(!tq_access_check(A, "all", VH, (enum tq_perm_op)3, "x", 1));
	CU_ASSERT(!tq_access_check(NULL, "all", VH, TQ_PERM_READ, "x", 1));
	CU_ASSERT(!tq_access_check(A, NULL, VH, TQ_PERM_READ, "x", 1));
	teardown();
}

static void
test_default_exchange(void)
{
	setup();
	CU_ASSERT_EQUAL(perms("d", "^x$", "^amq\\.default$", "^amq\\."), 0);
	CU_ASSERT_EQUAL(perms("n", "", "^$", "^orders$"), 0);
	snap();
	CU_ASSERT(tq_access_check(A, "d", VH, TQ_PERM_WRITE, "", 0));
	CU_ASSERT(tq_access_check(A, "d", VH, TQ_PERM_READ, "", 0));
	CU_ASSERT(!tq_access_check(A, "d", VH, TQ_PERM_CONFIGURE, "", 0));
	/* "^$" does not grant the default exchange: it is amq.default */
	CU_ASSERT(!tq_access_check(A, "n", VH, TQ_PERM_WRITE, "", 0));
	CU_ASSERT(!tq_access_check(A, "n", VH, TQ_PERM_READ, "", 0));
	CU_ASSERT(chk("n", TQ_PERM_READ, "orders"));
	teardown();
}

static void
test_vhost_ok(void)
{
	setup();
	CU_ASSERT_EQUAL(tq_access_vhost_add(D, "other"), 0);
	CU_ASSERT_EQUAL(perms("full", ".*", ".*", ".*"), 0);
	CU_ASSERT_EQUAL(perms("empty", "", "", ""), 0);
	snap();
	CU_ASSERT(tq_access_vhost_ok(A, "full", VH));
	CU_ASSERT(tq_access_vhost_ok(A, "empty", VH)); /* three empty expressions still open it */
	CU_ASSERT(!chk("empty", TQ_PERM_READ, "q"));
	CU_ASSERT(!tq_access_vhost_ok(A, "full", "other"));
	CU_ASSERT(!tq_access_vhost_ok(A, "full", "missing"));
	CU_ASSERT(!tq_access_vhost_ok(A, "nobody", VH));
	CU_ASSERT(!tq_access_vhost_ok(A, "ful", VH));
	CU_ASSERT(!tq_access_vhost_ok(A, "fully", VH));
	CU_ASSERT(!tq_access_vhost_ok(NULL, "full", VH));
	CU_ASSERT_EQUAL(tq_access_clear_permissions(D, "empty", VH), 0);
	snap();
	CU_ASSERT(!tq_access_vhost_ok(A, "empty", VH));
	CU_ASSERT(tq_access_vhost_ok(A, "full", VH));
	teardown();
}

/* ---- topic permissions ------------------------------------------------------------- */

static void
test_topic_perms(void)
{
	struct tq_access_topic_perm tp;
	char longname[700], key[1500];
	struct tq_access_who w;

	setup();
	CU_ASSERT_EQUAL(tq_access_vhost_add(D, "v.h"), 0);
	snap();
	/* none at all: everything allowed */
	CU_ASSERT(topic_ok("a.b", "c1", "amq.topic", TQ_PERM_WRITE, "whatever.key"));
	CU_ASSERT(topic_ok("a.b", "c1", "amq.topic", TQ_PERM_READ, ""));

	CU_ASSERT_EQUAL(tq_access_set_topic_permissions(D, "a.b", VH, "amq.topic", "^{username}\\.",
							"^{vhost}:{client_id}$", NULL, 0),
			0);
	CU_ASSERT_EQUAL(
		tq_access_set_topic_permissions(D, "a.b", VH, "logs", "^info\\.", "", NULL, 0), 0);
	CU_ASSERT_EQUAL(tq_access_set_topic_permissions(D, "a.b", "v.h", "amq.topic", "^{vhost}$",
							".*", NULL, 0),
			0);
	CU_ASSERT_EQUAL(tq_access_set_topic_permissions(D, "(x)", VH, "amq.topic", "^{username}$",
							"", NULL, 0),
			0);
	CU_ASSERT_EQUAL(tq_access_set_topic_permissions(D, "a|b{2}.*", VH, "amq.topic",
							"^{username}$", "", NULL, 0),
			0);
	CU_ASSERT_EQUAL(tq_access_set_topic_permissions(D, "^\\", VH, "amq.topic", "^{username}$",
							"", NULL, 0),
			0);
	snap();
	CU_ASSERT(topic_ok("a.b", "c1", "amq.topic", TQ_PERM_WRITE, "a.b.temp"));
	/* the '.' of the user name is escaped: it stands for itself only */
	CU_ASSERT(!topic_ok("a.b", "c1", "amq.topic", TQ_PERM_WRITE, "aXb.temp"));
	CU_ASSERT(!topic_ok("a.b", "c1", "amq.topic", TQ_PERM_WRITE, "other.temp"));
	CU_ASSERT(topic_ok("a.b", "c1", "amq.topic", TQ_PERM_READ, "/:c1"));
	CU_ASSERT(!topic_ok("a.b", "c2", "amq.topic", TQ_PERM_READ, "/:c1"));
	CU_ASSERT(!topic_ok("a.b", "c1", "amq.topic", TQ_PERM_CONFIGURE, "a.b.temp"));
	/* "" (AMQP) client id */
	CU_ASSERT(topic_ok("a.b", "", "amq.topic", TQ_PERM_READ, "/:"));
	/* per exchange, and no entry for an exchange: allowed */
	CU_ASSERT(topic_ok("a.b", "c1", "logs", TQ_PERM_WRITE, "info.x"));
	CU_ASSERT(!topic_ok("a.b", "c1", "logs", TQ_PERM_WRITE, "debug.x"));
	CU_ASSERT(!topic_ok("a.b", "c1", "logs", TQ_PERM_READ, "info.x")); /* "" */
	CU_ASSERT(topic_ok("a.b", "c1", "amq.other", TQ_PERM_WRITE, "zzz"));
	CU_ASSERT(topic_ok("someone", "c1", "amq.topic", TQ_PERM_WRITE, "zzz"));
	/* per vhost */
	w = (struct tq_access_who){.user = "a.b", .vhost = "v.h", .client_id = "c1"};
	CU_ASSERT(tq_access_topic_ok(A, &w, "amq.topic", TQ_PERM_WRITE, "v.h", 3));
	CU_ASSERT(!tq_access_topic_ok(A, &w, "amq.topic", TQ_PERM_WRITE, "vxh", 3));
	CU_ASSERT(tq_access_topic_ok(A, &w, "logs", TQ_PERM_WRITE, "debug", 5));
	/* metacharacters in the user name: literal */
	CU_ASSERT(topic_ok("(x)", "", "amq.topic", TQ_PERM_WRITE, "(x)"));
	CU_ASSERT(!topic_ok("(x)", "", "amq.topic", TQ_PERM_WRITE, "x"));
	CU_ASSERT(topic_ok("a|b{2}.*", "", "amq.topic", TQ_PERM_WRITE, "a|b{2}.*"));
	CU_ASSERT(!topic_ok("a|b{2}.*", "", "amq.topic", TQ_PERM_WRITE, "a"));
	CU_ASSERT(!topic_ok("a|b{2}.*", "", "amq.topic", TQ_PERM_WRITE, "bb"));
	CU_ASSERT(!topic_ok("a|b{2}.*", "", "amq.topic", TQ_PERM_WRITE, "a|bb.x"));
	CU_ASSERT(!topic_ok("^\\", "", "amq.topic", TQ_PERM_WRITE, "x"));
	CU_ASSERT(topic_ok("^\\", "", "amq.topic", TQ_PERM_WRITE, "^\\"));
	/* the key is @len bytes */
	w = who("a.b", "c1");
	CU_ASSERT(tq_access_topic_ok(A, &w, "amq.topic", TQ_PERM_READ, "/:c1xyz", 4));
	CU_ASSERT(!tq_access_topic_ok(A, &w, "amq.topic", TQ_PERM_READ, "/:c1xyz", 5));

	/* an expansion longer than the stack buffer */
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	longname[300] = '.';
	CU_ASSERT_EQUAL(tq_access_set_topic_permissions(D, longname, VH, "amq.topic",
							"^{username}/{username}$", "", NULL, 0),
			0);
	snap();
	snprintf(key, sizeof(key), "%s/%s", longname, longname);
	CU_ASSERT(topic_ok(longname, "", "amq.topic", TQ_PERM_WRITE, key));
	key[300] = 'X'; /* the escaped '.' */
	CU_ASSERT(!topic_ok(longname, "", "amq.topic", TQ_PERM_WRITE, key));
	w = who(longname, "");
	CU_ASSERT(
		!tq_access_topic_ok(A, &w, "amq.topic", TQ_PERM_WRITE, longname, strlen(longname)));

	/* enumeration, clear one exchange, clear all of (user, vhost) */
	CU_ASSERT_EQUAL(tq_access_topic_perm_count(D), 7);
	CU_ASSERT_EQUAL(tq_access_topic_perm_at(D, 0, &tp), 0);
	CU_ASSERT_STRING_EQUAL(tp.user, "(x)"); /* sorted by user, vhost, exchange */
	CU_ASSERT_EQUAL(tq_access_topic_perm_at(D, 1, &tp), 0);
	CU_ASSERT_STRING_EQUAL(tp.user, "^\\");
	CU_ASSERT_EQUAL(tq_access_topic_perm_at(D, 2, &tp), 0);
	CU_ASSERT_STRING_EQUAL(tp.user, "a.b");
	CU_ASSERT_STRING_EQUAL(tp.vhost, VH);
	CU_ASSERT_STRING_EQUAL(tp.exchange, "amq.topic");
	CU_ASSERT_STRING_EQUAL(tp.write, "^{username}\\.");
	CU_ASSERT_STRING_EQUAL(tp.read, "^{vhost}:{client_id}$");
	CU_ASSERT_EQUAL(tq_access_topic_perm_at(D, 7, &tp), -ENOENT);
	CU_ASSERT_EQUAL(tq_access_clear_topic_permissions(D, "a.b", VH, "logs"), 0);
	CU_ASSERT_EQUAL(tq_access_clear_topic_permissions(D, "a.b", VH, "logs"), -ENOENT);
	CU_ASSERT_EQUAL(tq_access_topic_perm_count(D), 6);
	snap();
	CU_ASSERT(topic_ok("a.b", "c1", "logs", TQ_PERM_READ, "info.x"));
	CU_ASSERT_EQUAL(tq_access_set_topic_permissions(D, "a.b", VH, "logs", "", "", NULL, 0), 0);
	CU_ASSERT_EQUAL(tq_access_clear_topic_permissions(D, "a.b", VH, NULL), 0);
	CU_ASSERT_EQUAL(tq_access_clear_topic_permissions(D, "a.b", VH, NULL), -ENOENT);
	CU_ASSERT_EQUAL(tq_access_topic_perm_count(D), 5); /* v.h's and the others stay */
	snap();
	CU_ASSERT(topic_ok("a.b", "c1", "amq.topic", TQ_PERM_WRITE, "zzz"));
	w = (struct tq_access_who){.user = "a.b", .vhost = "v.h", .client_id = "c1"};
	CU_ASSERT(!tq_access_topic_ok(A, &w, "amq.topic", TQ_PERM_WRITE, "zzz", 3));
	teardown();
}

/* ---- MQTT ACLs --------------------------------------------------------------------- */

static void
test_acl_off(void)
{
	setup();
	snap();
	CU_ASSERT(pub("u", "c", "any/topic"));
	CU_ASSERT(pub(NULL, "c", "$SYS/x"));
	CU_ASSERT(sub("u", "c", "#"));
	CU_ASSERT(sub("u", "c", "$SYS/#"));
	/* one rule turns them on */
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "v", "v/#", TQ_ACL_READWRITE), 0);
	snap();
	CU_ASSERT(!pub("u", "c", "any/topic"));
	CU_ASSERT(!sub("u", "c", "#"));
	CU_ASSERT(pub("v", "c", "v/1"));
	/* and clearing it turns them off again */
	CU_ASSERT_EQUAL(tq_access_clear_acl(D, "v", "v/#"), 0);
	snap();
	CU_ASSERT(pub("u", "c", "any/topic"));
	teardown();
}

static void
test_acl_rules(void)
{
	struct tq_access_acl r;

	setup();
	CU_ASSERT_EQUAL(tq_access_set_acl(D, NULL, "pub/#", TQ_ACL_READ), 0);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "", "inbox", TQ_ACL_WRITE), 0);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "alice", "alice/#", TQ_ACL_READWRITE), 0);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "bob", "bob/in", TQ_ACL_WRITE), 0);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "bob", "bob/out/+", TQ_ACL_READ), 0);
	snap();
	/* everyone's */
	CU_ASSERT(sub("carol", "c", "pub/news"));
	CU_ASSERT(sub("carol", "c", "pub/#"));
	CU_ASSERT(!pub("carol", "c", "pub/news"));
	CU_ASSERT(pub("carol", "c", "inbox"));
	CU_ASSERT(!sub("carol", "c", "inbox"));
	CU_ASSERT(!pub("carol", "c", "inbox/x"));
	CU_ASSERT(pub(NULL, "c", "inbox")); /* no user name: everyone's rules */
	CU_ASSERT(!pub(NULL, "c", "alice/x"));
	/* a user's own, plus everyone's */
	CU_ASSERT(pub("alice", "c", "alice/x/y"));
	CU_ASSERT(pub("alice", "c", "alice"));
	CU_ASSERT(sub("alice", "c", "alice/+/y"));
	CU_ASSERT(sub("alice", "c", "pub/x"));
	CU_ASSERT(!pub("alice", "c", "bob/in"));
	CU_ASSERT(!pub("alicex", "c", "alice/x"));
	CU_ASSERT(!pub("alic", "c", "alice/x"));
	CU_ASSERT(pub("bob", "c", "bob/in"));
	CU_ASSERT(!sub("bob", "c", "bob/in"));
	CU_ASSERT(sub("bob", "c", "bob/out/1"));
	CU_ASSERT(sub("bob", "c", "bob/out/+"));
	CU_ASSERT(!sub("bob", "c", "bob/out/#")); /* "bob/out" and deeper are not covered */
	CU_ASSERT(!sub("bob", "c", "bob/+/1"));
	CU_ASSERT(!pub("bob", "c", "bob/out/1"));
	/* invalid topics and filters are refused once ACLs are on */
	CU_ASSERT(!pub("alice", "c", "alice/+"));
	CU_ASSERT(!pub("alice", "c", ""));
	CU_ASSERT(!sub("alice", "c", "alice/#/x"));
	CU_ASSERT(!sub("alice", "c", "alice/x+"));

	/* replace keeps the rule's place; clear */
	CU_ASSERT_EQUAL(tq_access_set_acl(D, NULL, "pub/#", TQ_ACL_READWRITE), 0);
	CU_ASSERT_EQUAL(tq_access_acl_count(D), 5);
	CU_ASSERT_EQUAL(tq_access_acl_at(D, 0, &r), 0);
	CU_ASSERT_STRING_EQUAL(r.user, "");
	CU_ASSERT_STRING_EQUAL(r.pattern, "pub/#");
	CU_ASSERT_EQUAL(r.access, TQ_ACL_READWRITE);
	CU_ASSERT_EQUAL(tq_access_acl_at(D, 3, &r), 0);
	CU_ASSERT_STRING_EQUAL(r.user, "bob");
	CU_ASSERT_STRING_EQUAL(r.pattern, "bob/in");
	CU_ASSERT_EQUAL(tq_access_acl_at(D, 5, &r), -ENOENT);
	snap();
	CU_ASSERT(pub("carol", "c", "pub/news"));
	CU_ASSERT_EQUAL(tq_access_clear_acl(D, "carol", "pub/#"), -ENOENT);
	CU_ASSERT_EQUAL(tq_access_clear_acl(D, "", "inbox"), 0);
	CU_ASSERT_EQUAL(tq_access_clear_acl(D, NULL, "inbox"), -ENOENT);
	CU_ASSERT_EQUAL(tq_access_acl_count(D), 4);
	CU_ASSERT_EQUAL(tq_access_acl_at(D, 1, &r), 0);
	CU_ASSERT_STRING_EQUAL(r.user, "alice");
	snap();
	CU_ASSERT(!pub("carol", "c", "inbox"));

	/* invalid patterns and accesses */
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "u", "", TQ_ACL_READ), -EINVAL);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "u", "a/#/b", TQ_ACL_READ), -EINVAL);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "u", "a/b#", TQ_ACL_READ), -EINVAL);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "u", "a+/b", TQ_ACL_READ), -EINVAL);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "u", "#/", TQ_ACL_READ), -EINVAL);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "u", NULL, TQ_ACL_READ), -EINVAL);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "u", "a", (enum tq_acl_access)4), -EINVAL);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "u", "%u/+/dev-%c/#", TQ_ACL_READ), 0);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "u", "/", TQ_ACL_READ), 0);
	CU_ASSERT_EQUAL(tq_access_acl_count(D), 6);
	teardown();
}

static void
test_acl_subst(void)
{
	setup();
	CU_ASSERT_EQUAL(tq_access_set_acl(D, NULL, "users/%u/#", TQ_ACL_READWRITE), 0);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, NULL, "dev/dev-%c/%u", TQ_ACL_WRITE), 0);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "admin", "+/%c", TQ_ACL_READ), 0);
	snap();
	CU_ASSERT(pub("ann", "c1", "users/ann/x"));
	CU_ASSERT(pub("ann", "c1", "users/ann"));
	CU_ASSERT(sub("ann", "c1", "users/ann/#"));
	CU_ASSERT(!pub("ann", "c1", "users/bob/x"));
	CU_ASSERT(!pub("ann", "c1", "users/an/x"));
	CU_ASSERT(!pub("ann", "c1", "users/annx/x"));
	CU_ASSERT(!pub("ann", "c1", "users/%u/x")); /* the text "%u" is not ann */
	CU_ASSERT(!sub("ann", "c1", "users/+/x"));
	CU_ASSERT(pub("ann", "c1", "dev/dev-c1/ann"));
	CU_ASSERT(!pub("ann", "c2", "dev/dev-c1/ann"));
	CU_ASSERT(!pub("ann", "c1", "dev/dev-c1/bob"));
	CU_ASSERT(!pub("ann", "c1", "dev/c1/ann"));
	CU_ASSERT(pub("ann", "", "dev/dev-/ann")); /* empty client id */
	CU_ASSERT(sub("admin", "42", "x/42"));
	CU_ASSERT(sub("admin", "42", "+/42"));
	CU_ASSERT(!sub("admin", "42", "x/43"));
	/* a user name that would widen the pattern grants nothing */
	CU_ASSERT(!pub("a/b", "c1", "users/a/b/x"));
	CU_ASSERT(!pub("+", "c1", "users/x/y"));
	CU_ASSERT(!sub("+", "c1", "users/+/y"));
	CU_ASSERT(!sub("#", "c1", "users/#"));
	CU_ASSERT(!pub("a/b", "c1", "users/a"));
	CU_ASSERT(!pub("ann", "c/1", "dev/dev-c/1/ann"));
	CU_ASSERT(!sub("admin", "#", "x/#"));
	CU_ASSERT(pub("a/b", "c1", "dev/dev-c1/a/b") == false);
	/* no user name: rules with %u do not apply */
	CU_ASSERT(!pub(NULL, "c1", "users//x"));
	CU_ASSERT(!pub(NULL, "c1", "dev/dev-c1/"));
	/* a deny rule that would substitute such a value denies everything */
	CU_ASSERT_EQUAL(tq_access_set_acl(D, NULL, "pub/#", TQ_ACL_READWRITE), 0);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, NULL, "pub/%u/secret", TQ_ACL_DENY), 0);
	snap();
	CU_ASSERT(pub("ann", "c1", "pub/x"));
	CU_ASSERT(!pub("ann", "c1", "pub/ann/secret"));
	CU_ASSERT(pub("ann", "c1", "pub/bob/secret"));
	CU_ASSERT(!sub("ann", "c1", "pub/+/secret"));
	CU_ASSERT(sub("ann", "c1", "pub/+/public"));
	CU_ASSERT(!pub("a/b", "c1", "pub/x"));
	CU_ASSERT(!pub("a/b", "c1", "pub/a/b/secret"));
	CU_ASSERT(!sub("a+", "c1", "pub/x"));
	CU_ASSERT(pub(NULL, "c1", "pub/x")); /* the %u deny is not for anonymous clients */
	teardown();
}

static void
test_acl_deny(void)
{
	setup();
	CU_ASSERT_EQUAL(tq_access_set_acl(D, NULL, "#", TQ_ACL_READWRITE), 0);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "u", "secret/#", TQ_ACL_DENY), 0);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, NULL, "+/private/+", TQ_ACL_DENY), 0);
	/* a user's grant does not override a deny either */
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "u", "a/private/b", TQ_ACL_READWRITE), 0);
	snap();
	CU_ASSERT(pub("u", "c", "public/x"));
	CU_ASSERT(!pub("u", "c", "secret"));
	CU_ASSERT(!pub("u", "c", "secret/x/y"));
	CU_ASSERT(pub("v", "c", "secret/x"));
	CU_ASSERT(!pub("u", "c", "a/private/b"));
	CU_ASSERT(!pub("v", "c", "a/private/b"));
	CU_ASSERT(pub("v", "c", "a/private/b/c"));
	CU_ASSERT(pub("v", "c", "a/private"));
	/* subscribe: a filter that could receive anything denied is refused */
	CU_ASSERT(!sub("u", "c", "#"));
	CU_ASSERT(!sub("u", "c", "+")); /* "secret" */
	CU_ASSERT(!sub("u", "c", "secret/+"));
	CU_ASSERT(!sub("u", "c", "+/+/x"));
	CU_ASSERT(!sub("u", "c", "public/#")); /* "public/private/x" */
	CU_ASSERT(sub("u", "c", "public/+"));
	CU_ASSERT(sub("u", "c", "+/+/x/#") == false); /* "a/private/x" */
	CU_ASSERT(!sub("u", "c", "+/public/x/#"));    /* "secret/public/x" */
	CU_ASSERT(sub("u", "c", "x/public/#"));
	CU_ASSERT(!sub("v", "c", "#"));
	CU_ASSERT(!sub("v", "c", "secret/#")); /* "secret/private/x" */
	CU_ASSERT(sub("v", "c", "secret/+"));
	CU_ASSERT(!sub("v", "c", "x/+/y"));
	CU_ASSERT(sub("v", "c", "x/+/y/z"));
	teardown();
}

/* MQTT 4.7.2: '$' topics are out of reach of a first-level wildcard. */
static void
test_acl_dollar(void)
{
	setup();
	CU_ASSERT_EQUAL(tq_access_set_acl(D, NULL, "#", TQ_ACL_READWRITE), 0);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "mon", "$SYS/#", TQ_ACL_READ), 0);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "mon", "+/broker/#", TQ_ACL_DENY), 0);
	snap();
	CU_ASSERT(!pub("u", "c", "$SYS/x"));
	CU_ASSERT(!sub("u", "c", "$SYS/#"));
	CU_ASSERT(!sub("u", "c", "$SYS/+"));
	CU_ASSERT(sub("u", "c", "#"));
	CU_ASSERT(sub("mon", "c", "$SYS/clients/+"));
	CU_ASSERT(sub("mon", "c", "$SYS/#"));
	/* the deny's '+' cannot be "$SYS" */
	CU_ASSERT(sub("mon", "c", "$SYS/broker/load"));
	CU_ASSERT(!sub("mon", "c", "x/broker/load"));
	CU_ASSERT(!pub("mon", "c", "$SYS/x"));
	/* beyond the first level '$' is an ordinary character */
	CU_ASSERT(pub("u", "c", "a/$b"));
	CU_ASSERT(sub("u", "c", "a/$b/+"));
	CU_ASSERT_EQUAL(tq_access_set_acl(D, NULL, "#", TQ_ACL_DENY), 0);
	CU_ASSERT_EQUAL(tq_access_clear_acl(D, "mon", "+/broker/#"), 0);
	snap();
	CU_ASSERT(sub("mon", "c", "$SYS/#")); /* "#" denies no '$' topic */
	CU_ASSERT(!sub("u", "c", "a/b"));
	teardown();
}

/* ---- the filter algebra against a brute-force reference -------------------------------- */

#define MAXLV 4

struct lv {
	int n;
	const char *l[MAXLV];
};

static const char *const topic_alpha[] = {"a", "b", "", "z", "$x"};
static const char *const filter_alpha[] = {"a", "b", "", "+", "$x", "#"};
#define NT_ALPHA (sizeof(topic_alpha) / sizeof(topic_alpha[0]))
#define NF_ALPHA (sizeof(filter_alpha) / sizeof(filter_alpha[0]))

static struct lv topics[5 + 25 + 125 + 625];
static size_t ntopics;
static struct lv filters[6 + 30 + 150];
static size_t nfilters;

static void
join(const struct lv *v, char *out, size_t cap)
{
	size_t n = 0;

	out[0] = '\0';
	for (int i = 0; i < v->n; i++)
		n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? "/" : "", v->l[i]);
}

/* The spec, level by level: '+' one level, '#' this level and every deeper one (or none). */
static bool
ref_match(const struct lv *f, const struct lv *t)
{
	if (f->l[0][0] == '+' || f->l[0][0] == '#')
		if (t->l[0][0] == '$')
			return false;
	for (int i = 0; i < f->n; i++) {
		if (!strcmp(f->l[i], "#"))
			return true;
		if (i >= t->n)
			return false;
		if (strcmp(f->l[i], "+") && strcmp(f->l[i], t->l[i]))
			return false;
	}
	return f->n == t->n;
}

static void
universe(void)
{
	ntopics = nfilters = 0;
	for (int n = 1; n <= MAXLV; n++) {
		size_t total = 1;

		for (int i = 0; i < n; i++)
			total *= NT_ALPHA;
		for (size_t k = 0; k < total; k++) {
			struct lv v = {.n = n};
			size_t x = k;

			for (int i = 0; i < n; i++, x /= NT_ALPHA)
				v.l[i] = topic_alpha[x % NT_ALPHA];
			if (n == 1 && !*v.l[0])
				continue; /* "" is no topic */
			topics[ntopics++] = v;
		}
	}
	for (int n = 1; n <= MAXLV - 1; n++) {
		size_t total = NF_ALPHA;

		for (int i = 1; i < n; i++)
			total *= NF_ALPHA - 1;
		for (size_t k = 0; k < total; k++) {
			struct lv v = {.n = n};
			size_t x = k;

			/* '#' (the last letter) only in the last level */
			for (int i = n - 1; i >= 0; i--) {
				size_t base = i == n - 1 ? NF_ALPHA : NF_ALPHA - 1;

				v.l[i] = filter_alpha[x % base];
				x /= base;
			}
			if (n == 1 && !*v.l[0])
				continue;
			filters[nfilters++] = v;
		}
	}
}

static void
test_filter_bruteforce(void)
{
	static uint8_t m[sizeof(filters) / sizeof(filters[0])][sizeof(topics) / sizeof(topics[0])];
	char ps[64], fs[64], ts[64];
	size_t bad_match = 0, bad_cov = 0, bad_int = 0, ncov = 0, nint = 0;

	universe();
	CU_ASSERT_EQUAL_FATAL(ntopics, 779);
	CU_ASSERT_EQUAL_FATAL(nfilters, 185);
	for (size_t i = 0; i < nfilters; i++) {
		join(&filters[i], fs, sizeof(fs));
		CU_ASSERT(tq_access_filter_valid(fs, strlen(fs)));
		for (size_t k = 0; k < ntopics; k++) {
			m[i][k] = ref_match(&filters[i], &topics[k]);
			join(&topics[k], ts, sizeof(ts));
			if (tq_access_topic_matches(fs, strlen(fs), ts, strlen(ts)) != m[i][k])
				bad_match++;
		}
	}
	for (size_t p = 0; p < nfilters; p++) {
		join(&filters[p], ps, sizeof(ps));
		for (size_t f = 0; f < nfilters; f++) {
			bool cov = true, in = false;

			for (size_t k = 0; k < ntopics; k++) {
				if (m[f][k] && !m[p][k])
					cov = false;
				if (m[f][k] && m[p][k])
					in = true;
			}
			join(&filters[f], fs, sizeof(fs));
			if (covers(ps, fs) != cov) {
				if (bad_cov++ < 5)
					printf("\ncovers(%s, %s) should be %d", ps, fs, cov);
			}
			if (intersects(ps, fs) != in) {
				if (bad_int++ < 5)
					printf("\nintersects(%s, %s) should be %d", ps, fs, in);
			}
			ncov += cov;
			nint += in;
		}
	}
	CU_ASSERT_EQUAL(bad_match, 0);
	CU_ASSERT_EQUAL(bad_cov, 0);
	CU_ASSERT_EQUAL(bad_int, 0);
	/* the universe is not degenerate: both answers occur often */
	CU_ASSERT(ncov > 1000 && ncov < nfilters * nfilters / 2);    /* 1675 */
	CU_ASSERT(nint > 3000 && nint < nfilters * nfilters - 3000); /* 4961 */
}

/*
 * The same reference through the ACL API: a read rule P grants subscribing to F iff P
 * covers F; with everything granted, a deny rule P refuses F iff they intersect, and
 * refuses publishing to T iff P matches T. A sample of patterns keeps the builds few.
 */
static void
test_acl_bruteforce(void)
{
	char ps[64], fs[64], ts[64];
	size_t bad = 0;

	universe();
	for (size_t p = 0; p < nfilters; p += 3) {
		join(&filters[p], ps, sizeof(ps));
		setup();
		CU_ASSERT_EQUAL(tq_access_set_acl(D, "u", ps, TQ_ACL_READ), 0);
		snap();
		for (size_t f = 0; f < nfilters; f++) {
			join(&filters[f], fs, sizeof(fs));
			if (sub("u", "c", fs) != covers(ps, fs))
				bad++;
		}
		teardown();

		setup();
		CU_ASSERT_EQUAL(tq_access_set_acl(D, NULL, "#", TQ_ACL_READWRITE), 0);
		CU_ASSERT_EQUAL(tq_access_set_acl(D, NULL, "$x/#", TQ_ACL_READWRITE), 0);
		CU_ASSERT_EQUAL(tq_access_set_acl(D, "u", ps, TQ_ACL_DENY), 0);
		snap();
		for (size_t f = 0; f < nfilters; f++) {
			join(&filters[f], fs, sizeof(fs));
			if (sub("u", "c", fs) == intersects(ps, fs))
				bad++;
			if (!sub("v", "c", fs)) /* the deny is u's only */
				bad++;
		}
		for (size_t k = 0; k < ntopics; k++) {
			join(&topics[k], ts, sizeof(ts));
			if (pub("u", "c", ts) == ref_match(&filters[p], &topics[k]))
				bad++;
		}
		teardown();
	}
	CU_ASSERT_EQUAL(bad, 0);
}

/* The header's examples and a few more, readable. */
static void
test_filter_examples(void)
{
	CU_ASSERT(covers("a/#", "a/b/+"));
	CU_ASSERT(!covers("a/+", "a/#"));
	CU_ASSERT(covers("a/#", "a/#"));
	CU_ASSERT(covers("a/#", "a"));
	CU_ASSERT(!covers("a/+", "a"));
	CU_ASSERT(covers("+/+", "a/+"));
	CU_ASSERT(!covers("a/+", "+/+"));
	CU_ASSERT(covers("#", "+/#"));
	CU_ASSERT(!covers("#", "$SYS/#"));
	CU_ASSERT(covers("$SYS/#", "$SYS/a/+"));
	CU_ASSERT(!covers("+/#", "$SYS/a"));
	CU_ASSERT(intersects("a/+", "+/b"));
	CU_ASSERT(intersects("a/#", "a"));
	CU_ASSERT(!intersects("a/+", "a"));
	CU_ASSERT(!intersects("a/b", "a/c"));
	CU_ASSERT(!intersects("#", "$SYS/#"));
	CU_ASSERT(!intersects("+/x", "$SYS/x"));
	CU_ASSERT(intersects("#", "+"));
	CU_ASSERT(intersects("$SYS/+", "$SYS/#"));
	CU_ASSERT(tq_access_topic_matches("sport/#", 7, "sport", 5));
	CU_ASSERT(tq_access_topic_matches("+/+", 3, "/finance", 8));
	CU_ASSERT(!tq_access_topic_matches("+", 1, "/finance", 8));
	CU_ASSERT(!tq_access_topic_matches("#", 1, "$SYS", 4));
	/* invalid arguments */
	CU_ASSERT(!covers("a/#/b", "a"));
	CU_ASSERT(!intersects("a", "a+"));
	CU_ASSERT(!tq_access_topic_matches("a/+", 3, "a/+", 3));
	CU_ASSERT(!tq_access_filter_valid("", 0));
	CU_ASSERT(!tq_access_filter_valid("a/#/", 4));
	CU_ASSERT(tq_access_filter_valid("/", 1));
	CU_ASSERT(tq_access_filter_valid("+/+/#", 5));
}

/* ---- forget_user, export, snapshots --------------------------------------------------- */

static void
test_forget_user(void)
{
	struct tq_access_acl r;
	struct tq_access_perm p;

	setup();
	CU_ASSERT_EQUAL(tq_access_vhost_add(D, "v2"), 0);
	CU_ASSERT_EQUAL(perms("gone", ".*", ".*", ".*"), 0);
	CU_ASSERT_EQUAL(tq_access_set_permissions(D, "gone", "v2", ".*", "", "", NULL, 0), 0);
	CU_ASSERT_EQUAL(perms("gon", ".*", ".*", ".*"), 0);
	CU_ASSERT_EQUAL(perms("gonex", ".*", ".*", ".*"), 0);
	CU_ASSERT_EQUAL(tq_access_set_topic_permissions(D, "gone", VH, "t", "", "", NULL, 0), 0);
	CU_ASSERT_EQUAL(tq_access_set_topic_permissions(D, "stay", VH, "t", "", "", NULL, 0), 0);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "gone", "g/#", TQ_ACL_READ), 0);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, NULL, "all/#", TQ_ACL_READ), 0);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "gone", "h/#", TQ_ACL_READ), 0);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "stay", "s/#", TQ_ACL_READ), 0);
	snap();
	CU_ASSERT(sub("gone", "c", "g/1"));

	tq_access_forget_user(D, "gone");
	tq_access_forget_user(D, "nobody");
	tq_access_forget_user(D, ""); /* not everyone's rules */
	CU_ASSERT_EQUAL(tq_access_perm_count(D), 2);
	CU_ASSERT_EQUAL(tq_access_perm_at(D, 0, &p), 0);
	CU_ASSERT_STRING_EQUAL(p.user, "gon");
	CU_ASSERT_EQUAL(tq_access_perm_at(D, 1, &p), 0);
	CU_ASSERT_STRING_EQUAL(p.user, "gonex");
	CU_ASSERT_EQUAL(tq_access_topic_perm_count(D), 1);
	CU_ASSERT_EQUAL_FATAL(tq_access_acl_count(D), 2);
	CU_ASSERT_EQUAL(tq_access_acl_at(D, 0, &r), 0);
	CU_ASSERT_STRING_EQUAL(r.pattern, "all/#");
	CU_ASSERT_EQUAL(tq_access_acl_at(D, 1, &r), 0);
	CU_ASSERT_STRING_EQUAL(r.pattern, "s/#");
	snap();
	CU_ASSERT(!tq_access_vhost_ok(A, "gone", VH));
	CU_ASSERT(!tq_access_vhost_ok(A, "gone", "v2"));
	CU_ASSERT(tq_access_vhost_ok(A, "gon", VH));
	CU_ASSERT(!sub("gone", "c", "g/1"));
	CU_ASSERT(sub("gone", "c", "all/1"));
	CU_ASSERT(sub("stay", "c", "s/1"));
	teardown();
}

/* A snapshot is a copy: later changes to the db (or freeing it) do not reach it. */
static void
test_snapshot(void)
{
	struct tq_access *a1, *a2;

	setup();
	CU_ASSERT_EQUAL(perms("u", ".*", "^w$", ""), 0);
	CU_ASSERT_EQUAL(tq_access_set_acl(D, "u", "x/#", TQ_ACL_WRITE), 0);
	a1 = tq_access_build(D, 41);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a1);
	CU_ASSERT_EQUAL(perms("u", "", "", ""), 0);
	CU_ASSERT_EQUAL(tq_access_clear_acl(D, "u", "x/#"), 0);
	a2 = tq_access_build(D, 42);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a2);
	tq_access_db_free(D);
	D = NULL;
	CU_ASSERT_EQUAL(tq_access_gen(a1), 41);
	CU_ASSERT_EQUAL(tq_access_gen(a2), 42);
	CU_ASSERT(tq_access_check(a1, "u", VH, TQ_PERM_WRITE, "w", 1));
	CU_ASSERT(!tq_access_check(a2, "u", VH, TQ_PERM_WRITE, "w", 1));
	{
		const struct tq_access_who w = who("u", "c");

		CU_ASSERT(tq_access_acl_publish(a1, &w, "x/1", 3));
		CU_ASSERT(!tq_access_acl_publish(a1, &w, "y/1", 3));
		CU_ASSERT(tq_access_acl_publish(a2, &w, "y/1", 3)); /* no rule left: off */
		CU_ASSERT(!tq_access_acl_publish(NULL, &w, "y/1", 3));
	}
	tq_access_free(a1);
	tq_access_free(a2);
	tq_access_free(NULL);
	CU_ASSERT_PTR_NULL(tq_access_build(NULL, 1));
	CU_ASSERT_EQUAL(errno, EINVAL);
	teardown();
}

/* Many users, vhosts and rules: every lookup finds its own entry and nobody else's. */
static void
test_many(void)
{
	enum { N = 3000 };
	char u[32], x[48], v[48];
	size_t bad = 0;

	setup();
	CU_ASSERT_EQUAL(tq_access_vhost_add(D, "v1"), 0);
	/* inserted in an order unlike the sorted one */
	for (int k = 0; k < N; k++) {
		int i = (k * 7919) % N;

		snprintf(u, sizeof(u), "user%d", i);
		snprintf(x, sizeof(x), "^q%d$", i);
		if (perms(u, x, i % 2 ? ".*" : "", ".*") ||
		    tq_access_set_permissions(D, u, "v1", "", "", "", NULL, 0) ||
		    tq_access_set_topic_permissions(D, u, VH, "amq.topic", "^{username}\\.", "",
						    NULL, 0))
			bad++;
		snprintf(x, sizeof(x), "home/%d/#", i);
		if (tq_access_set_acl(D, u, x, TQ_ACL_READWRITE))
			bad++;
	}
	CU_ASSERT_EQUAL_FATAL(bad, 0);
	CU_ASSERT_EQUAL(tq_access_perm_count(D), 2 * N);
	snap();
	for (int i = 0; i < N; i++) {
		snprintf(u, sizeof(u), "user%d", i);
		snprintf(x, sizeof(x), "q%d", i);
		snprintf(v, sizeof(v), "q%d", (i + 1) % N);
		bad += !chk(u, TQ_PERM_CONFIGURE, x);
		bad += chk(u, TQ_PERM_CONFIGURE, v);
		bad += chk(u, TQ_PERM_WRITE, x) != (i % 2 == 1);
		bad += !tq_access_vhost_ok(A, u, "v1");
		bad += tq_access_check(A, u, "v1", TQ_PERM_READ, x, strlen(x));
		snprintf(x, sizeof(x), "%s.k", u);
		bad += !topic_ok(u, "", "amq.topic", TQ_PERM_WRITE, x);
		snprintf(x, sizeof(x), "home/%d/a", i);
		snprintf(v, sizeof(v), "home/%d/a", (i + 1) % N);
		bad += !pub(u, "c", x);
		bad += pub(u, "c", v);
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(!tq_access_vhost_ok(A, "user", VH));
	CU_ASSERT(!tq_access_vhost_ok(A, "user30000", VH));
	teardown();
}

/* ---- publishing under QSBR ------------------------------------------------------------- */

static int race_stop;

struct race_reader {
	unsigned long checks, bad, nulls;
};

/*
 * A worker: reads tq_access_cur and checks against it, announcing a quiescent state
 * between checks. Snapshot g lets user u configure "q<g>" and publish to "gen/<g>", and
 * nothing else; generations never go back.
 */
static void *
race_read(void *arg)
{
	struct race_reader *r = arg;
	const struct tq_access_who w = who("u", "c");
	uint64_t last = 0;
	char q[32], t[32];

	urcu_qsbr_register_thread();
	while (!__atomic_load_n(&race_stop, __ATOMIC_ACQUIRE)) {
		const struct tq_access *a = rcu_dereference(tq_access_cur);
		uint64_t g;

		if (!a) {
			r->nulls++;
			urcu_qsbr_quiescent_state();
			continue;
		}
		g = tq_access_gen(a);
		if (g < last)
			r->bad++;
		last = g;
		snprintf(q, sizeof(q), "q%llu", (unsigned long long)g);
		if (!tq_access_check(a, "u", VH, TQ_PERM_CONFIGURE, q, strlen(q)))
			r->bad++;
		snprintf(q, sizeof(q), "q%llu", (unsigned long long)g + 1);
		if (tq_access_check(a, "u", VH, TQ_PERM_CONFIGURE, q, strlen(q)))
			r->bad++;
		snprintf(t, sizeof(t), "gen/%llu", (unsigned long long)g);
		if (!tq_access_acl_publish(a, &w, t, strlen(t)))
			r->bad++;
		if (!tq_access_vhost_ok(a, "u", VH))
			r->bad++;
		__atomic_add_fetch(&r->checks, 1, __ATOMIC_RELAXED);
		urcu_qsbr_quiescent_state();
	}
	urcu_qsbr_unregister_thread();
	return NULL;
}

static void
test_publish_concurrent(void)
{
	struct race_reader rd = {0};
	char x[32], acl[32];
	pthread_t th;
	int spins = 0;

	setup();
	CU_ASSERT_PTR_NULL(tq_access_cur);
	__atomic_store_n(&race_stop, 0, __ATOMIC_RELEASE);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, race_read, &rd), 0);
	for (unsigned int g = 1; g <= 300; g++) {
		struct tq_access *a;

		snprintf(x, sizeof(x), "^q%u$", g);
		CU_ASSERT_EQUAL(perms("u", x, "", ""), 0);
		snprintf(acl, sizeof(acl), "gen/%u", g - 1);
		tq_access_clear_acl(D, "u", acl);
		snprintf(acl, sizeof(acl), "gen/%u", g);
		CU_ASSERT_EQUAL(tq_access_set_acl(D, "u", acl, TQ_ACL_WRITE), 0);
		a = tq_access_build(D, g);
		CU_ASSERT_PTR_NOT_NULL_FATAL(a);
		tq_access_publish(a); /* frees g - 1 once the reader has moved on */
		CU_ASSERT_PTR_EQUAL(tq_access_cur, a);
	}
	/* let the reader check the last one too */
	while (__atomic_load_n(&rd.checks, __ATOMIC_RELAXED) < 1000 && spins++ < 5000)
		usleep(1000);
	__atomic_store_n(&race_stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	CU_ASSERT(rd.checks >= 1000);
	CU_ASSERT_EQUAL(rd.bad, 0);
	tq_access_publish(NULL); /* frees the last one */
	CU_ASSERT_PTR_NULL(tq_access_cur);
	teardown();
}

int
main(void)
{
	static const struct tq_test_case tests[] = {
		TQ_TEST(test_vhosts),
		TQ_TEST(test_permissions),
		TQ_TEST(test_bad_regex),
		TQ_TEST(test_search_semantics),
		TQ_TEST(test_default_exchange),
		TQ_TEST(test_vhost_ok),
		TQ_TEST(test_topic_perms),
		TQ_TEST(test_acl_off),
		TQ_TEST(test_acl_rules),
		TQ_TEST(test_acl_subst),
		TQ_TEST(test_acl_deny),
		TQ_TEST(test_acl_dollar),
		TQ_TEST(test_filter_examples),
		TQ_TEST(test_filter_bruteforce),
		TQ_TEST(test_acl_bruteforce),
		TQ_TEST(test_forget_user),
		TQ_TEST(test_snapshot),
		TQ_TEST(test_many),
		TQ_TEST(test_publish_concurrent),
	};

	if (CU_initialize_registry() != CUE_SUCCESS || TQ_SUITE("access", tests) != CUE_SUCCESS)
		return EXIT_FAILURE;
	return tq_test_run();
}
