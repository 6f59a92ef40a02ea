#!/usr/bin/env bash
# Shared by the bench/ scripts, sourced after scripts/lib/common.sh: the processes a script
# started (stopped by PID, never by name) and the release tree it measures.

# PIDs this script started and has not reaped yet; stop and forget take them off.
pids=()

# tq_stop_all [TENTHS]: SIGTERM to every PID still listed, then SIGKILL to each one still
# there after TENTHS tenths of a second (default 50). For an EXIT trap.
tq_stop_all() {
	local p
	for p in "${pids[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		for _ in $(seq "${1:-50}"); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
	done
}

# forget PID: it was waited for (never signal a reaped PID: it may be someone else's now)
forget() {
	local q=() x
	for x in "${pids[@]}"; do [ "$x" = "$1" ] || q+=("$x"); done
	pids=("${q[@]}")
}

# stop PID [TENTHS]: SIGTERM, wait up to TENTHS tenths of a second (default 100; valgrind
# takes a while to write its last dump), SIGKILL, reap, forget
stop() {
	local p=$1
	kill -TERM "$p" 2>/dev/null || true
	for _ in $(seq "${2:-100}"); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
	forget "$p"
}

# tq_bench_build DIR LOG TARGET...: TARGETs of a release tree in DIR (set up the first
# time, reconfigured after), two jobs at most (the machine is shared); the output in LOG,
# its end on stderr if the build fails
tq_bench_build() {
	local dir=$1 log=$2
	shift 2
	tq_log "build (release) in $dir: $*"
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$TQ_ROOT" -Dbuildtype=release >"$log"
	else
		meson setup "$dir" "$TQ_ROOT" -Dbuildtype=release >"$log"
	fi
	ninja -C "$dir" -j2 "$@" >>"$log" || { tail -30 "$log" >&2; tq_die "build failed (see $log)"; }
}
