#!/usr/bin/env bash
# scripts/two-hosts.sh — two libvirt hosts on one machine, for `virsh migrate` between them
# (tests/libvirt's migration stories, bench). Facts behind each step:
# /work/shared/reference/libvirt/two-hosts.md.
#
#   scripts/two-hosts.sh start        create hosts a and b (idempotent: a running pair is kept)
#   scripts/two-hosts.sh stop         stop both hosts' daemons and domains, remove everything
#   scripts/two-hosts.sh status       exit 0 when both hosts answer, 1 otherwise
#   scripts/two-hosts.sh exec H CMD…  run CMD inside host H (a|b): its network, mount and UTS
#                                     namespaces (so `virsh` reaches that host's libvirtd)
#   scripts/two-hosts.sh env          print the pair's facts as shell variables
#   scripts/two-hosts.sh link up|down bring the veth link between the hosts up or down (a
#                                     broken network, for postcopy recovery)
#
# start and stop hold an exclusive flock on $DIR.lock, so that two of them never interleave;
# users that need the pair for a while (tests/libvirt, bench) hold their own lock as well
# (internal/libvirttest's LockTwoHosts, /run/lock/tlcvm-two-hosts.lock).
#
# Each host is
#   - a network namespace (tlcvm-a, tlcvm-b) joined to the other by a veth pair, with an
#     address only inside those namespaces ($NET.1 and $NET.2) and lo up;
#   - a mount and UTS namespace held open by a sleeping process, in which private copies are
#     bind-mounted over /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt,
#     /var/cache/libvirt, /etc/hosts and /etc/hostname, and the hostname is tlcvm-host-H;
#   - its own virtlogd and libvirtd (under a child subreaper, so the emulators it daemonizes
#     are reaped at once), libvirtd listening on qemu+tcp://$ADDR/system (auth none: the
#     address exists only inside the two namespaces) with a host_uuid of its own.
# Both hosts see the same $SHARED directory at the same path (shared storage); each has its own
# /var/lib/libvirt (images there are not shared: $DIR/H/lib-libvirt from outside), and every other
# path of the machine (emulator binaries, test directories) as it is.
#
# Needs root, iproute2 (ip), util-linux (unshare, nsenter), libvirt-daemon-system, python3.
# Environment: TWOHOSTS_DIR (default /run/tlcvm-two-hosts), TWOHOSTS_NET (default 10.213.0),
# TWOHOSTS_SHARED (default /var/tmp/tlcvm-two-hosts-shared), TWOHOSTS_NS (the network
# namespaces' prefix, default tlcvm): a second pair beside the first needs all four changed
# (internal/libvirttest then takes /run/lock/BASENAME-OF-TWOHOSTS_DIR.lock, not the first's).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR=${TWOHOSTS_DIR:-/run/tlcvm-two-hosts}
NET=${TWOHOSTS_NET:-10.213.0}
SHARED=${TWOHOSTS_SHARED:-/var/tmp/tlcvm-two-hosts-shared}
NS=${TWOHOSTS_NS:-tlcvm}
HOSTS=(a b)
MARK="# tlcvm two-hosts"

die() { echo "two-hosts: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root"

addr() { [[ $1 == a ]] && echo "$NET.1" || echo "$NET.2"; }
name() { echo "tlcvm-host-$1"; }
ns() { echo "$NS-$1"; }
holder() { cat "$DIR/$1/holder.pid" 2>/dev/null; }
# alive PID [PATTERN]: PID runs, and its command line matches PATTERN (an extended regex) when
# given: a pid file left by an earlier run may name a number the host has given to another
# process since (pid_max is 32768 on many hosts), which must never be killed.
alive() {
	[[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null || return 1
	[[ -z ${2:-} ]] || tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -Eq -- "$2"
}
# The holder is this script's __hostinit, which execs sleep once the host is up.
holderPat='sleep infinity|two-hosts'

inhost() { local h=$1; shift; nsenter -t "$(holder "$h")" -n -m -u -- "$@"; }

# A host is up when its holder lives and its libvirtd answers over TCP from inside it.
up() { alive "$(holder "$1")" && inhost "$1" virsh -c "qemu+tcp://$(addr "$1")/system" version >/dev/null 2>&1; }

network() {
	ip netns list | grep -qw "$(ns a)" || ip netns add "$(ns a)"
	ip netns list | grep -qw "$(ns b)" || ip netns add "$(ns b)"
	if ! ip -n "$(ns a)" link show veth-b >/dev/null 2>&1; then
		ip link add veth-b netns "$(ns a)" type veth peer name veth-a netns "$(ns b)"
		ip -n "$(ns a)" addr add "$(addr a)/24" dev veth-b
		ip -n "$(ns b)" addr add "$(addr b)/24" dev veth-a
	fi
	for h in "${HOSTS[@]}"; do
		ip -n "$(ns "$h")" link set lo up
		ip -n "$(ns "$h")" link set "$( [[ $h == a ]] && echo veth-b || echo veth-a)" up
	done
}

# files H: the host's private copies of what libvirt reads and writes.
files() {
	local h=$1 d=$DIR/$1
	mkdir -p "$d"/{run-libvirt,log-libvirt/qemu,cache-libvirt/qemu,lib-libvirt/{qemu,images,boot,dnsmasq,network}}
	if [[ ! -d $d/etc-libvirt ]]; then
		cp -a /etc/libvirt "$d/etc-libvirt"
		rm -f "$d/etc-libvirt/qemu/"*.xml "$d/etc-libvirt/qemu/networks/autostart/"*.xml
		local uuid
		uuid=$( [[ $h == a ]] && echo 5a1e0000-0000-4000-8000-00000000000a || echo 5a1e0000-0000-4000-8000-00000000000b)
		cat >>"$d/etc-libvirt/libvirtd.conf" <<EOC
$MARK
listen_tcp = 1
listen_tls = 0
auth_tcp = "none"
listen_addr = "$(addr "$h")"
host_uuid = "$uuid"
log_outputs = "1:file:/var/log/libvirt/libvirtd-debug.log"
log_filters = "1:qemu.qemu_migration 1:qemu.qemu_migration_params 1:qemu.qemu_monitor 1:qemu.qemu_monitor_json 1:qemu.qemu_process 1:util.command 3:*"
EOC
		cat >>"$d/etc-libvirt/qemu.conf" <<EOC
$MARK
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
EOC
	fi
	printf '127.0.0.1 localhost\n%s %s\n%s %s\n' "$(addr a)" "$(name a)" "$(addr b)" "$(name b)" >"$d/hosts"
	echo "$(name "$h")" >"$d/hostname"
}

# hostinit H runs inside the host's fresh namespaces: bind mounts, hostname, daemons, then
# it becomes the holder (sleeps until stop kills it).
hostinit() {
	local h=$1 d=$DIR/$1
	mount --make-rprivate /
	mount --bind "$d/etc-libvirt" /etc/libvirt
	mount --bind "$d/run-libvirt" /run/libvirt
	mount --bind "$d/lib-libvirt" /var/lib/libvirt
	mount --bind "$d/log-libvirt" /var/log/libvirt
	mount --bind "$d/cache-libvirt" /var/cache/libvirt
	mount --bind "$d/hosts" /etc/hosts
	mount --bind "$d/hostname" /etc/hostname
	hostname "$(name "$h")"
	/usr/sbin/virtlogd -d -p "$d/virtlogd.pid"
	python3 "$HERE/libvirt-subreaper.py" "$d/subreaper.pid" -- /usr/sbin/libvirtd --listen -p "$d/libvirtd.pid"
	echo $$ >"$d/holder.pid"
	exec sleep infinity
}

start() {
	command -v libvirtd >/dev/null || [[ -x /usr/sbin/libvirtd ]] || die "libvirt-daemon-system is not installed (scripts/deps.sh)"
	mkdir -p "$DIR" "$SHARED"
	network
	for h in "${HOSTS[@]}"; do
		if up "$h"; then continue; fi
		alive "$(holder "$h")" "$holderPat" && kill "$(holder "$h")"
		files "$h"
		rm -f "$DIR/$h/holder.pid"
		: >"$DIR/$h/log-libvirt/libvirtd-debug.log"
		ip netns exec "$(ns "$h")" unshare --uts --mount --propagation private -- "$0" __hostinit "$h" </dev/null >"$DIR/$h/init.log" 2>&1 9>&- &
		for _ in $(seq 1 300); do up "$h" && break; sleep 0.2; done
		up "$h" || die "host $h: libvirtd did not answer within 60 s (see $DIR/$h/init.log, $DIR/$h/log-libvirt)"
	done
	env
}

status() { up a && up b; }

# link up|down: the veth pair between the hosts (addresses and routes stay).
link() {
	ip -n "$(ns a)" link set veth-b "$1"
	ip -n "$(ns b)" link set veth-a "$1"
}

# serialize runs start or stop under the lock (fd 9; the hosts' daemons are started without
# it, or they would hold the lock for as long as they live).
serialize() {
	mkdir -p "$(dirname "$DIR")"
	exec 9>"$DIR.lock"
	flock 9
	"$@"
}

stop() {
	for h in "${HOSTS[@]}"; do
		local d=$DIR/$h
		if alive "$(holder "$h")"; then
			for dom in $(inhost "$h" virsh -c qemu:///system list --all --name 2>/dev/null); do
				inhost "$h" virsh -c qemu:///system destroy "$dom" >/dev/null 2>&1 || true
				inhost "$h" virsh -c qemu:///system undefine --managed-save --snapshots-metadata "$dom" >/dev/null 2>&1 || true
			done
		fi
		for p in libvirtd virtlogd subreaper holder; do
			local pid pat=$p
			pid=$(cat "$d/$p.pid" 2>/dev/null) || continue
			[[ $p == holder ]] && pat=$holderPat
			alive "$pid" "$pat" || continue
			kill "$pid" 2>/dev/null || true
			for _ in $(seq 1 50); do alive "$pid" "$pat" || break; sleep 0.1; done
			alive "$pid" "$pat" && kill -9 "$pid" 2>/dev/null || true
		done
	done
	for h in "${HOSTS[@]}"; do ip netns del "$(ns "$h")" 2>/dev/null || true; done
	rm -rf "$DIR" "$SHARED"
}

env() {
	echo "TWOHOSTS_A_ADDR=$(addr a)"
	echo "TWOHOSTS_B_ADDR=$(addr b)"
	echo "TWOHOSTS_A_NAME=$(name a)"
	echo "TWOHOSTS_B_NAME=$(name b)"
	echo "TWOHOSTS_A_URI=qemu+tcp://$(addr a)/system"
	echo "TWOHOSTS_B_URI=qemu+tcp://$(addr b)/system"
	echo "TWOHOSTS_SHARED=$SHARED"
	echo "TWOHOSTS_DIR=$DIR"
}

case ${1:-} in
start) serialize start ;;
stop) serialize stop ;;
status) status ;;
env) env ;;
link)
	[[ ${2:-} == up || ${2:-} == down ]] || die "usage: $0 link up|down"
	link "$2"
	;;
exec)
	[[ ${2:-} == a || ${2:-} == b ]] || die "usage: $0 exec a|b CMD..."
	h=$2; shift 2
	alive "$(holder "$h")" || die "host $h is not running ($0 start)"
	inhost "$h" "$@"
	;;
__hostinit) hostinit "$2" ;;
*) die "usage: $0 start|stop|status|env|link up|down|exec a|b CMD..." ;;
esac
