# Shared by the integration tests: a private namespace with tachyond on a TAP, the Linux
# kernel as peer, counters through tachyonctl, and cleanup on any exit. Source it after
# setting TACHYOND, TACHYONCTL, WORKERS and NAME (the namespace is tq-$NAME-$$).
# shellcheck shell=bash
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/common.sh"

NS=tq-$NAME-$$
PREFIX=tq-$NAME-$$
ROUTER=198.18.0.2
HOST=198.18.0.1
LOG=$(mktemp "/tmp/tq-$NAME-XXXXXX.log")
pid=
failures=0

it_cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
	ip netns del "$NS" 2>/dev/null || true
	rm -f "$LOG"
}
trap it_cleanup EXIT

tq_require_root
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ctl() { "$TACHYONCTL" -p "$PREFIX" "$@"; }
# expect LABEL WANT GOT: exactly
expect() {
	if [ "$3" = "$2" ]; then ok "$1"; else fail "$1: expected '$2', got '$3'"; fi
}
# expect_re LABEL REGEX GOT: the whole of GOT matches the extended regular expression
expect_re() {
	if [[ $3 =~ ^($2)$ ]]; then ok "$1 ($3)"; else fail "$1: expected /$2/, got '$3'"; fi
}
# run WANT_RC LABEL ARGS...: tachyonctl ARGS exits WANT_RC; stdout in $out, stderr in $err
run() {
	local want=$1 label=$2 rc=0 ef
	shift 2
	ef=$(mktemp)
	out=$(ctl "$@" 2>"$ef") || rc=$?
	err=$(cat "$ef")
	rm -f "$ef"
	if [ "$rc" -eq "$want" ]; then ok "$label: exit $rc"; else
		fail "$label: exit $rc, expected $want (stdout '$out', stderr '$err')"
	fi
}
in_ns() { ip netns exec "$NS" "$@"; }
# stats NAME...: the totals of counters, one per line
stats() {
	ctl --json stats | python3 -c "
import json, sys
s = json.load(sys.stdin)['/tachyon/stats']
for name in sys.argv[1:]:
    print(s[name])" "$@"
}
counter() { stats "$1"; }

# it_start [tachyond options...]: namespace, tachyond on tq0 at $ROUTER, kernel at $HOST.
it_start() {
	local lcores
	case $WORKERS in
	1) lcores="0@0,1@1" ;;
	2) lcores="0@0,1@1,2@0" ;; # three lcores on two CPUs: fine with adaptive idle
	*) tq_die "WORKERS must be 1 or 2" ;;
	esac
	ip netns add "$NS"
	in_ns ip link set lo up
	# Not through in_ns: $! must be tachyond itself (ip netns exec execs it).
	# shellcheck disable=SC2046
	ip netns exec "$NS" "$TACHYOND" --lcores "$lcores" $(tq_eal_mem_args 256) --no-pci \
		--file-prefix "$PREFIX" --vdev=net_tap0,iface=tq0 --log-level='*:warning' -- \
		--idle adaptive --ipv4 "0=$ROUTER/24" "$@" >"$LOG" 2>&1 &
	pid=$!
	tq_wait_for "ip netns exec $NS ip link show tq0" 30 || { cat "$LOG"; tq_die "no tq0"; }
	in_ns ip addr add "$HOST/24" dev tq0
	in_ns ip link set tq0 up
	tq_wait_for "$TACHYONCTL -p $PREFIX info" 30 || { cat "$LOG"; tq_die "tachyond not answering"; }
}

# it_stop: SIGTERM, a clean exit within 10 s (no leaks under ASan), the namespace removed;
# then the verdict: exit status of the test.
it_stop() {
	kill -TERM "$pid"
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		fail "tachyond still running 10 s after SIGTERM"
	else
		local rc=0
		wait "$pid" || rc=$?
		pid=
		[ "$rc" -eq 0 ] && grep -q 'tachyond: stopped' "$LOG" && ok "clean exit on SIGTERM" ||
			fail "exit code $rc: $(tail -20 "$LOG")"
	fi
	ip netns del "$NS"
	ip netns list | grep -qw "$NS" && fail "namespace $NS still there" || ok "namespace removed"
	# DPDK leaves its runtime folder (telemetry socket, memory maps) behind: ours goes
	[ -z "$pid" ] && rm -rf "/var/run/dpdk/$PREFIX"
	echo "$failures failure(s)"
	[ "$failures" -eq 0 ]
}
