#!/usr/bin/env bash
# Definitions (RabbitMQ's JSON format) in and out of tachyond, as an operator sees them:
#   1. a file loaded at start (--set auth.definitions=FILE): its users log in (RabbitMQ
#      SHA-256 and SHA-512 hashes) and guest no longer does, its exchanges route to its
#      queues (direct, topic, headers with arguments, an alternate exchange, an exchange to
#      exchange binding), its policy (max-length 2) limits an imported queue and a queue a
#      client declares, with the drops dead-lettered;
#   2. tachyonctl export: every section there, twice the same text; importing the export
#      again changes nothing;
#   3. tachyonctl import of tighter policies: live queues shrink at once, their DLX (their
#      own, or one the policy gives) gets what went; purge_queue answers with the count;
#   4. a file with a bad entry: the import fails naming it, what came before stays;
#   5. the export loaded at the start of a new tachyond: the same definitions again, and
#      the same passwords still work;
#   6. a RabbitMQ 3.12 export (rabbit_version, parameters, global_parameters, tags as a
#      string, queue types): imported, its user logs in with its password.
#
# usage: test_defs.sh TACHYOND TACHYONCTL WORKERS
set -euo pipefail

TACHYOND=$1
TACHYONCTL=$2
WORKERS=$3
NAME=defs
source "$(dirname "$0")/lib.sh"
CHECK=$(dirname "$0")/defs_check.py
AMQP_PORT=5672
PASS='s3cret p@ss'

dir=$(mktemp -d /tmp/tq-defs-XXXXXX)
trap 'it_cleanup; rm -rf "$dir"' EXIT

# check LABEL COMMAND...: the helper's "ok:"/"FAIL:" lines, counted
check() {
	local out rc=0
	out=$("$@" 2>&1) || rc=$?
	while IFS= read -r line; do
		case $line in
		ok:*) ok "${line#ok: }" ;;
		FAIL:*) fail "${line#FAIL: }" ;;
		*) [ -n "$line" ] && echo "  $line" ;;
		esac
	done <<<"$out"
	[ $rc -eq 0 ] || grep -q '^FAIL' <<<"$out" || fail "$*: exit $rc"
}
# amqp USER PASSWORD CHECK [ARGS]: pika against the router, inside the namespace
amqp() { check in_ns /usr/bin/python3 "$CHECK" client "$ROUTER" $AMQP_PORT "$@"; }
# the policy tachyonctl lists for queue $1 of "/"
queue_policy() {
	ctl --json queues | /usr/bin/python3 -c '
import json, sys
q = json.load(sys.stdin)["/tachyon/queues"]
for v, n, p in zip(q["vhost"], q["name"], q["policy"]):
    if v == "/" and n == sys.argv[1]:
        print(p)' "$1"
}

/usr/bin/python3 "$CHECK" write main "$dir/main.json" "$PASS"
/usr/bin/python3 "$CHECK" write tighter "$dir/tighter.json"
/usr/bin/python3 "$CHECK" write rabbit "$dir/rabbit.json" "rabbit-pass"
/usr/bin/python3 "$CHECK" write bad "$dir/bad.json"

# >>> 1. loaded at start
it_start --set amqp.port=$AMQP_PORT --set auth.definitions="$dir/main.json"
amqp op "$PASS" route
amqp viewer view login
amqp guest guest refused
amqp op wrong refused
amqp op "$PASS" maxlen 2
amqp op "$PASS" count dead 3 # the three lim.jobs dropped went to its DLX ("", key dead)
amqp op "$PASS" client_policy
p=$(queue_policy lim.jobs)
[ "$p" = lim ] && ok "tachyonctl queues: lim.jobs under policy lim" || fail "lim.jobs policy '$p'"
p=$(queue_policy q.orders)
[ -z "$p" ] && ok "tachyonctl queues: q.orders under no policy" || fail "q.orders policy '$p'"

# >>> 2. export, twice; the export imported again
ctl export "$dir/out1.json" >/dev/null && ok "tachyonctl export" || fail "tachyonctl export"
check /usr/bin/python3 "$CHECK" exported "$dir/out1.json"
ctl export "$dir/out2.json" >/dev/null || fail "second export"
cmp -s "$dir/out1.json" "$dir/out2.json" && ok "two exports: the same text" ||
	fail "two exports differ: $(diff "$dir/out1.json" "$dir/out2.json" | head -5)"
[ "$(stat -c %a "$dir/out1.json")" = 600 ] && ok "export is mode 0600 (password hashes)" ||
	fail "export mode $(stat -c %a "$dir/out1.json")"
ctl import "$dir/out1.json" >/dev/null && ok "tachyonctl import of the export: accepted" ||
	fail "re-import of the export refused"
ctl export "$dir/out3.json" >/dev/null || fail "third export"
check /usr/bin/python3 "$CHECK" same "$dir/out1.json" "$dir/out3.json"
amqp op "$PASS" route

# >>> 3. a policy changed live: the queue shrinks at once, the DLX takes what goes
amqp op "$PASS" fill lim.jobs 2
amqp op "$PASS" count lim.jobs 2
amqp op "$PASS" fill q.unrouted 3
ctl import "$dir/tighter.json" >/dev/null && ok "import of a tighter policy" ||
	fail "import tighter.json"
sleep 0.3 # the homes apply it at their next loop
amqp op "$PASS" count lim.jobs 1
amqp op "$PASS" count q.unrouted 1 # no limit of its own: the policy's, dropping into its new DLX
amqp op "$PASS" count dead 6       # 3 before, 1 from lim.jobs, 2 from q.unrouted
p=$(queue_policy q.unrouted)
[ "$p" = to-dead ] && ok "tachyonctl queues: q.unrouted now under to-dead" ||
	fail "q.unrouted policy '$p'"
r=$(ctl --json purge_queue dead 2>&1) || true
n=$(/usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])["/tachyon/purge_queue"]["purged"])' "$r" 2>/dev/null || echo "?")
[ "$n" = 6 ] && ok "purge_queue dead: 6 purged" || fail "purge_queue dead: '$r'"
amqp op "$PASS" count dead 0
r=$(ctl purge_queue no-such-queue 2>&1) && fail "purge_queue of a missing queue: '$r'" ||
	ok "purge_queue of a missing queue refused: $r"

# >>> 4. a bad entry: the import stops there and says which
r=$(ctl import "$dir/bad.json" 2>&1) && fail "bad.json imported: '$r'" || {
	case $r in
	*"queues[1] 'bad.second'"*x-max-length* | *"queues[1] 'bad.second'"*max-length*)
		ok "bad.json refused: $r" ;;
	*) fail "bad.json refused without naming queues[1] 'bad.second': '$r'" ;;
	esac
}
amqp op "$PASS" count bad.first 0 # the entries before it stay
ctl vhosts | grep -qw partial && ok "vhost 'partial' (before the bad entry) stays" ||
	fail "vhost partial missing: $(ctl vhosts)"
out=$(in_ns /usr/bin/python3 "$CHECK" client "$ROUTER" $AMQP_PORT op "$PASS" count bad.third 0 2>&1) &&
	fail "bad.third (after the bad entry) exists" || ok "bad.third (after the bad entry) not declared"
kill -0 "$pid" 2>/dev/null || fail "tachyond died: $(tail -20 "$LOG")"
it_stop

# >>> 5. the export at the start of a new tachyond: the same definitions, passwords intact
it_start --set amqp.port=$AMQP_PORT --set auth.definitions="$dir/out1.json"
ctl export "$dir/out4.json" >/dev/null || fail "export after the restart"
check /usr/bin/python3 "$CHECK" same "$dir/out1.json" "$dir/out4.json"
amqp op "$PASS" route
amqp op "$PASS" maxlen 2
amqp viewer view login
amqp guest guest refused
it_stop

# >>> 6. RabbitMQ's export
it_start --set amqp.port=$AMQP_PORT --set auth.definitions="$dir/rabbit.json"
amqp rabbit rabbit-pass rabbit
amqp rabbit wrong refused
amqp guest guest refused
p=$(queue_policy rq.inbox)
[ "$p" = expiry ] && ok "rq.inbox under RabbitMQ's policy 'expiry'" || fail "rq.inbox policy '$p'"
ctl export "$dir/out5.json" >/dev/null || fail "export of the RabbitMQ import"
/usr/bin/python3 - "$dir/out5.json" <<'EOF' && ok "its user exported with its RabbitMQ hash" || fail "rabbit user not exported as imported"
import json, sys
d = json.load(open(sys.argv[1]))
u = [u for u in d["users"] if u["name"] == "rabbit"]
sys.exit(not (u and u[0]["hashing_algorithm"] == "rabbit_password_hashing_sha256"
              and u[0]["tags"] == ["administrator"]))
EOF
it_stop
