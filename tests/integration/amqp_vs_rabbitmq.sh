#!/usr/bin/env bash
# A developer's check of amqp_scenarios.py itself: runs the scenarios against Debian's
# rabbitmq-server (the reference broker), a private node started here on 127.0.0.1 on free high
# ports with a throw-away config, data and log directory (and its own epmd on a private port),
# with the rabbitmq_mqtt plugin so that the MQTT<->AMQP bridge scenarios run too; stopped on any
# exit by `rabbitmqctl stop`, then by the PIDs started here. Not part of the test suite (not in
# meson). Nothing of the system's RabbitMQ (a node on 5672, /var/lib/rabbitmq, the default epmd
# on 4369) is used or touched.
#
# usage: amqp_vs_rabbitmq.sh [SCENARIO...]     (default: all, then the amqp-tools block of
#                                               test_amqp.sh)
# RABBITMQ_EXTRA_CONF="key = value\n..." adds to rabbitmq.conf, e.g. to see the scenarios fail on a
# crippled broker ("channel_max = 2", "frame_max = 8192", "heartbeat = 0").
# KEEP=1 leaves the node running (prints how to reach and stop it); VERBOSE=1 prints its log.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
SBIN=/usr/lib/rabbitmq/bin # the real scripts (/usr/sbin's wrappers su to the rabbitmq user)
# The reference broker is not among scripts/test's packages (its postinst may start a node):
# this script installs it when it is missing.
if [ ! -x "$SBIN/rabbitmq-server" ]; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
fi
[ -x "$SBIN/rabbitmq-server" ] || {
	echo "no $SBIN/rabbitmq-server: apt-get install rabbitmq-server" >&2
	exit 1
}

dir=$(mktemp -d /tmp/tq-rabbit-XXXXXX)
rpid='' epid=''
export HOME=$dir # the Erlang cookie of this node and of rabbitmqctl lives here
export RABBITMQ_NODENAME=tqtest-$$@localhost
ctl() { timeout 60 "$SBIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" "$@"; }
cleanup() {
	if [ -n "$rpid" ] && kill -0 "$rpid" 2>/dev/null; then
		ctl stop >/dev/null 2>&1 || true
		for _ in $(seq 100); do kill -0 "$rpid" 2>/dev/null || break; sleep 0.1; done
		# the wrapper shell turns TERM into a clean stop; its beam.smp child is in our group
		kill -TERM "$rpid" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$rpid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$rpid" 2>/dev/null || true
		wait "$rpid" 2>/dev/null || true
	fi
	if [ -n "$epid" ] && kill -0 "$epid" 2>/dev/null; then
		kill -TERM "$epid" 2>/dev/null || true
		wait "$epid" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT

# free ports: bound by the kernel's choice, then released for the node
read -r AMQP_PORT MQTT_PORT DIST_PORT EPMD_PORT < <(/usr/bin/python3 -c '
import socket
ss = [socket.socket() for _ in range(4)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')

export ERL_EPMD_PORT=$EPMD_PORT ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$AMQP_PORT
export RABBITMQ_DIST_PORT=$DIST_PORT
export RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf # not /etc/rabbitmq's
export RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf
export RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config
export RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
export RABBITMQ_MNESIA_BASE=$dir/mnesia RABBITMQ_LOG_BASE=$dir/log
export RABBITMQ_PID_FILE=$dir/rabbitmq.pid
export RABBITMQ_CTL_DIST_PORT_MIN=$((DIST_PORT + 10000 > 65000 ? DIST_PORT - 20000 : DIST_PORT + 10000))
export RABBITMQ_CTL_DIST_PORT_MAX=$((RABBITMQ_CTL_DIST_PORT_MIN + 10))
mkdir -p "$RABBITMQ_MNESIA_BASE" "$RABBITMQ_LOG_BASE"
: >"$RABBITMQ_CONF_ENV_FILE"
echo '[].' >"$RABBITMQ_ADVANCED_CONFIG_FILE"
echo '[rabbitmq_mqtt].' >"$RABBITMQ_ENABLED_PLUGINS_FILE"
cat >"$RABBITMQ_CONFIG_FILE" <<EOF
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
mqtt.listeners.tcp.default = 127.0.0.1:$MQTT_PORT
mqtt.allow_anonymous = true
mqtt.default_user = guest
mqtt.default_pass = guest
mqtt.exchange = amq.topic
log.console = false
log.file.level = info
EOF
printf '%b\n' "${RABBITMQ_EXTRA_CONF:-}" >>"$RABBITMQ_CONFIG_FILE"

# our own epmd, in the foreground (so that its PID is ours to stop), on the private port
epmd -port "$EPMD_PORT" -address 127.0.0.1 >"$dir/epmd.log" 2>&1 &
epid=$!
"$SBIN/rabbitmq-server" >"$dir/server.out" 2>&1 &
rpid=$!
up=
for _ in $(seq 600); do
	if /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $AMQP_PORT), 1)" \
		2>/dev/null && /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $MQTT_PORT), 1)" 2>/dev/null; then
		up=1
		break
	fi
	kill -0 "$rpid" 2>/dev/null || break
	sleep 0.1
done
[ -n "$up" ] || {
	echo "rabbitmq-server did not come up:" >&2
	tail -30 "$dir/server.out" "$dir"/log/*.log >&2 2>/dev/null || true
	exit 1
}
version=$(ctl version 2>/dev/null || echo '?')
echo "rabbitmq-server $version: AMQP 127.0.0.1:$AMQP_PORT, MQTT 127.0.0.1:$MQTT_PORT" \
	"(node $RABBITMQ_NODENAME, pid $rpid, epmd $EPMD_PORT pid $epid, dir $dir)"

if [ -n "${KEEP:-}" ]; then
	trap - EXIT
	cat <<EOF
left running. Reach it with: /usr/bin/python3 $here/amqp_scenarios.py 127.0.0.1 $AMQP_PORT
Stop it with: HOME=$dir ERL_EPMD_PORT=$EPMD_PORT $SBIN/rabbitmqctl -n $RABBITMQ_NODENAME stop; kill $epid; rm -rf $dir
EOF
	exit 0
fi

# What RabbitMQ 3.10 does against the AMQP 0-9-1 specification (see amqp_scenarios.py): noted,
# not failed. AMQP_KNOWN_DEVIATIONS= (empty) in the environment shows them as failures.
export AMQP_KNOWN_DEVIATIONS=${AMQP_KNOWN_DEVIATIONS-unknown_method,bad_field_type,header_decode,channel_max}
export AMQP_MQTT_PORT=$MQTT_PORT

# the librabbitmq client, built here as test_amqp.sh does
AMQP_C_CLIENT=$dir/amqp_librabbitmq
cc -O2 -Wall -o "$AMQP_C_CLIENT" "$here/amqp_librabbitmq.c" -lrabbitmq
export AMQP_C_CLIENT

rc=0
t0=$(date +%s)
/usr/bin/python3 "$here/amqp_scenarios.py" 127.0.0.1 "$AMQP_PORT" "$@" || rc=$?

# the command-line clients too: test_amqp.sh's own block, with its helpers for 127.0.0.1
clients() {
	# shellcheck disable=SC2034 # used by the block
	local ROUTER=127.0.0.1 cdir=$dir f=0 r q getrc cpid
	in_ns() { "$@"; }
	ok() { echo "ok: $*"; }
	fail() { echo "FAIL: $*"; f=1; }
	# shellcheck disable=SC1090
	source <(sed -n '/^# >>> clients/,/^# <<< clients/p' "$here/test_amqp.sh")
	return $f
}
[ $# -eq 0 ] && { clients || rc=1; }
echo "$(($(date +%s) - t0)) s in all"

if ! kill -0 "$rpid" 2>/dev/null; then
	echo "FAIL: rabbitmq-server died"
	rc=1
fi
# for calibrating test_amqp.sh's counter minimums
log() { cat "$dir"/log/*.log | grep -c "$1" || true; }
echo "RabbitMQ's log: $(log 'accepting AMQP connection') AMQP connections accepted," \
	"$(log 'Error on AMQP connection') closed with a connection error, $(log 'Channel error on connection')" \
	"channel errors"
if [ -n "${VERBOSE:-}" ]; then cat "$dir"/log/*.log; fi
exit $rc
