#!/usr/bin/env bash
# scripts/libvirt-setup.sh — virtlogd and libvirtd for the libvirt end-to-end suite
# (tests/libvirt) and benchmark (bench/libvirt-bench), adapted from
# /work/shared/reference/libvirt/tools/setup-libvirt.sh.
#
#   scripts/libvirt-setup.sh start   install libvirt-daemon-system/libvirt-clients if missing,
#                                    configure (idempotent marked blocks), start virtlogd and
#                                    libvirtd (under the subreaper) only if not running; the PIDs
#                                    it started are recorded in $STATE
#   scripts/libvirt-setup.sh stop    stop only what `start` recorded, by PID, then forget it
#   scripts/libvirt-setup.sh restart-libvirtd
#                                    kill libvirtd (whoever started it) and start it again the
#                                    same way; used by the reconnect test
#
# Needs root. Environment: SUBREAPER=0 runs plain `libvirtd -d`; STATE (default
# /run/tlcvm-libvirt-setup.state).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${STATE:-/run/tlcvm-libvirt-setup.state}
MARK_BEGIN="# >>> anchor setup (setup-libvirt.sh) >>>"
MARK_END="# <<< anchor setup (setup-libvirt.sh) <<<"

die() { echo "libvirt-setup: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root"

running() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

strip_block() {
	local f=$1
	[[ -f $f ]] || return 0
	if grep -qF "$MARK_BEGIN" "$f"; then
		sed -i "/^# >>> anchor setup (setup-libvirt.sh) >>>\$/,/^# <<< anchor setup (setup-libvirt.sh) <<<\$/d" "$f"
	fi
}

install() {
	local need=()
	[[ -x /usr/sbin/libvirtd ]] || need+=(libvirt-daemon-system)
	command -v virsh >/dev/null || need+=(libvirt-clients)
	command -v python3 >/dev/null || need+=(python3)
	if ((${#need[@]})); then
		echo "libvirt-setup: installing ${need[*]}" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	fi
}

configure() {
	strip_block /etc/libvirt/qemu.conf
	cat >>/etc/libvirt/qemu.conf <<EOC
$MARK_BEGIN
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
$MARK_END
EOC
	strip_block /etc/libvirt/libvirtd.conf
	cat >>/etc/libvirt/libvirtd.conf <<EOC
$MARK_BEGIN
log_filters = "1:qemu.qemu_monitor 1:qemu.qemu_monitor_json 1:qemu.qemu_process 1:qemu.qemu_command 1:qemu.qemu_capabilities 1:qemu.qemu_driver 1:qemu.qemu_migration 1:qemu.qemu_migration_params 1:qemu.qemu_saveimage 1:qemu.qemu_snapshot 1:qemu.qemu_fd 1:util.command 1:util.process 3:*"
log_outputs = "1:file:/var/log/libvirt/libvirtd-debug.log"
$MARK_END
EOC
	rm -f /etc/libvirt/qemu/networks/autostart/default.xml
	mkdir -p /var/log/libvirt/qemu /var/lib/libvirt/qemu /var/cache/libvirt/qemu /run/libvirt
}

start_libvirtd() {
	if [[ ${SUBREAPER:-1} == 1 ]]; then
		/usr/bin/python3 "$HERE/libvirt-subreaper.py" /run/libvirtd-subreaper.pid -- /usr/sbin/libvirtd
	else
		/usr/sbin/libvirtd -d
	fi
	for _ in $(seq 1 300); do
		running /run/libvirtd.pid && virsh -c qemu:///system version >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	die "libvirtd did not accept clients within 60 s"
}

case ${1:-} in
start)
	install
	configure
	: >"$STATE.new"
	if ! running /run/virtlogd.pid; then
		/usr/sbin/virtlogd -d
		for _ in $(seq 1 50); do running /run/virtlogd.pid && break; sleep 0.1; done
		echo "virtlogd $(cat /run/virtlogd.pid)" >>"$STATE.new"
	fi
	if ! running /run/libvirtd.pid; then
		start_libvirtd
		echo "libvirtd $(cat /run/libvirtd.pid)" >>"$STATE.new"
		[[ -s /run/libvirtd-subreaper.pid ]] && echo "subreaper $(cat /run/libvirtd-subreaper.pid)" >>"$STATE.new"
	fi
	cat "$STATE.new" >>"$STATE"; rm -f "$STATE.new"
	cat "$STATE"
	;;
stop)
	[[ -s $STATE ]] || exit 0
	# libvirtd first (the subreaper exits when it has no children left), virtlogd last.
	for what in libvirtd subreaper virtlogd; do
		while read -r name pid; do
			[[ $name == "$what" ]] || continue
			if kill -0 "$pid" 2>/dev/null; then
				echo "libvirt-setup: stopping $name $pid" >&2
				kill "$pid" || true
				for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			fi
		done <"$STATE"
	done
	rm -f "$STATE"
	;;
restart-libvirtd)
	running /run/libvirtd.pid || die "libvirtd is not running"
	old=$(cat /run/libvirtd.pid)
	kill "$old"
	for _ in $(seq 1 150); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$old" 2>/dev/null && die "libvirtd $old did not exit"
	# A subreaper whose libvirtd is gone exits once its last child is reaped; running
	# domains keep it alive, which is harmless: the new one reaps what it starts.
	start_libvirtd
	if [[ -s $STATE ]] && grep -q "^libvirtd $old\$" "$STATE"; then
		sed -i "s/^libvirtd $old\$/libvirtd $(cat /run/libvirtd.pid)/" "$STATE"
		[[ -s /run/libvirtd-subreaper.pid ]] && echo "subreaper $(cat /run/libvirtd-subreaper.pid)" >>"$STATE"
	fi
	echo "libvirtd $(cat /run/libvirtd.pid)"
	;;
*)
	die "usage: $0 start|stop|restart-libvirtd"
	;;
esac
