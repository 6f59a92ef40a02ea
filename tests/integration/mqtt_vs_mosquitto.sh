#!/usr/bin/env bash
# A developer's check of mqtt_scenarios.py itself: runs the scenarios against Debian's mosquitto
# (the reference broker), started here on 127.0.0.1 on a free high port with a throw-away
# config, and stopped by its PID on any exit. Not part of the test suite (not in meson).
#
# usage: mqtt_vs_mosquitto.sh [SCENARIO...]     (default: all)
# MOSQUITTO_EXTRA_CONF="line\nline" adds to mosquitto's config, e.g. to see the scenarios fail
# on a crippled broker ("retain_available false", "max_qos 1").
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}
[ -x "$MOSQUITTO" ] || { echo "no $MOSQUITTO: apt-get install mosquitto" >&2; exit 1; }

dir=$(mktemp -d /tmp/tq-mosq-XXXXXX)
mpid=
cleanup() {
	if [ -n "$mpid" ] && kill -0 "$mpid" 2>/dev/null; then
		kill -TERM "$mpid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$mpid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$mpid" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT

# a free port: bound by the kernel's choice, then released for mosquitto
port=$(/usr/bin/python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')

cat >"$dir/mosquitto.conf" <<EOF
listener $port 127.0.0.1
allow_anonymous true
persistence false
sys_interval 1
max_queued_messages 100000
log_dest stderr
log_type error
log_type warning
log_type notice
EOF
printf '%b\n' "${MOSQUITTO_EXTRA_CONF:-}" >>"$dir/mosquitto.conf"
chmod 755 "$dir"
chmod 644 "$dir/mosquitto.conf"

"$MOSQUITTO" -c "$dir/mosquitto.conf" 2>"$dir/mosquitto.log" &
mpid=$!
for _ in $(seq 50); do
	/usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" \
		2>/dev/null && break
	kill -0 "$mpid" 2>/dev/null || { cat "$dir/mosquitto.log"; exit 1; }
	sleep 0.1
done
echo "mosquitto $("$MOSQUITTO" -h 2>/dev/null | head -1 | awk '{print $3}') on 127.0.0.1:$port (pid $mpid)"

# What mosquitto 2.0.11 does against the specification (see mqtt_scenarios.py): noted, not
# failed. MQTT_KNOWN_DEVIATIONS= (empty) in the environment shows them as failures.
export MQTT_KNOWN_DEVIATIONS=${MQTT_KNOWN_DEVIATIONS-overlap_max_qos,takeover_disconnect,receive_maximum,keepalive_timeout,resubscribe_options}

rc=0
/usr/bin/python3 "$here/mqtt_scenarios.py" 127.0.0.1 "$port" "$@" || rc=$?

# the command-line clients too: test_mqtt.sh's own block, with its helpers for 127.0.0.1
clients() {
	local ROUTER=127.0.0.1 MQTT_PORT=$port f=0
	in_ns() { "$@"; }
	ok() { echo "ok: $*"; }
	fail() { echo "FAIL: $*"; f=1; }
	expect_ok() { case $2 in ok*) ok "$1" ;; *) fail "$1: $2" ;; esac; }
	# shellcheck disable=SC1090
	source <(sed -n '/^# >>> clients/,/^# <<< clients/p' "$here/test_mqtt.sh")
	return $f
}
[ $# -eq 0 ] && { clients || rc=1; }

if ! kill -0 "$mpid" 2>/dev/null; then
	echo "FAIL: mosquitto died"; rc=1
fi
if [ -n "${VERBOSE:-}" ]; then cat "$dir/mosquitto.log"; fi
exit $rc
