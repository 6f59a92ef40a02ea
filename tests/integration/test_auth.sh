#!/usr/bin/env bash
# Users, permissions, topic permissions, MQTT ACLs and policies as their users see them, with
# tachyonctl making every change: pika (auth_clients.py), raw MQTT 3.1.1 / 5.0 sockets
# (auth_clients.py, for exact reason codes), mosquitto_pub and amqp-tools against tachyond in
# a private namespace. Checks the default user rule (guest until an operator adds a user),
# passwords in both protocols, RabbitMQ's configure / write / read permissions per operation,
# vhosts, topic permissions with {username}, ACLs with %u, a permission change reaching a live
# channel, policies (max-length), export / import, and tachyonctl itself: every command's
# table and --json, and its exit codes (0 done, 1 refused, 2 usage, 3 unreachable).
#
# usage: test_auth.sh TACHYOND TACHYONCTL WORKERS
set -euo pipefail

TACHYOND=$1
TACHYONCTL=$(cd "$(dirname "$2")" && pwd)/$(basename "$2") # absolute: the test changes directory
WORKERS=$3
NAME=auth
source "$(dirname "$0")/lib.sh"
CLIENTS=$(cd "$(dirname "$0")" && pwd)/auth_clients.py
AMQP_PORT=5672
MQTT_PORT=1883
WORK=$(mktemp -d /tmp/tq-auth-XXXXXX)
trap 'it_cleanup; rm -rf "$WORK"' EXIT

# Passwords with what a naive encoding would break: spaces, commas, '%', quotes, UTF-8.
PW_ALICE='s3cret, with spaces %41 "q"'
PW_ALICE2='n€w,pass%'
PW_ADMIN='admin pw'
PW_CAROL='carol,pw'
PW_WATCH='watch%20er'

# cl PROBE ARGS...: auth_clients.py inside the namespace (it runs tachyonctl for ctl: steps)
cl() {
	in_ns env TACHYONCTL="$TACHYONCTL" TQ_PREFIX="$PREFIX" timeout 120 /usr/bin/python3 \
		"$CLIENTS" "$ROUTER" $AMQP_PORT $MQTT_PORT "$@" 2>&1 || true
}
# step OUTPUT OP: the result an "amqp" probe printed for OP
step() {
	local line
	line=$(grep -F -- "$2: " <<<"$1" | head -1)
	echo "${line#"$2: "}"
}
# row LABEL "a b c" TABLE: a row of the table equals these cells (runs of spaces squeezed)
row() {
	if tr -s ' ' <<<"$3" | sed 's/ $//' | grep -Fxq -- "$2"; then ok "$1"; else
		fail "$1: no row '$2' in:"$'\n'"$3"
	fi
}
norow() {
	if tr -s ' ' <<<"$3" | sed 's/ $//' | grep -Fxq -- "$2"; then
		fail "$1: row '$2' still in:"$'\n'"$3"
	else ok "$1"; fi
}
# jcheck LABEL PYEXPR JSON: PYEXPR over d, the reply's value, is true
jcheck() {
	if python3 -c 'import json, sys
d = list(json.loads(sys.argv[2]).values())[0]
sys.exit(0 if eval(sys.argv[1]) else 1)' "$2" "$3" 2>/dev/null; then ok "$1"; else
		fail "$1: not ($2) in: $3"
	fi
}
mosq_pub() { # mosq_pub USER PASS TOPIC: mosquitto_pub's exit status
	local rc=0
	in_ns timeout 10 mosquitto_pub -h "$ROUTER" -p $MQTT_PORT -u "$1" -P "$2" -q 1 -t "$3" \
		-m x >/dev/null 2>&1 || rc=$?
	echo $rc
}

it_start --set amqp.port=$AMQP_PORT --set mqtt.port=$MQTT_PORT --set tcp.msl_ms=500 \
	--set auth.fail_limit=100000

# >>> the default user: guest/guest until an operator adds a user
run 0 "users" users
row "users: guest is the one user, an administrator" "guest administrator" "$out"
run 0 "users --json" --json users
jcheck "users --json: names and tags" 'd["name"] == ["guest"] and d["tags"] == ["administrator"] and d["total"] == 1' "$out"
expect "AMQP guest/guest accepted at start" "ok" "$(step "$(cl amqp guest guest /)" open)"
expect "MQTT 3.1.1 guest/guest accepted at start" "0x00" "$(cl mqtt guest guest 3)"
expect "MQTT 5 guest/guest accepted at start" "0x00" "$(cl mqtt guest guest 5)"
expect "mosquitto_pub -u guest -P guest at start" 0 "$(mosq_pub guest guest t/start)"

# >>> an operator adds alice: guest goes, passwords are checked in both protocols
run 0 "add_user alice" add_user alice "$PW_ALICE"
row "add_user says what it did" 'Added user "alice".' "$out"
grep -q 'The default user "guest" was removed' <<<"$out" &&
	ok "add_user tells that the default user guest was removed" ||
	fail "add_user does not mention the default user: '$out'"
run 0 "users after add_user" users
row "users: alice, no tags" "alice" "$out"
norow "users: guest is gone" "guest administrator" "$out"
expect_re "AMQP guest/guest refused once an operator added a user" \
	"403 ACCESS_REFUSED.*" "$(step "$(cl amqp guest guest /)" open)"
# 3.1.1: 0x04 (bad user name or password, what v5's 0x86 maps to) or 0x05 (not authorized)
expect_re "MQTT 3.1.1 guest/guest refused: CONNACK 4 or 5" "0x0[45]" "$(cl mqtt guest guest 3)"
expect "MQTT 5 guest/guest refused: CONNACK 0x86" "0x86" "$(cl mqtt guest guest 5)"
[ "$(mosq_pub guest guest t/x)" -ne 0 ] && ok "mosquitto_pub -u guest refused" ||
	fail "mosquitto_pub -u guest still accepted"
expect_re "AMQP alice, wrong password: 403" "403 ACCESS_REFUSED.*" \
	"$(step "$(cl amqp alice wrong /)" open)"
expect_re "MQTT 3.1.1 alice, wrong password: CONNACK 4 or 5" "0x0[45]" "$(cl mqtt alice wrong 3)"
expect "MQTT 5 alice, wrong password: CONNACK 0x86" "0x86" "$(cl mqtt alice wrong 5)"
expect "MQTT 3.1.1 alice, right password: accepted" "0x00" "$(cl mqtt alice "$PW_ALICE" 3)"
expect "MQTT 5 alice, right password: accepted" "0x00" "$(cl mqtt alice "$PW_ALICE" 5)"
expect "mosquitto_pub -u alice (ACLs off: every topic)" 0 "$(mosq_pub alice "$PW_ALICE" any/topic)"
# the password is right but alice has no permissions on "/" yet: connection.open says so
expect_re "AMQP alice without permissions on /: 530 at connection.open" \
	"530 NOT_ALLOWED.*" "$(step "$(cl amqp alice "$PW_ALICE" /)" open)"
if in_ns timeout 10 amqp-declare-queue --server "$ROUTER" --port $AMQP_PORT --username alice \
	--password "$PW_ALICE" -q alice.t >/dev/null 2>&1; then
	fail "amqp-declare-queue as alice without permissions succeeded"
else ok "amqp-declare-queue as alice without permissions fails"; fi

# >>> change_password takes effect at once
run 0 "change_password alice" change_password alice "$PW_ALICE2"
row "change_password says what it did" 'Changed the password of user "alice".' "$out"
expect_re "AMQP alice, old password after change_password: 403" "403 ACCESS_REFUSED.*" \
	"$(step "$(cl amqp alice "$PW_ALICE" /)" open)"
expect "MQTT 5 alice, old password after change_password: 0x86" "0x86" \
	"$(cl mqtt alice "$PW_ALICE" 5)"
expect "MQTT 3.1.1 alice, new password: accepted" "0x00" "$(cl mqtt alice "$PW_ALICE2" 3)"
expect_re "AMQP alice, new password: logged in (530: still no permissions)" "530 NOT_ALLOWED.*" \
	"$(step "$(cl amqp alice "$PW_ALICE2" /)" open)"

# >>> permissions per operation
run 0 "add_user admin --tags administrator" add_user admin "$PW_ADMIN" --tags administrator
if grep -q 'default user' <<<"$out"; then fail "second add_user mentions the default user again"; else
	ok "second add_user: no default user left to remove"; fi
run 0 "set_permissions admin" set_permissions admin '.*' '.*' '.*'
r=$(cl amqp admin "$PW_ADMIN" / declare:shared.q publish::shared.q:m1)
expect "admin declares shared.q and publishes" "ok ok" \
	"$(step "$r" declare:shared.q) $(step "$r" publish::shared.q:m1)"
run 0 "set_permissions alice" set_permissions alice '^alice\.' '^alice\.' '^alice\.'
row "set_permissions says what it did" 'Set permissions of user "alice" on vhost "/".' "$out"
run 0 "permissions" permissions
row "permissions: alice's row" 'alice / ^alice\. ^alice\. ^alice\.' "$out"
row "permissions: admin's row" 'admin / .* .* .*' "$out"
run 0 "permissions --json" --json permissions
jcheck "permissions --json: alice's expressions intact" \
	'"alice" in d["user"] and d["configure"][d["user"].index("alice")] == "^alice\\."' "$out"
r=$(cl amqp alice "$PW_ALICE2" / declare:alice.q declare:bob.q declare_x:alice.x:direct \
	bind:alice.q:alice.x:k publish:alice.x:k:hello get:alice.q publish:amq.direct:k:x \
	publish::alice.q:x consume:shared.q get:shared.q consume:alice.q)
expect "alice: connection opens with permissions" "ok" "$(step "$r" open)"
expect "alice: declare alice.q (configure ^alice\\.)" "ok" "$(step "$r" declare:alice.q)"
expect_re "alice: declare bob.q refused, channel closed 403" \
	"403 ACCESS_REFUSED - .*queue 'bob\.q' in vhost '/' refused for user 'alice'" \
	"$(step "$r" declare:bob.q)"
expect "alice: declare exchange alice.x" "ok" "$(step "$r" declare_x:alice.x:direct)"
expect "alice: bind alice.q to alice.x (write queue, read exchange)" "ok" \
	"$(step "$r" bind:alice.q:alice.x:k)"
expect "alice: publish to alice.x" "ok" "$(step "$r" publish:alice.x:k:hello)"
expect "alice: basic.get from alice.q" "hello" "$(step "$r" get:alice.q)"
expect_re "alice: publish to amq.direct refused (write)" "403 ACCESS_REFUSED.*amq\.direct.*" \
	"$(step "$r" publish:amq.direct:k:x)"
expect_re "alice: publish to the default exchange refused (amq.default)" \
	"403 ACCESS_REFUSED.*amq\.default.*" "$(step "$r" publish::alice.q:x)"
expect_re "alice: consume from shared.q refused (read)" "403 ACCESS_REFUSED.*shared\.q.*" \
	"$(step "$r" consume:shared.q)"
expect_re "alice: basic.get from shared.q refused (read)" "403 ACCESS_REFUSED.*shared\.q.*" \
	"$(step "$r" get:shared.q)"
expect "alice: consume from alice.q" "ok" "$(step "$r" consume:alice.q)"

# >>> vhosts: permissions per vhost, queues apart
run 0 "add_vhost dev" add_vhost dev
run 0 "vhosts" vhosts
row "vhosts: /" "/" "$out"
row "vhosts: dev" "dev" "$out"
run 0 "vhosts --json" --json vhosts
jcheck "vhosts --json" 'sorted(d["name"]) == ["/", "dev"]' "$out"
run 1 "add_vhost dev again: refused" add_vhost dev
expect_re "add_vhost dev again: the reason" ".*vhost \"dev\" already exists.*" "$err"
expect_re "alice on vhost dev without permissions there: 530" "530 NOT_ALLOWED.*" \
	"$(step "$(cl amqp alice "$PW_ALICE2" dev)" open)"
run 0 "set_permissions -p dev alice" set_permissions -p dev alice '.*' '.*' '.*'
r=$(cl amqp alice "$PW_ALICE2" / publish:alice.x:k:in-root count:alice.q)
expect "alice publishes to alice.q in /" "ok 1" \
	"$(step "$r" publish:alice.x:k:in-root) $(step "$r" count:alice.q)"
r=$(cl amqp alice "$PW_ALICE2" dev declare:alice.q count:alice.q publish::alice.q:in-dev \
	count:alice.q get:alice.q)
expect "pika on vhost dev after set_permissions -p dev" "ok" "$(step "$r" open)"
expect "dev's alice.q is not /'s: empty at first, then its own message" "0 ok in-dev" \
	"$(step "$r" count:alice.q) $(step "$r" publish::alice.q:in-dev) $(step "$r" get:alice.q)"
expect "/'s alice.q still holds its message" "1" \
	"$(step "$(cl amqp alice "$PW_ALICE2" / count:alice.q)" count:alice.q)"
run 0 "permissions -p dev" permissions -p dev
row "permissions -p dev: alice's row there" "alice dev .* .* .*" "$out"
norow "permissions -p dev: not /'s rows" 'alice / ^alice\. ^alice\. ^alice\.' "$out"
run 0 "queues -p dev" queues -p dev
row "queues -p dev: alice.q, nothing ready" "dev alice.q 0 0 0" "$out"
run 0 "queues -p /" queues -p /
row "queues -p /: alice.q with one ready" "/ alice.q 1 0 0" "$out"
row "queues -p /: shared.q with one ready" "/ shared.q 1 0 0" "$out"
run 0 "queues --json" --json queues
jcheck "queues --json: both alice.q" \
	'sorted(v for v, n in zip(d["vhost"], d["name"]) if n == "alice.q") == ["/", "dev"]' "$out"
run 0 "add_vhost tmp" add_vhost tmp
run 0 "delete_vhost tmp" delete_vhost tmp
run 1 "delete_vhost tmp again: refused" delete_vhost tmp
expect_re "delete_vhost of a missing vhost: the reason" ".*no such vhost \"tmp\".*" "$err"

# >>> topic permissions on amq.topic with {username}
run 0 "add_user carol" add_user carol "$PW_CAROL"
run 0 "set_permissions carol" set_permissions carol '.*' '.*' '.*'
run 0 "set_topic_permissions carol" set_topic_permissions carol amq.topic '^{username}\.' '^{username}\.'
run 0 "topic_permissions" topic_permissions
row "topic_permissions: carol's row" 'carol / amq.topic ^{username}\. ^{username}\.' "$out"
run 0 "topic_permissions --json" --json topic_permissions
jcheck "topic_permissions --json" 'd["exchange"] == ["amq.topic"] and d["write"] == ["^{username}\\."]' "$out"
r=$(cl amqp carol "$PW_CAROL" / declare:carol.q bind:carol.q:amq.topic:carol.# \
	bind:carol.q:amq.topic:bob.# publish:amq.topic:carol.a:t1 publish:amq.topic:bob.a:t2 get:carol.q)
expect "carol: bind with key carol.# (topic read)" "ok" "$(step "$r" bind:carol.q:amq.topic:carol.#)"
expect_re "carol: bind with key bob.# refused" "403 ACCESS_REFUSED.*" \
	"$(step "$r" bind:carol.q:amq.topic:bob.#)"
expect "carol: publish carol.a to amq.topic" "ok" "$(step "$r" publish:amq.topic:carol.a:t1)"
expect_re "carol: publish bob.a to amq.topic refused (topic write)" "403 ACCESS_REFUSED.*" \
	"$(step "$r" publish:amq.topic:bob.a:t2)"
expect "carol: got carol.a's message" "t1" "$(step "$r" get:carol.q)"
run 1 "clear_topic_permissions carol amq.direct: none there" clear_topic_permissions carol amq.direct
run 0 "clear_topic_permissions carol amq.topic" clear_topic_permissions carol amq.topic
expect "carol: publish bob.a once topic permissions are cleared" "ok" \
	"$(step "$(cl amqp carol "$PW_CAROL" / publish:amq.topic:bob.a:t3)" publish:amq.topic:bob.a:t3)"
run 0 "topic_permissions" topic_permissions
norow "topic_permissions: carol's row gone" 'carol / amq.topic ^{username}\. ^{username}\.' "$out"
run 0 "set_topic_permissions carol on two exchanges" set_topic_permissions carol amq.topic '^a' '^a'
run 0 "set_topic_permissions carol on amq.direct" set_topic_permissions carol amq.direct '^a' '^a'
run 0 "clear_topic_permissions carol (every exchange)" clear_topic_permissions carol
run 0 "topic_permissions --json" --json topic_permissions
jcheck "topic_permissions: none left" 'd["user"] == [] and d["total"] == 0' "$out"

# >>> a change reaches a live channel: the next publish is refused
r=$(cl amqp carol "$PW_CAROL" / publish::carol.q:before "ctl:clear_permissions carol" \
	publish::carol.q:after)
expect "live: carol publishes before" "ok" "$(step "$r" publish::carol.q:before)"
expect "live: tachyonctl clear_permissions carol meanwhile" "rc=0" \
	"$(step "$r" "ctl:clear_permissions carol")"
expect_re "live: the same connection's next publish closes the channel with 403" \
	"403 ACCESS_REFUSED.*" "$(step "$r" publish::carol.q:after)"
expect_re "carol's next connection: 530" "530 NOT_ALLOWED.*" \
	"$(step "$(cl amqp carol "$PW_CAROL" /)" open)"
run 1 "clear_permissions carol again: refused" clear_permissions carol

# >>> MQTT ACLs
run 0 "add_user watcher" add_user watcher "$PW_WATCH"
run 0 "set_acl watcher # read" set_acl watcher '#' read
run 0 "set_acl alice sensors/%u/# readwrite" set_acl alice 'sensors/%u/#' readwrite
run 0 "acls" acls
row "acls: alice's rule" "alice sensors/%u/# readwrite" "$out"
row "acls: watcher's rule" "watcher # read" "$out"
expect "3.1.1: the watcher gets alice's publish to sensors/alice/x, not the one to other/x" \
	"got: sensors/alice/x" \
	"$(cl mqtt_drop watcher "$PW_WATCH" alice "$PW_ALICE2" other/x sensors/alice/x)"
expect "3.1.1: a forbidden QoS 1 publish is still acknowledged (and dropped)" \
	"connack=0x00 puback=0x00" "$(cl mqtt_pub alice "$PW_ALICE2" 3 other/x)"
expect "5: a forbidden QoS 1 publish gets PUBACK 0x87" "connack=0x00 puback=0x87" \
	"$(cl mqtt_pub alice "$PW_ALICE2" 5 other/x)"
expect_re "5: an allowed QoS 1 publish gets PUBACK 0x00 or 0x10 (no subscriber)" \
	"connack=0x00 puback=0x(00|10)" "$(cl mqtt_pub alice "$PW_ALICE2" 5 sensors/alice/y)"
expect "3.1.1: SUBSCRIBE to a forbidden filter gets 0x80" "connack=0x00 suback=0x80" \
	"$(cl mqtt_sub alice "$PW_ALICE2" 3 other/#)"
expect "5: SUBSCRIBE to a forbidden filter gets 0x87" "connack=0x00 suback=0x87" \
	"$(cl mqtt_sub alice "$PW_ALICE2" 5 other/#)"
expect "3.1.1: SUBSCRIBE to sensors/alice/# granted QoS 1" "connack=0x00 suback=0x01" \
	"$(cl mqtt_sub alice "$PW_ALICE2" 3 sensors/alice/#)"
expect "5: SUBSCRIBE to sensors/bob/# (another user's %u) gets 0x87" "connack=0x00 suback=0x87" \
	"$(cl mqtt_sub alice "$PW_ALICE2" 5 sensors/bob/#)"
expect "mosquitto_pub as alice to sensors/alice/z" 0 "$(mosq_pub alice "$PW_ALICE2" sensors/alice/z)"
run 0 "set_acl '*' public/# readwrite (every user)" set_acl '*' 'public/#' readwrite
run 0 "acls --json" --json acls
jcheck "acls --json: the rule for every user has user \"\"" \
	'list(zip(d["user"], d["pattern"], d["access"]))[-1] == ("", "public/#", "readwrite")' "$out"
run 0 "acls" acls
row "acls: every user's rule shows *" "* public/# readwrite" "$out"
expect "5: alice subscribes to public/# through the rule for every user" \
	"connack=0x00 suback=0x01" "$(cl mqtt_sub alice "$PW_ALICE2" 5 public/#)"
run 0 "clear_acl '*' public/#" clear_acl '*' 'public/#'
expect "5: public/# refused again after clear_acl" "connack=0x00 suback=0x87" \
	"$(cl mqtt_sub alice "$PW_ALICE2" 5 public/#)"
run 1 "clear_acl of a missing rule: refused" clear_acl '*' 'public/#'
run 1 "set_acl with a filter that is not one: refused" set_acl alice 'a/#/b' read

# >>> policies: max-length 2 on ^ml\.
run 0 "set_policy ml" set_policy ml '^ml\.' '{"max-length":2}' --apply-to queues --priority 1
row "set_policy says what it did" 'Set policy "ml" on vhost "/".' "$out"
run 0 "policies" policies
row "policies: ml's row" '/ ml ^ml\. queues 1 {"max-length":2}' "$out"
run 0 "policies --json" --json policies
jcheck "policies --json" 'd["name"] == ["ml"] and d["priority"] == [1] and d["definition"] == ["{\"max-length\":2}"]' "$out"
r=$(cl amqp admin "$PW_ADMIN" / declare:ml.q publish::ml.q:1 publish::ml.q:2 publish::ml.q:3 \
	publish::ml.q:4 publish::ml.q:5 count:ml.q get:ml.q)
expect "a queue matching the policy holds at most 2 (the newest)" "2 4" \
	"$(step "$r" count:ml.q) $(step "$r" get:ml.q)"
run 0 "queues" queues
row "queues: ml.q under policy ml" "/ ml.q 1 0 0 ml" "$out"
run 0 "purge_queue ml.q" purge_queue ml.q
row "purge_queue says how many" 'Purged queue "ml.q" in vhost "/": 1 messages.' "$out"
expect "ml.q is empty after purge_queue" "0" \
	"$(step "$(cl amqp admin "$PW_ADMIN" / count:ml.q)" count:ml.q)"
run 1 "purge_queue of a missing queue: refused" purge_queue nope
run 1 "set_policy with an unknown key: refused" set_policy bad '^x' '{"max-lenth":2}'
expect_re "set_policy with an unknown key: the reason" ".*max-lenth.*" "$err"
run 2 "set_policy --priority x: usage" set_policy bad '^x' '{"max-length":2}' --priority x
run 2 "set_policy --apply-to bogus: usage" set_policy bad '^x' '{"max-length":2}' --apply-to bogus
run 0 "clear_policy ml" clear_policy ml
run 1 "clear_policy ml again: refused" clear_policy ml

# >>> exchanges and bindings
run 0 "exchanges -p /" exchanges -p /
row "exchanges: amq.topic" "/ amq.topic topic true false false" "$out"
row "exchanges: alice.x" "/ alice.x direct false false false" "$out"
run 0 "exchanges --json" --json exchanges
jcheck "exchanges --json: every vhost's amq.topic" \
	'sorted(v for v, n in zip(d["vhost"], d["name"]) if n == "amq.topic") == ["/", "dev"]' "$out"
run 0 "bindings -p /" bindings -p /
row "bindings: alice.x -> alice.q with k" "/ alice.x alice.q queue k" "$out"
run 0 "bindings --json" --json bindings
jcheck "bindings --json" '("carol.q", "carol.#") in zip(d["destination"], d["routing_key"])' "$out"

# >>> users' tags, names and passwords beyond ASCII
run 0 "set_user_tags alice monitoring management" set_user_tags alice monitoring management
run 0 "users" users
row "users: alice's tags" "alice monitoring,management" "$out"
run 0 "add_user zoë" add_user 'zoë' 'p w,%25'
run 0 "set_permissions zoë" set_permissions 'zoë' '.*' '.*' '.*'
expect "AMQP zoë with 'p w,%25'" "ok" "$(step "$(cl amqp 'zoë' 'p w,%25' /)" open)"
run 0 "users shows zoë's UTF-8 bytes escaped" users
row "users: zo\\xc3\\xab" 'zo\xc3\xab' "$out"

# >>> exit codes
run 1 "delete_user of a missing user" delete_user nobody
expect "delete_user of a missing user: the reason" 'tachyonctl: delete_user: no such user "nobody"' "$err"
run 1 "set_permissions for a missing user (as RabbitMQ)" set_permissions nobody '.*' '.*' '.*'
run 1 "set_permissions on a missing vhost" set_permissions -p nohost alice '.*' '.*' '.*'
run 1 "set_permissions with a bad regular expression" set_permissions alice '(' '.*' '.*'
run 1 "add_user alice again" add_user alice x
run 1 "add_user --json of an existing user" --json add_user alice x
jcheck "add_user --json of an existing user: the error in the reply" \
	'"already exists" in d["error"]' "$out"
run 2 "add_user without a password: usage" add_user onlyname
run 2 "set_acl with access rw: usage" set_acl alice x rw
run 2 "an unknown command: usage" no_such_command
run 2 "users with an argument: usage" users extra
run 2 "--tags on a command without it: usage" delete_user alice --tags x
big=$(printf '%%%.0s' $(seq 400))
run 2 "a password that cannot fit a telemetry request: usage" change_password alice "$big"
rc=0
"$TACHYONCTL" -p "no-such-prefix-$$" users >/dev/null 2>&1 || rc=$?
expect "tachyonctl against no tachyond: exit 3" 3 "$rc"

# >>> login figures
run 0 "auth" auth
row "auth: users" "users 5" "$out"
run 0 "auth --json" --json auth
jcheck "auth --json: logins counted" \
	'd["logins_ok"] + d["cache_hits"] >= 10 and d["logins_refused"] >= 8 and d["users"] == 5' "$out"

# >>> export, change, import: the state comes back
cd "$WORK"
run 0 "set_policy keep (for the round trip)" set_policy -p dev keep '^k' '{"message-ttl":60000}'
for l in users vhosts permissions topic_permissions acls policies; do
	ctl --json "$l" >"$WORK/before.$l"
done
run 0 "export to a relative path" export defs.json
row "export says the absolute path" "Exported definitions to $WORK/defs.json." "$out"
python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
names = sorted(u["name"] for u in d["users"])
assert names == ["admin", "alice", "carol", "watcher", "zo\u00eb"], names
assert {"user": "alice", "vhost": "dev", "configure": ".*", "write": ".*", "read": ".*"} in d["permissions"]
assert any(p["name"] == "keep" for p in d["policies"])' "$WORK/defs.json" &&
	ok "the export holds the users, permissions and policies" ||
	fail "export content: $(head -c 600 "$WORK/defs.json")"
run 0 "delete_user admin" delete_user admin
run 0 "clear_policy -p dev keep" clear_policy -p dev keep
run 0 "clear_acl watcher #" clear_acl watcher '#'
run 0 "import from a relative path" import defs.json
# rows compared as sets: re-added rules may list in another order
rows() { python3 -c 'import json, sys
d = list(json.loads(sys.stdin.read()).values())[0]
cols = sorted(k for k, v in d.items() if isinstance(v, list))
print(sorted(zip(*[d[k] for k in cols])))'; }
for l in users vhosts permissions topic_permissions acls policies; do
	expect "after import, $l as before" "$(rows <"$WORK/before.$l")" "$(ctl --json "$l" | rows)"
done
expect "admin logs in with its password after the import" "ok" \
	"$(step "$(cl amqp admin "$PW_ADMIN" /)" open)"
run 1 "import of a missing file" import "$WORK/missing.json"
cd - >/dev/null

# >>> clear_permissions, delete_user: the user and its rules go
run 0 "clear_permissions -p dev alice" clear_permissions -p dev alice
row "clear_permissions says what it did" 'Cleared permissions of user "alice" on vhost "dev".' "$out"
run 0 "permissions -p dev" permissions -p dev
norow "permissions -p dev: alice's row gone" "alice dev .* .* .*" "$out"
run 0 "delete_user alice" delete_user alice
run 0 "permissions" permissions
if grep -q '^alice ' <<<"$out"; then fail "alice's permissions left: $out"; else
	ok "alice's permissions gone with her"; fi
run 0 "acls" acls
norow "alice's ACL rule gone with her" "alice sensors/%u/# readwrite" "$out"
expect "MQTT 5 alice after delete_user: 0x86" "0x86" "$(cl mqtt alice "$PW_ALICE2" 5)"

# >>> a listing longer than one telemetry reply (16 KiB) comes in pages, joined by tachyonctl
long=$(printf 'x%.0s' $(seq 110))
for i in $(seq 150); do ctl add_user "page-$i-$long" pw >/dev/null || fail "add_user page-$i"; done
run 0 "users with 150 long names" users
expect "users: every row, in one table" 155 "$(grep -c '^' <<<"$out")"
run 0 "users --json with 150 long names" --json users
jcheck "users --json: the pages merged" 'len(d["name"]) == 154 and d["total"] == 154 and "next" not in d' "$out"
run 0 "raw /tachyon/users" raw /tachyon/users
jcheck "raw /tachyon/users: the first page says where the next starts" \
	'0 < d["next"] == len(d["name"]) < 154' "$out"

# >>> data-plane priority classes: a policy on users; a login takes its user's class, and the
# worker counts (and sorts first) the frames of critical connections, bulk ones last
run 0 "set_policy desk (users, critical)" set_policy desk '^admin$' '{"priority-class":"critical"}' \
	--apply-to users
c0=$(counter prio_rx_critical)
ct0=$(counter prio_tx_critical)
expect "admin logs in under the desk policy" "ok" "$(step "$(cl amqp admin "$PW_ADMIN" /)" open)"
c1=$(counter prio_rx_critical)
ct1=$(counter prio_tx_critical)
[ "$c1" -gt "$c0" ] && ok "prio_rx_critical moved with admin's frames ($c0 -> $c1)" ||
	fail "prio_rx_critical did not move: $c0 -> $c1"
[ "$ct1" -gt "$ct0" ] && ok "prio_tx_critical moved with admin's AMQP replies ($ct0 -> $ct1)" ||
	fail "prio_tx_critical did not move: $ct0 -> $ct1"
run 0 "set_policy desk (users, bulk)" set_policy desk '^admin$' '{"priority-class":"bulk"}' \
	--apply-to users
b0=$(counter prio_rx_bulk)
bt0=$(counter prio_tx_bulk)
expect "admin logs in as bulk" "ok" "$(step "$(cl amqp admin "$PW_ADMIN" /)" open)"
b1=$(counter prio_rx_bulk)
bt1=$(counter prio_tx_bulk)
[ "$b1" -gt "$b0" ] && ok "prio_rx_bulk moved with admin's frames ($b0 -> $b1)" ||
	fail "prio_rx_bulk did not move: $b0 -> $b1"
[ "$bt1" -gt "$bt0" ] && ok "prio_tx_bulk moved with admin's AMQP replies ($bt0 -> $bt1)" ||
	fail "prio_tx_bulk did not move: $bt0 -> $bt1"
run 1 "a priority class on queues is refused" set_policy bad '.*' '{"priority-class":"bulk"}' \
	--apply-to queues
run 0 "clear_policy desk" clear_policy desk

# A critical and a bulk MQTT subscriber of one topic, on one worker, and a publisher (normal):
# both get every message, and the critical one's copy leaves the router first — the order of
# the frames on tq0, read by a packet socket in the namespace. The two rounds swap the classes
# of the same two sessions (kept across connections: clean session 0), so their order without
# classes (session key order, the same in both rounds) is the wrong one in one of them.
prio_probe() { # prio_probe CRITICAL_USER BULK_USER ROUND: "ok N" or what went wrong
	in_ns env TACHYONCTL="$TACHYONCTL" TQ_PREFIX="$PREFIX" timeout 60 /usr/bin/python3 - \
		"$ROUTER" $MQTT_PORT "$1" "$2" "$3" 2>&1 <<'EOF' || true
import os, socket, struct, subprocess, sys, time

host, port, crit, bulk, rnd = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
N = 8

def mstr(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b

def pkt(first, body):
    n, v = len(body), b""
    while True:
        d, n = n % 128, n // 128
        v += bytes([d | (0x80 if n else 0)])
        if not n:
            return bytes([first]) + v + body

class Client:
    def __init__(self, user, clean):
        self.s = socket.create_connection((host, port), timeout=10)
        self.buf = b""
        flags = 0xC0 | (0x02 if clean else 0)
        self.s.sendall(pkt(0x10, mstr("MQTT") + bytes([4, flags]) + struct.pack("!H", 60) +
                           mstr("prio-" + user) + mstr(user) + mstr("pw")))
        t, b = self.read()
        if t >> 4 != 2 or b[1] != 0:
            sys.exit(f"{user}: CONNACK {b.hex()}")
        self.port = self.s.getsockname()[1]
        self.addr = self.s.getsockname()[0]

    def read(self):
        while True:
            n, mult, i = 0, 1, 1
            while i < len(self.buf):
                n += (self.buf[i] & 0x7F) * mult
                mult *= 128
                i += 1
                if not self.buf[i - 1] & 0x80:
                    if len(self.buf) >= i + n:
                        first, body = self.buf[0], self.buf[i:i + n]
                        self.buf = self.buf[i + n:]
                        return first, body
                    break
            chunk = self.s.recv(65536)
            if not chunk:
                sys.exit("connection closed")
            self.buf += chunk

def worker_of(c):
    out = subprocess.run([os.environ["TACHYONCTL"], "-p", os.environ["TQ_PREFIX"], "conns"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines()[1:]:
        f = line.split()
        if len(f) > 3 and f[2] == f"{c.addr}:{c.port}" and f[3] == "ESTABLISHED":
            return f[0]
    return None

cap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
cap.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
cap.bind(("tq0", 0))
sc = Client(crit, False)
sb = Client(bulk, False)
for _ in range(40):  # two workers: the bulk one again until both are on the same worker
    if worker_of(sc) is not None and worker_of(sc) == worker_of(sb):
        break
    sb.s.close()
    time.sleep(0.05)
    sb = Client(bulk, False)
else:
    sys.exit("the two subscribers never shared a worker")
for c in (sc, sb):
    c.s.sendall(pkt(0x82, struct.pack("!H", 1) + mstr("prio/t") + b"\x00"))
    while c.read()[0] >> 4 != 9:
        pass
pub = Client("prio-pub", True)
for _ in range(40):  # the publisher too (its worker counts its output only beside classes)
    if worker_of(pub) == worker_of(sc):
        break
    pub.s.close()
    pub = Client("prio-pub", True)
else:
    sys.exit("the publisher never joined the subscribers' worker")
cap.setblocking(False)
try:
    while cap.recv(65536):
        pass
except BlockingIOError:
    pass
marks = [f"prio-mark-{rnd}-{k}".encode() for k in range(N)]
for k, m in enumerate(marks):
    pub.s.sendall(pkt(0x32, mstr("prio/t") + struct.pack("!H", k + 1) + m))
    for c in (pub, sc, sb):  # the PUBACK, then each subscriber's copy
        while True:
            t, b = c.read()
            if (c is pub and t >> 4 == 4) or (t >> 4 == 3 and b.endswith(m)):
                break
time.sleep(0.2)
order = {m: [] for m in marks}  # per message: the subscriber ports its frames went to
try:
    while True:
        f = cap.recv(65536)
        if len(f) < 34 or f[12:14] != b"\x08\x00" or f[23] != 6:
            continue
        ip, ihl = f[14:], (f[14] & 15) * 4
        if socket.inet_ntoa(ip[12:16]) != host:
            continue
        tcp = ip[ihl:]
        dport, payload = struct.unpack("!H", tcp[2:4])[0], tcp[(tcp[12] >> 4) * 4:]
        for m in marks:
            if m in payload:
                order[m].append(dport)
except BlockingIOError:
    pass
bad = [(m.decode(), o) for m, o in order.items()
       if not o or o[0] != sc.port or sb.port not in o]
if bad:
    sys.exit(f"critical {sc.port}, bulk {sb.port}; frames per message: {bad}")
if rnd == "2":  # the kept sessions go
    for c in (sc, sb):
        c.s.close()
    for u in (crit, bulk):
        Client(u, True).s.sendall(b"\xe0\x00")
print("ok", N)
EOF
}
for u in prio-hi prio-lo prio-pub; do
	run 0 "add_user $u" add_user "$u" pw
	run 0 "set_acl $u prio/# readwrite" set_acl "$u" 'prio/#' readwrite
done
mapfile -t tx0 < <(stats prio_tx_critical_bytes prio_tx_normal_bytes prio_tx_bulk_bytes)
for round in 1 2; do
	if [ $round = 1 ]; then crit=prio-hi bulk=prio-lo; else crit=prio-lo bulk=prio-hi; fi
	run 0 "set_policy desk ($crit critical)" set_policy desk "^$crit\$" \
		'{"priority-class":"critical"}' --apply-to users
	run 0 "set_policy batch ($bulk bulk)" set_policy batch "^$bulk\$" \
		'{"priority-class":"bulk"}' --apply-to users
	expect "round $round: $crit (critical) and $bulk (bulk) get all 8 messages, $crit's first" \
		"ok 8" "$(prio_probe "$crit" "$bulk" $round)"
done
mapfile -t tx1 < <(stats prio_tx_critical_bytes prio_tx_normal_bytes prio_tx_bulk_bytes)
# each subscriber got 16 PUBLISHes of >= 21 bytes as critical or bulk; the publisher's
# CONNACKs and PUBACKs are normal
names=(prio_tx_critical_bytes prio_tx_normal_bytes prio_tx_bulk_bytes)
least=(336 20 336)
for i in 0 1 2; do
	[ $((tx1[i] - tx0[i])) -ge "${least[i]}" ] && ok "${names[i]} moved: ${tx0[i]} -> ${tx1[i]}" ||
		fail "${names[i]}: ${tx0[i]} -> ${tx1[i]}, expected at least +${least[i]}"
done
# AMQP: at a queue's home the class breaks ties between consumers of equal x-priority, so
# the critical consumer (prio-lo now) takes messages while it has room, the bulk one the rest;
# without classes the two would share them round robin (4 and 4)
for u in prio-hi prio-lo; do run 0 "set_permissions $u" set_permissions "$u" '.*' '.*' '.*'; done
r=$(in_ns timeout 60 /usr/bin/python3 - "$ROUTER" $AMQP_PORT 2>&1 <<'EOF'
import sys, time
import pika

host, port = sys.argv[1], int(sys.argv[2])

def conn(user):
    return pika.BlockingConnection(pika.ConnectionParameters(
        host, port, "/", pika.PlainCredentials(user, "pw")))

pub = conn("prio-lo")
pch = pub.channel()
pch.queue_declare("prio.q")
got = {}
conns = []
for user in ("prio-hi", "prio-lo"):  # the bulk consumer subscribes first
    c = conn(user)
    ch = c.channel()
    ch.basic_qos(prefetch_count=5)
    got[user] = 0

    def on_msg(chan, method, props, body, user=user):
        got[user] += 1

    ch.basic_consume("prio.q", on_msg)
    conns.append(c)
for _ in range(8):
    pch.basic_publish("", "prio.q", b"m")
deadline = time.time() + 10
while sum(got.values()) < 8 and time.time() < deadline:
    for c in conns:
        c.process_data_events(time_limit=0.05)
print(got["prio-lo"], got["prio-hi"])
for c in conns:
    c.close()
pch.queue_delete("prio.q")
pub.close()
EOF
)
expect "AMQP consumers of equal x-priority: critical takes its prefetch (5), bulk the rest" \
	"5 3" "$r"
run 0 "clear_policy desk" clear_policy desk
run 0 "clear_policy batch" clear_policy batch
for u in prio-hi prio-lo prio-pub; do run 0 "delete_user $u" delete_user "$u"; done

# >>> live tuning: set/get (control/tq_tune.h)
run 0 "get dataplane.burst" get dataplane.burst
expect "get dataplane.burst: the configured 32" "dataplane.burst = 32" "$out"
run 0 "set dataplane.burst=16 auth.fail_delay_ms=0" set dataplane.burst=16 auth.fail_delay_ms=0
run 0 "get after set" get dataplane.burst auth.fail_delay_ms
expect "get shows what set changed" "dataplane.burst = 16"$'\n'"auth.fail_delay_ms = 0" "$out"
run 1 "set tcp.max_conns (needs a restart)" set tcp.max_conns=1000
expect_re "set tcp.max_conns says why" ".*cannot change while tachyond runs.*" "$err"
run 1 "set dataplane.burst=999 (out of range)" set dataplane.burst=999
expect_re "set out of range says the range" ".*\[1, 64\].*" "$err"
run 1 "get of an unknown setting" get nope.key
run 2 "set without a value" set dataplane.burst
run 0 "workers" workers
expect "workers: one row per worker" "$WORKERS" "$(tail -n +2 <<<"$out" | grep -cE '^[0-9]+ +[0-9]+ +[0-9.]+% ')"

# >>> close_connection: the operator closes a peer's connections, in each protocol's words
PROBE=$(dirname "$0")/kill_probe.py
in_ns /usr/bin/python3 "$PROBE" amqp "$ROUTER" $AMQP_PORT admin "$PW_ADMIN" >"$WORK/kill.amqp" 2>&1 &
kp1=$!
in_ns /usr/bin/python3 "$PROBE" mqtt5 "$ROUTER" $MQTT_PORT admin "$PW_ADMIN" >"$WORK/kill.mqtt" 2>&1 &
kp2=$!
for _ in $(seq 100); do
	grep -q ready "$WORK/kill.amqp" && grep -q ready "$WORK/kill.mqtt" && break
	sleep 0.1
done
k0=$(counter conns_killed)
run 0 "close_connection $HOST" close_connection "$HOST"
wait "$kp1" "$kp2" || true
expect "AMQP client: 320 CONNECTION_FORCED" \
	"ready closed: 320 CONNECTION_FORCED - closed by the operator" "$(tr '\n' ' ' <"$WORK/kill.amqp" | sed 's/ $//')"
expect "MQTT 5 client: DISCONNECT 0x98" "ready disconnect: 0x98" \
	"$(tr '\n' ' ' <"$WORK/kill.mqtt" | sed 's/ $//')"
expect "conns_killed counts both" "$((k0 + 2))" "$(counter conns_killed)"
run 1 "close_connection of a bad address" close_connection 300.1.2.3
run 2 "close_connection without an address" close_connection

kill -0 "$pid" 2>/dev/null || fail "tachyond died: $(tail -20 "$LOG")"
it_stop
