#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/tq_cplane.h"
#include "control/tq_defs.h"
#include "control/tq_scram.h"
#include "dataplane/tq_ctl.h"
#include "dataplane/tq_prio.h"
#include "proto/amqp/tq_amqp_admin.h"

#define SCRAM_MAX 1024         /* exchanges in progress */
#define SCRAM_TTL_MS 30000     /* an exchange left half-way is forgotten after this */
#define HELD_MAX 65536         /* answers held back by the rate limit */

struct scram_slot {
	uint64_t id;               /* 0 = free */
	uint64_t born_ms;
	struct tq_scram st;
};

/* An answer waiting: for its rate-limit delay, or for room on its worker's ring. */
struct held {
	struct held *next;
	uint64_t due_ms;
	struct tq_ctl_req *req;
};

struct call {
	tq_cplane_fn fn;
	void *arg;
	char *out;
	size_t cap;
	int rc;
	bool done;
};

static struct {
	bool running;
	struct tq_cplane_conf conf;
	struct tq_users *users;
	struct tq_access_db *access;
	struct tq_policy_db *policies;
	uint64_t gen;
	char default_user[TQ_USER_NAME_MAX + 1]; /* ours, until an operator adds users */
	char *default_secret;                    /* its secret when we made it (malloc'd) */
	struct scram_slot *scram;
	uint64_t scram_next;
	struct held *held;
	uint32_t nheld;
	/* tq_cplane_call: one command at a time */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_mutex_t callers; /* serialises callers */
	struct call *pending;
} cp = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.callers = PTHREAD_MUTEX_INITIALIZER,
};

void
tq_cplane_conf_defaults(struct tq_cplane_conf *c)
{
	memset(c, 0, sizeof(*c));
	tq_users_conf_defaults(&c->users);
	c->ring_size = 4096;
}

uint64_t
tq_cplane_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct tq_users *
tq_cplane_users(void)
{
	return cp.users;
}

struct tq_access_db *
tq_cplane_access(void)
{
	return cp.access;
}

struct tq_policy_db *
tq_cplane_policies(void)
{
	return cp.policies;
}

int
tq_cplane_changed(void)
{
	struct tq_access *a;
	struct tq_policies *p;

	cp.gen++;
	a = tq_access_build(cp.access, cp.gen);
	p = tq_policies_build(cp.policies, cp.gen);
	if (!a || !p) {
		tq_access_free(a);
		tq_policies_free(p);
		return -ENOMEM;
	}
	tq_access_publish(a);
	tq_policies_publish(p);
	tq_amqp_policies_changed();
	return 0;
}

/*
 * The default user is ours only while it is the one we made: same name, same secret. An
 * operator who deleted it and added a user of that name, or changed its password, made it
 * theirs, and it stays.
 */
void
tq_cplane_operator_users(void)
{
	const struct tq_user *u;

	if (!cp.default_user[0])
		return;
	u = tq_users_get(cp.users, cp.default_user, strlen(cp.default_user));
	if (u && cp.default_secret && strcmp(u->secret, cp.default_secret) == 0) {
		tq_users_delete(cp.users, cp.default_user);
		tq_access_forget_user(cp.access, cp.default_user);
		printf("tachyond: default user '%s' removed: the operator defined users\n",
		       cp.default_user);
		fflush(stdout);
	}
	cp.default_user[0] = '\0';
	free(cp.default_secret);
	cp.default_secret = NULL;
}

int
tq_cplane_vhost_add(const char *name)
{
	int rc = tq_access_vhost_add(cp.access, name);

	if (rc < 0)
		return rc;
	rc = tq_amqp_vhost_add(name);
	if (rc < 0 && rc != -EEXIST && rc != -ENODEV) { /* -ENODEV: no AMQP on this router */
		tq_access_vhost_delete(cp.access, name);
		return rc;
	}
	return 0;
}

int
tq_cplane_vhost_delete(const char *name)
{
	int rc;

	if (!tq_access_vhost_exists(cp.access, name))
		return -ENOENT;
	rc = tq_amqp_vhost_delete(name);
	if (rc < 0 && rc != -ENOENT && rc != -ENODEV)
		return rc; /* in use */
	tq_policy_forget_vhost(cp.policies, name);
	return tq_access_vhost_delete(cp.access, name);
}

static int
add_default_user(const char *user, const char *pass)
{
	int rc;

	if (!user[0])
		return 0;
	rc = tq_users_add(cp.users, user, pass, strlen(pass), "administrator");
	if (rc < 0)
		return rc;
	rc = tq_access_set_permissions(cp.access, user, "/", ".*", ".*", ".*", NULL, 0);
	if (rc < 0)
		return rc;
	snprintf(cp.default_user, sizeof(cp.default_user), "%s", user);
	cp.default_secret = strdup(tq_users_get(cp.users, user, strlen(user))->secret);
	return cp.default_secret ? 0 : -ENOMEM;
}

int
tq_cplane_start(const struct tq_cplane_conf *conf, const char *default_user,
		const char *default_pass, char *err, size_t errlen)
{
	int rc = -ENOMEM;

	cp.conf = *conf;
	cp.users = tq_users_new(&conf->users);
	cp.access = tq_access_db_new();
	cp.policies = tq_policy_db_new();
	cp.scram = calloc(SCRAM_MAX, sizeof(*cp.scram));
	if (!cp.users || !cp.access || !cp.policies || !cp.scram) {
		snprintf(err, errlen, "control plane: out of memory");
		goto fail;
	}
	rc = tq_access_vhost_add(cp.access, "/");
	if (rc < 0)
		goto fail;
	if (conf->definitions[0]) {
		rc = tq_defs_import_file(conf->definitions, err, errlen);
		if (rc < 0)
			goto fail;
	} else if ((rc = add_default_user(default_user, default_pass)) < 0) {
		snprintf(err, errlen, "default user '%s': %s", default_user, strerror(-rc));
		goto fail;
	}
	rc = tq_ctl_init(conf->ring_size);
	if (rc < 0) {
		snprintf(err, errlen, "control ring: %s", strerror(-rc));
		goto fail;
	}
	cp.running = true;
	rc = tq_cplane_changed();
	if (rc < 0) {
		snprintf(err, errlen, "control plane: %s", strerror(-rc));
		goto fail;
	}
	return 0;
fail:
	tq_cplane_stop();
	return rc < 0 ? rc : -EINVAL;
}

static struct scram_slot *
scram_find(uint64_t id)
{
	for (unsigned int i = 0; i < SCRAM_MAX; i++)
		if (cp.scram[i].id == id && id)
			return &cp.scram[i];
	return NULL;
}

static struct scram_slot *
scram_new(uint64_t now)
{
	struct scram_slot *oldest = NULL;

	for (unsigned int i = 0; i < SCRAM_MAX; i++) {
		struct scram_slot *s = &cp.scram[i];

		if (!s->id || now - s->born_ms > SCRAM_TTL_MS) {
			oldest = s;
			break;
		}
		if (!oldest || s->born_ms < oldest->born_ms)
			oldest = s;
	}
	memset(oldest, 0, sizeof(*oldest));
	oldest->id = ++cp.scram_next;
	oldest->born_ms = now;
	return oldest;
}

/* Keep @r until @due (its worker's ring may also be full: then retried every pass). */
static void
hold(struct tq_ctl_req *r, uint64_t due)
{
	struct held *h;

	if (cp.nheld >= HELD_MAX || !(h = malloc(sizeof(*h)))) {
		free(r); /* the connection times out on its own; nothing better to do */
		return;
	}
	h->req = r;
	h->due_ms = due;
	h->next = cp.held;
	cp.held = h;
	cp.nheld++;
}

static void
answer(struct tq_ctl_req *r, uint64_t now, uint32_t delay_ms)
{
	int rc;

	if (delay_ms) {
		hold(r, now + delay_ms);
		return;
	}
	rc = tq_ctl_answer(r);
	if (rc == -ENOBUFS)
		hold(r, now);
	else if (rc < 0)
		free(r);
}

/* The data-plane class of @user: a policy that applies to users, key priority-class. */
static uint8_t
user_prio(const char *user, size_t len)
{
	const struct tq_policy_def *d;

	if (!tq_policies_cur)
		return TQ_PRIO_NORMAL;
	d = tq_policies_match(tq_policies_cur, "/", TQ_POLICY_USERS, user, len, NULL);
	if (!d || !(d->set & TQ_POL_PRIORITY_CLASS))
		return TQ_PRIO_NORMAL;
	return d->priority_class == TQ_CLASS_CRITICAL ? TQ_PRIO_CRITICAL
	       : d->priority_class == TQ_CLASS_BULK   ? TQ_PRIO_BULK
							: TQ_PRIO_NORMAL;
}

static void
handle(struct tq_ctl_req *r, uint64_t now)
{
	char src[INET_ADDRSTRLEN] = "";
	uint32_t delay = 0;
	struct scram_slot *s;
	size_t out_len = 0;

	if (r->src_ip)
		inet_ntop(AF_INET, &r->src_ip, src, sizeof(src));
	switch (r->kind) {
	case TQ_CTL_LOGIN:
		r->result = tq_users_login(cp.users, r->user, r->user_len, (const char *)r->data,
					   r->data_len, src, now, &delay);
		break;
	case TQ_CTL_SCRAM_FIRST:
		s = scram_new(now);
		r->scram_id = s->id;
		r->result = tq_scram_server_first(&s->st, cp.users, r->data, r->data_len,
						  (char *)r->out, sizeof(r->out), &out_len);
		r->out_len = (uint16_t)out_len;
		if (r->result == 0) {
			r->result = 1; /* continue */
			r->user_len = (uint16_t)snprintf(r->user, sizeof(r->user), "%s",
							 s->st.user);
		} else {
			s->id = 0;
		}
		break;
	case TQ_CTL_SCRAM_FINAL:
		s = scram_find(r->scram_id);
		if (!s) {
			r->result = -ENOENT;
			break;
		}
		r->result = tq_scram_server_final(&s->st, r->data, r->data_len, (char *)r->out,
						  sizeof(r->out), &out_len);
		r->out_len = (uint16_t)out_len;
		r->user_len = (uint16_t)snprintf(r->user, sizeof(r->user), "%s", s->st.user);
		/* the rate limit counts SCRAM failures too: run them through the login check's
		 * bookkeeping with the user's name and no password (always refused) */
		if (r->result != 1) {
			tq_users_login(cp.users, s->st.user, strlen(s->st.user), "", 0, src, now,
				       &delay);
		}
		s->id = 0;
		break;
	case TQ_CTL_SCRAM_ABORT:
		s = scram_find(r->scram_id);
		if (s)
			s->id = 0;
		free(r);
		return;
	default:
		r->result = -EINVAL;
		break;
	}
	if (r->result == 1 && r->kind != TQ_CTL_SCRAM_FIRST)
		r->prio = user_prio(r->user, r->user_len);
	answer(r, now, delay);
}

static unsigned int
run_held(uint64_t now)
{
	struct held **pp = &cp.held, *h;
	unsigned int n = 0;

	while ((h = *pp)) {
		int rc;

		if (h->due_ms <= now && (rc = tq_ctl_answer(h->req)) != -ENOBUFS) {
			if (rc < 0)
				free(h->req);
			*pp = h->next;
			free(h);
			cp.nheld--;
			n++;
			continue;
		}
		pp = &h->next;
	}
	return n;
}

unsigned int
tq_cplane_poll(void)
{
	struct tq_ctl_req *reqs[32];
	unsigned int n, work = 0;
	uint64_t now;
	struct call *c;

	if (!cp.running)
		return 0;
	now = tq_cplane_now_ms();
	n = tq_ctl_take(reqs, 32);
	for (unsigned int i = 0; i < n; i++)
		handle(reqs[i], now);
	work += n;
	if (cp.held)
		work += run_held(now);
	pthread_mutex_lock(&cp.lock);
	c = cp.pending;
	cp.pending = NULL;
	pthread_mutex_unlock(&cp.lock);
	if (c) {
		int rc = c->fn(c->arg, c->out, c->cap);

		pthread_mutex_lock(&cp.lock);
		c->rc = rc;
		c->done = true;
		pthread_cond_broadcast(&cp.cond);
		pthread_mutex_unlock(&cp.lock);
		work++;
	}
	return work;
}

int
tq_cplane_call(tq_cplane_fn fn, void *arg, char *out, size_t cap)
{
	struct call c = {.fn = fn, .arg = arg, .out = out, .cap = cap};
	struct timespec until;
	int rc = 0;

	if (!cp.running)
		return -ESHUTDOWN;
	if (out && cap)
		out[0] = '\0';
	pthread_mutex_lock(&cp.callers);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&cp.lock);
	cp.pending = &c;
	while (!c.done && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&cp.cond, &cp.lock, &until);
	if (!c.done) {
		if (cp.pending == &c) { /* never taken: withdraw it */
			cp.pending = NULL;
			c.rc = -ETIMEDOUT;
		} else { /* running right now: it will finish */
			while (!c.done)
				pthread_cond_wait(&cp.cond, &cp.lock);
		}
	}
	pthread_mutex_unlock(&cp.lock);
	pthread_mutex_unlock(&cp.callers);
	return c.rc;
}

void
tq_cplane_stop(void)
{
	struct held *h;

	pthread_mutex_lock(&cp.lock);
	cp.running = false;
	if (cp.pending) {
		cp.pending->rc = -ESHUTDOWN;
		cp.pending->done = true;
		cp.pending = NULL;
		pthread_cond_broadcast(&cp.cond);
	}
	pthread_mutex_unlock(&cp.lock);
	while ((h = cp.held)) {
		cp.held = h->next;
		free(h->req);
		free(h);
	}
	cp.nheld = 0;
	tq_ctl_close();
	if (tq_access_cur)
		tq_access_publish(NULL);
	if (tq_policies_cur)
		tq_policies_publish(NULL);
	tq_users_free(cp.users);
	tq_access_db_free(cp.access);
	tq_policy_db_free(cp.policies);
	free(cp.scram);
	cp.users = NULL;
	cp.access = NULL;
	cp.policies = NULL;
	cp.scram = NULL;
	cp.default_user[0] = '\0';
	free(cp.default_secret);
	cp.default_secret = NULL;
}
