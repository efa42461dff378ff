#!/usr/bin/env python3
"""(scripts/libvirt-setup.sh's copy of the reference tools/subreaper.py; it removes
its pidfile only while the file still names it.)

Run a command under a prompt-reaping child subreaper, daemonized.

Why: in this container PID 1 (/process_api) reaps orphaned zombies only every
~1-2 s. libvirt daemonizes QEMU (so QEMU's parent becomes the nearest subreaper,
normally PID 1) and, after SIGTERM, polls kill(pid, 0) every 200 ms until it gets
ESRCH. A zombie still answers kill(pid, 0), so every QEMU teardown (probe, destroy,
save, guest shutdown) costs an extra 1-2 s that a systemd host does not have.
Running libvirtd below this subreaper makes orphaned QEMUs our children, and we
reap them at once.

usage: subreaper.py PIDFILE -- CMD [ARGS...]
  Forks into the background (setsid), writes its own pid to PIDFILE, sets
  PR_SET_CHILD_SUBREAPER, runs CMD, then reaps children until none are left.
"""
import ctypes, os, sys

PR_SET_CHILD_SUBREAPER = 36


def main():
    if len(sys.argv) < 4 or sys.argv[2] != '--':
        sys.exit(__doc__)
    pidfile, cmd = sys.argv[1], sys.argv[3:]
    if os.fork() > 0:
        return 0
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    with open(pidfile, 'w') as f:
        f.write('%d\n' % os.getpid())
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit('prctl(PR_SET_CHILD_SUBREAPER) failed: errno %d' % ctypes.get_errno())
    devnull = os.open('/dev/null', os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    pid = os.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    while True:
        try:
            os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
    # Only our own pidfile: after a libvirtd restart a newer subreaper owns it.
    try:
        with open(pidfile) as f:
            if f.read().strip() == str(os.getpid()):
                os.unlink(pidfile)
    except OSError:
        pass
    os._exit(0)


if __name__ == '__main__':
    sys.exit(main())
