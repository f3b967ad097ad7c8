#!/usr/bin/env python3
"""Runs a program on a pseudo-terminal and types into it, for tests of prompts, progress and Ctrl-C.

    pty-drive.py STEPS -- PROGRAM ARGS...

STEPS is a JSON list of ["expect", TEXT] (wait until TEXT appears after what was matched before), ["send", TEXT]
(type TEXT; "\\u0003" is Ctrl-C, delivered by the terminal as SIGINT) and ["close"] (stop waiting for more).
Prints one JSON object: {"status": exit code, or -N when killed by signal N, "echo": whether the terminal echoes
again after the program ended, "output": everything the program wrote to the terminal}.
The program is a session leader whose controlling terminal is the pseudo-terminal (so /dev/tty is it).
"""
import fcntl, json, os, select, signal, sys, termios, time

def main():
    steps = json.loads(sys.argv[1])
    assert sys.argv[2] == "--"
    argv = sys.argv[3:]
    master, slave = os.openpty()
    pid = os.fork()
    if pid == 0:
        os.close(master)
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        if slave > 2:
            os.close(slave)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execvp(argv[0], argv)
    out = b""
    seen = 0
    def pump(timeout):
        nonlocal out
        r, _, _ = select.select([master], [], [], timeout)
        if not r:
            return False
        try:
            chunk = os.read(master, 65536)
        except OSError:
            return None
        if not chunk:
            return None
        out += chunk
        return True
    for step in steps:
        if step[0] == "expect":
            want = step[1].encode()
            deadline = time.time() + 120
            while out.find(want, seen) < 0:
                left = deadline - time.time()
                if left <= 0 or pump(left) is None:
                    print(json.dumps({"status": None, "echo": None, "output": out.decode("utf-8", "replace"),
                                      "error": "never saw " + step[1]}))
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    return
            seen = out.find(want, seen) + len(want)
        elif step[0] == "send":
            os.write(master, step[1].encode())
        elif step[0] == "close":
            break
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        pump(0.05)
    while pump(0.05):
        pass
    code = os.waitstatus_to_exitcode(status)
    echo = bool(termios.tcgetattr(slave)[3] & termios.ECHO)
    print(json.dumps({"status": code, "echo": echo, "output": out.decode("utf-8", "replace")}))

main()
