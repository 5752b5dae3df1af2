#!/usr/bin/python3
"""perfsplit.py PERF_DATA REQUESTS HZ COMM... - where the CPU of a proxy's
processes went during one wrk run recorded with `perf record -a -g -e
cpu-clock -F HZ`, in µs per request answered.

Prints one line of numbers, each µs per request, in this order:
  program  user time in the proxy's own executable (libcurl and llhttp
           are inside gfproxy's static builds, outside nginx's)
  libs     user time in shared libraries (libc, libcurl, ...) and the vDSO
  send     kernel time under a system call that sends (write, writev,
           sendto, sendmsg, sendfile): on loopback this carries the
           receiver's TCP processing and its wakeup
  recv     kernel time under a system call that receives (read, readv,
           recvfrom, recvmsg)
  wait     kernel time under a system call that waits (poll, ppoll, select,
           epoll_wait)
  other    kernel time anywhere else: other system calls, interrupts, page
           faults, scheduling on the way back to user space
  total    the sum

cpu-clock samples each CPU HZ times a second, so a sample stands for
1/HZ s of CPU; with no hardware counters in a VM this is the one profile
perf can take here. COMM are the process names (/proc/PID/comm) to count."""
import subprocess
import sys

SEND = ("write", "writev", "sendto", "sendmsg", "sendmmsg", "sendfile")
RECV = ("read", "readv", "recvfrom", "recvmsg", "recvmmsg")
WAIT = ("poll", "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait")


def syscall_of(frames):
    """The system call a kernel stack is under, from the frame that
    do_syscall_64 called (x64_sys_call dispatches in newer kernels)."""
    for i, sym in enumerate(frames):
        if sym in ("do_syscall_64", "x64_sys_call") and i > 0:
            callee = frames[i - 1]
            if callee == "x64_sys_call" and i > 1:
                callee = frames[i - 2]
            for prefix in ("__x64_sys_", "__do_sys_", "__se_sys_", "do_", "ksys_"):
                if callee.startswith(prefix):
                    callee = callee[len(prefix):]
                    break
            return callee
    return None


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    data, requests, hz = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    comms = set(sys.argv[4:])
    out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,ip,sym,dso"],
                         capture_output=True, text=True, errors="replace", check=True).stdout
    cost = dict.fromkeys(("program", "libs", "send", "recv", "wait", "other"), 0)
    for sample in out.split("\n\n"):
        lines = sample.strip("\n").split("\n")
        if len(lines) < 2 or lines[0].strip() not in comms:
            continue
        frames, dsos = [], []
        for line in lines[1:]:
            parts = line.split()
            if len(parts) < 3:
                continue
            frames.append(parts[1])
            dsos.append(parts[-1].strip("()"))
        if not frames:
            continue
        if dsos[0] != "[kernel.kallsyms]":
            exe = dsos[0].rsplit("/", 1)[-1]
            cost["program" if exe[:15] in comms else "libs"] += 1
            continue
        call = syscall_of(frames)
        if call in SEND:
            cost["send"] += 1
        elif call in RECV:
            cost["recv"] += 1
        elif call in WAIT:
            cost["wait"] += 1
        else:
            cost["other"] += 1
    usec = 1e6 / hz / max(requests, 1)
    values = [cost[k] * usec for k in ("program", "libs", "send", "recv", "wait", "other")]
    print(" ".join("%.1f" % v for v in values + [sum(values)]))


if __name__ == "__main__":
    main()
