/*
 * Policies that apply to MQTT topics (control/tq_policy.h, apply-to "topics"): what a worker
 * does to a PUBLISH it takes in. Worker only, inside its QSBR read side.
 */
#ifndef TQ_MQTT_POLICY_H
#define TQ_MQTT_POLICY_H

struct tq_worker;
struct tq_msg;

/*
 * A topics policy with message-ttl on @m's topic: @m expires at most message-ttl from now
 * (a message without an expiry gets one; one with a longer expiry has it shortened, counted
 * in mqtt_policy_ttl). Nothing when no topics policy exists (one load and a branch).
 */
void tq_mqtt_policy_expiry(struct tq_worker *w, struct tq_msg *m);

#endif
