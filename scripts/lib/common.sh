# Shared by scripts/run, scripts/test and the integration tests. Source it; don't run it.
# Everything here is idempotent: safe to call on a fresh Debian 12 machine or a warm one.

TQ_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Debian 12 packages the build, the tests and the demo need.
TQ_PACKAGES=(
	meson ninja-build pkg-config gcc g++ clang libclang-rt-14-dev
	dpdk dpdk-dev libdpdk-dev liburcu-dev libcunit1-dev libssl-dev libbenchmark-dev
	python3 python3-pyelftools iproute2 iputils-ping arping iptables netcat-openbsd
	iperf3 ethtool mosquitto-clients python3-paho-mqtt mosquitto
	python3-pika python3-amqp python3-kombu amqp-tools librabbitmq-dev libmicrohttpd-dev curl
)

tq_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
tq_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

tq_require_root() {
	[ "$(id -u)" -eq 0 ] || tq_die "run as root: DPDK, hugepages, TAP devices and network namespaces need it"
}

# Install whatever of TQ_PACKAGES is missing (apt-get update first, as Debian wants).
tq_install_deps() {
	local missing=() p
	for p in "${TQ_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	tq_log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
}

tq_hugetlbfs_mounted() {
	awk '$2 == "/dev/hugepages" && $3 == "hugetlbfs" {f = 1} END {exit !f}' /proc/mounts
}

# Reserve 2 MiB hugepages and mount hugetlbfs; quietly fine when the machine can't.
tq_hugepages() {
	local want=${1:-512}
	# /proc/mounts says "nodev /dev/hugepages hugetlbfs ..." for the mount below: match the
	# mount point and type, not the device (else every call stacks one more mount).
	if ! tq_hugetlbfs_mounted; then
		mkdir -p /dev/hugepages
		mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null || true
	fi
	local have
	have=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
	if [ "$have" -lt "$want" ]; then
		echo "$want" >/proc/sys/vm/nr_hugepages 2>/dev/null || true
	fi
}

# EAL memory options: hugepages when enough are free, else --no-huge (always works).
# $1: MiB the process needs.
tq_eal_mem_args() {
	local need_mb=${1:-256} free_pages size_kb
	free_pages=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo 2>/dev/null || echo 0)
	size_kb=$(awk '/^Hugepagesize:/ {print $2}' /proc/meminfo 2>/dev/null || echo 2048)
	if tq_hugetlbfs_mounted &&
		[ $((free_pages * size_kb / 1024)) -ge $((need_mb * 2)) ]; then
		# --huge-unlink: no hugepage files left behind, even after kill -KILL (DPDK keeps
		# them by default, and every process here has its own --file-prefix)
		echo "-m $need_mb --huge-unlink"
	else
		echo "--no-huge -m $need_mb"
	fi
}

# meson setup (or reconfigure) + compile. $1: build dir, rest: meson options.
tq_build() {
	local dir=$1
	shift
	if [ -f "$TQ_ROOT/$dir/build.ninja" ]; then
		meson setup --reconfigure "$TQ_ROOT/$dir" "$TQ_ROOT" "$@" >/dev/null
	else
		meson setup "$TQ_ROOT/$dir" "$TQ_ROOT" "$@" >/dev/null
	fi
	meson compile -C "$TQ_ROOT/$dir"
}

# Wait (up to $2 seconds, default 20) for a command to succeed.
tq_wait_for() {
	local cmd=$1 secs=${2:-20} i
	for ((i = 0; i < secs * 10; i++)); do
		eval "$cmd" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
