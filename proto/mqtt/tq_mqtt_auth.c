/*
 * Who is connecting, and may they publish or subscribe there: MQTT's side of the control
 * plane (control/tq_users.h, control/tq_scram.h, control/tq_access.h).
 *
 * CONNECT with a user name: the credentials go to the control thread (dataplane/tq_ctl.h)
 * and the CONNECT stays unread in the receive chain until the answer comes; then it is read
 * again and goes on (accepted) or is refused with 0x04 / v5 0x86. CONNECT without a user
 * name: mqtt.allow_anonymous decides (0x05 / v5 0x87 when not). Without a control plane
 * (unit tests) a user name is refused unless anonymous access is allowed (as before).
 *
 * MQTT 5 enhanced authentication, method "SCRAM-SHA-256" (RFC 5802, 7677): CONNECT carries
 * client-first; the CONNECT is kept (copied) and the control thread answers server-first,
 * sent in AUTH (0x18); the client's AUTH (0x18) carries client-final; when the control thread
 * accepts it the kept CONNECT is handled again, and its CONNACK carries server-final as
 * Authentication Data. Any other method: CONNACK 0x8C. Re-authentication (AUTH 0x19 on a
 * live connection) is not offered: it is answered with DISCONNECT 0x8C.
 *
 * ACLs (tq_access_acl_*): PUBLISH to a topic the user may not write is acknowledged and
 * dropped in 3.1.1 (what mosquitto does), answered with 0x87 in v5 (QoS 1/2), counted
 * (mqtt_acl_publish_denied); a SUBSCRIBE filter the user may not read gets 0x80 / v5 0x87
 * (mqtt_acl_subscribe_denied). Decisions for the last topic published are cached on the
 * connection per access snapshot generation. MQTT clients live in vhost "/".
 */
#define URCU_INLINE_SMALL_FUNCTIONS
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/urcu-qsbr.h>

#include "control/tq_access.h"
#include "dataplane/tq_ctl.h"
#include "proto/mqtt/tq_mqtt_int.h"

/* @c's user name from a control answer (@len bytes, not NUL-terminated); 0 or -ENOMEM. */
static int
set_user(struct tq_mqtt_conn *c, const char *name, size_t len)
{
	char *u = NULL;

	if (len && !(u = malloc(len + 1)))
		return -ENOMEM;
	if (u) {
		memcpy(u, name, len);
		u[len] = '\0';
	}
	free(c->user);
	c->user = u;
	return 0;
}

static const char scram_method[] = "SCRAM-SHA-256";

static bool
str_eq(const struct tq_mqtt_str *s, const char *v)
{
	size_t n = strlen(v);

	return s->len == n && memcmp(s->p, v, n) == 0;
}

static struct tq_ctl_req *
req_new(struct tq_mqtt_conn *c, uint8_t kind)
{
	struct tq_ctl_req *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->kind = kind;
	r->reply_type = TQ_MSG_MQTT_AUTH;
	if (!c->auth_cookie)
		c->auth_cookie = ++c->w->mqtt->auth_seq;
	r->cookie = c->auth_cookie;
	r->src_ip = tq_tcp_remote_addr(c->tcp);
	r->scram_id = c->scram_id;
	return r;
}

/* Submit @r and put @c on the worker's list of connections awaiting an answer. */
static int
submit(struct tq_mqtt_conn *c, struct tq_ctl_req *r)
{
	struct tq_mqtt_worker *wk = c->w->mqtt;

	if (tq_ctl_submit(c->w, r) < 0) {
		free(r);
		return -TQ_MQTT_E_SERVER_BUSY;
	}
	c->auth_next = wk->auth_wait;
	wk->auth_wait = c;
	c->auth_listed = true;
	c->state = CS_WAIT_AUTH;
	return 0;
}

static void
unlist(struct tq_mqtt_conn *c)
{
	if (!c->auth_listed)
		return;
	for (struct tq_mqtt_conn **pp = &c->w->mqtt->auth_wait; *pp; pp = &(*pp)->auth_next)
		if (*pp == c) {
			*pp = c->auth_next;
			c->auth_next = NULL;
			break;
		}
	c->auth_listed = false;
}

int
tq_mqtt_auth_connect(struct tq_mqtt_conn *c, const struct tq_mqtt_connect *cn,
		     const uint8_t *raw, uint32_t raw_len)
{
	const struct tq_mqtt_props *pr = &cn->props;
	struct tq_ctl_req *r;
	int rc;

	if (c->auth == MQ_AUTH_OK)
		return 0;
	if (c->auth == MQ_AUTH_REFUSED)
		return -TQ_MQTT_E_BAD_USER_PASS;
	if (cn->level == TQ_MQTT_LEVEL_5 && (pr->present & TQ_MQTT_PBIT(TQ_MQTT_PROP_AUTH_METHOD))) {
		if (!str_eq(&pr->auth_method, scram_method) || !tq_ctl_ring)
			return -TQ_MQTT_E_BAD_AUTH_METHOD;
		if (!(pr->present & TQ_MQTT_PBIT(TQ_MQTT_PROP_AUTH_DATA)) ||
		    pr->auth_data.len > TQ_CTL_DATA_MAX)
			return -TQ_MQTT_E_BAD_USER_PASS;
		c->connect_copy = malloc(raw_len);
		r = req_new(c, TQ_CTL_SCRAM_FIRST);
		if (!c->connect_copy || !r) {
			free(r);
			return -TQ_MQTT_E_SERVER_BUSY;
		}
		memcpy(c->connect_copy, raw, raw_len);
		c->connect_len = raw_len;
		r->data_len = pr->auth_data.len;
		memcpy(r->data, pr->auth_data.p, pr->auth_data.len);
		rc = submit(c, r);
		return rc < 0 ? rc : 1; /* consumed: the copy is handled again */
	}
	if (!cn->has_username) {
		if (!tq_mqtt.conf.allow_anonymous)
			return -TQ_MQTT_E_NOT_AUTHORIZED;
		free(c->user);
		c->user = NULL;
		c->auth = MQ_AUTH_OK;
		return 0;
	}
	if (!tq_ctl_ring) /* no control plane: only anonymous access exists */
		return tq_mqtt.conf.allow_anonymous ? 0 : -TQ_MQTT_E_BAD_USER_PASS;
	if (cn->username.len > TQ_CTL_USER_MAX || cn->password.len > TQ_CTL_DATA_MAX)
		return -TQ_MQTT_E_BAD_USER_PASS;
	r = req_new(c, TQ_CTL_LOGIN);
	if (!r)
		return -TQ_MQTT_E_SERVER_BUSY;
	r->user_len = cn->username.len;
	memcpy(r->user, cn->username.p, cn->username.len);
	if (cn->has_password) {
		r->data_len = cn->password.len;
		memcpy(r->data, cn->password.p, cn->password.len);
	}
	rc = submit(c, r);
	return rc < 0 ? rc : 2; /* not consumed: read again with the answer */
}

/* AUTH from the client while we wait for client-final (state CS_AUTH). */
int
tq_mqtt_auth_packet(struct tq_mqtt_conn *c, const struct tq_mqtt_pkt *pkt)
{
	const struct tq_mqtt_disconnect *a = &pkt->disconnect;
	struct tq_ctl_req *r;

	if (pkt->type != TQ_MQTT_AUTH || a->reason != 0x18 ||
	    !(a->props.present & TQ_MQTT_PBIT(TQ_MQTT_PROP_AUTH_METHOD)) ||
	    !str_eq(&a->props.auth_method, scram_method)) {
		tq_mqtt_auth_refuse(c, -TQ_MQTT_E_PROTOCOL);
		return -1;
	}
	if (!(a->props.present & TQ_MQTT_PBIT(TQ_MQTT_PROP_AUTH_DATA)) ||
	    a->props.auth_data.len > TQ_CTL_DATA_MAX) {
		tq_mqtt_auth_refuse(c, -TQ_MQTT_E_BAD_USER_PASS);
		return -1;
	}
	r = req_new(c, TQ_CTL_SCRAM_FINAL);
	if (!r) {
		tq_mqtt_auth_refuse(c, -TQ_MQTT_E_SERVER_BUSY);
		return -1;
	}
	r->data_len = a->props.auth_data.len;
	memcpy(r->data, a->props.auth_data.p, a->props.auth_data.len);
	if (submit(c, r) < 0) {
		tq_mqtt_auth_refuse(c, -TQ_MQTT_E_SERVER_BUSY);
		return -1;
	}
	return 1; /* consumed; reading waits for the answer */
}

static void
send_auth_continue(struct tq_mqtt_conn *c, const uint8_t *data, uint16_t len)
{
	struct tq_mqtt_pkt p = {.type = TQ_MQTT_AUTH};
	struct tq_mqtt_props *pr = &p.disconnect.props;

	p.disconnect.reason = 0x18;
	pr->present = TQ_MQTT_PBIT(TQ_MQTT_PROP_AUTH_METHOD) | TQ_MQTT_PBIT(TQ_MQTT_PROP_AUTH_DATA);
	pr->auth_method.p = (const uint8_t *)scram_method;
	pr->auth_method.len = sizeof(scram_method) - 1;
	pr->auth_data.p = data;
	pr->auth_data.len = len;
	tq_mqtt_send_pkt(c, &p);
}

/* The control thread's answer (ring message TQ_MSG_MQTT_AUTH). */
void
tq_mqtt_auth_answer(struct tq_worker *w, const struct tq_ring_msg *msg)
{
	struct tq_ctl_req *r = (struct tq_ctl_req *)(uintptr_t)msg->b;
	struct tq_mqtt_conn *c;

	for (c = w->mqtt->auth_wait; c; c = c->auth_next)
		if (c->auth_cookie == r->cookie)
			break;
	if (c)
		unlist(c);
	if (!c || c->state != CS_WAIT_AUTH) { /* gone, or closing (keep alive, kill) */
		tq_worker_count(w, TQ_CTR_ctl_answers_stale);
		if (r->kind == TQ_CTL_SCRAM_FIRST && r->result == 1) {
			/* nobody will finish it: let the control thread forget it */
			r->kind = TQ_CTL_SCRAM_ABORT;
			if (tq_ctl_submit(w, r) == 0)
				return;
		}
		free(r);
		return;
	}
	switch (r->kind) {
	case TQ_CTL_LOGIN:
		c->state = CS_NEW;
		c->auth = r->result == 1 && set_user(c, r->user, r->user_len) == 0 ? MQ_AUTH_OK
										    : MQ_AUTH_REFUSED;
		if (r->result == 1)
			tq_tcp_set_prio(c->tcp, r->prio); /* the user's data-plane class */
		free(r);
		tq_mqtt_conn_resume_rx(c); /* the CONNECT again, with the answer */
		return;
	case TQ_CTL_SCRAM_FIRST:
		if (r->result != 1) {
			free(r);
			tq_mqtt_auth_refuse(c, -TQ_MQTT_E_BAD_USER_PASS);
			return;
		}
		c->scram_id = r->scram_id;
		c->state = CS_AUTH;
		send_auth_continue(c, r->out, r->out_len);
		free(r);
		tq_mqtt_conn_resume_rx(c);
		return;
	case TQ_CTL_SCRAM_FINAL:
		c->scram_id = 0;
		if (r->result != 1 || !(c->auth_final = malloc(r->out_len ? r->out_len : 1))) {
			free(r);
			tq_mqtt_auth_refuse(c, -TQ_MQTT_E_BAD_USER_PASS);
			return;
		}
		memcpy(c->auth_final, r->out, r->out_len);
		c->auth_final_len = r->out_len;
		tq_tcp_set_prio(c->tcp, r->prio);
		if (set_user(c, r->user, r->user_len) < 0) {
			free(r);
			tq_mqtt_auth_refuse(c, -TQ_MQTT_E_SERVER_BUSY);
			return;
		}
		free(r);
		c->auth = MQ_AUTH_OK;
		c->state = CS_NEW;
		tq_mqtt_auth_replay(c);
		return;
	default:
		free(r);
		return;
	}
}

/* The connection goes: no answer can find it, an open SCRAM exchange is dropped. */
void
tq_mqtt_auth_conn_free(struct tq_mqtt_conn *c)
{
	unlist(c); /* whatever its state: a connection killed while waiting is still listed */
	if (c->scram_id) {
		struct tq_ctl_req *r = req_new(c, TQ_CTL_SCRAM_ABORT);

		if (r && tq_ctl_submit(c->w, r) < 0)
			free(r);
		c->scram_id = 0;
	}
	free(c->connect_copy);
	c->connect_copy = NULL;
	free(c->auth_final);
	c->auth_final = NULL;
	free(c->user);
	c->user = NULL;
	free(c->acl_topic);
	c->acl_topic = NULL;
}

static const struct tq_access *
access_snap(void)
{
	return rcu_dereference(tq_access_cur);
}

bool
tq_mqtt_acl_publish(struct tq_mqtt_conn *c, const struct tq_mqtt_str *topic)
{
	const struct tq_access *a = access_snap();
	struct tq_access_who who;

	if (!a)
		return true;
	if (c->acl_gen == tq_access_gen(a) && c->acl_len == topic->len && c->acl_topic &&
	    memcmp(c->acl_topic, topic->p, topic->len) == 0)
		return c->acl_ok;
	who.user = tq_mqtt_conn_user(c);
	who.vhost = "/";
	who.client_id = c->sess ? c->sess->client_id : "";
	c->acl_ok = tq_access_acl_publish(a, &who, (const char *)topic->p, topic->len);
	if (topic->len <= TQ_MQTT_ACL_TOPIC_MAX &&
	    (c->acl_topic || (c->acl_topic = malloc(TQ_MQTT_ACL_TOPIC_MAX)))) {
		memcpy(c->acl_topic, topic->p, topic->len);
		c->acl_len = topic->len;
		c->acl_gen = tq_access_gen(a);
	} else {
		c->acl_gen = 0;
	}
	return c->acl_ok;
}

bool
tq_mqtt_acl_subscribe(struct tq_mqtt_conn *c, const char *filter, size_t len)
{
	const struct tq_access *a = access_snap();
	struct tq_access_who who;

	if (!a)
		return true;
	who.user = tq_mqtt_conn_user(c);
	who.vhost = "/";
	who.client_id = c->sess ? c->sess->client_id : "";
	return tq_access_acl_subscribe(a, &who, filter, len);
}
