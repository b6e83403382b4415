"""`hourglass repl`: open a board's REPL through mpremote, and what every tool needs before it talks to a board.

On attach the REPL shows the board's state: without `--resume` the board is interrupted and soft-reset in its
friendly REPL (boot.py and main.py run, as after power-up, so the app's health line appears); with `--resume`
nothing is sent and the output the board sent while nobody listened is shown. Then mpremote's terminal takes
over (`mpremote connect PORT resume repl`). `--dry-run` prints what would run.

`take_over(port)` is how deploy and hil reach a board whose app may own the console (the nRF serial CoAP app
reads every byte, so mpremote's Ctrl-C and Ctrl-A sent back to back lose the Ctrl-A): one Ctrl-C, wait for
the prompt, Ctrl-B (leaves a raw REPL, reprints the friendly prompt), retry, and a one-line UserError when no
prompt comes. `open_port` turns a missing, busy or dead port into one line too.
"""
from __future__ import annotations

import os
import shlex
import sys
import time

from hourglass.common import UserError, find_executable

FRIENDLY_PROMPT = b">>> "
SOFT_REBOOT = b"soft reboot\r\n"
TAKE_OVER_TIMEOUT = 15.0  # seconds to reach a prompt before giving up
ATTEMPT_WAIT = 0.6        # seconds to wait for a prompt after each Ctrl-C / Ctrl-B
SHOW_AFTER_RESET = 3.0    # seconds of boot output shown before mpremote's terminal takes over
BACKLOG_WAIT = 0.3        # with --resume: how long to collect what the board already sent


def open_port(port: str, baudrate: int = 115200, **kwargs):
    """pyserial's Serial on `port` (exclusive: another program on it would steal bytes), or one UserError line
    naming the ports that do exist."""
    import serial

    if not port:
        raise UserError("no serial port given: pass --port PORT (e.g. /dev/ttyUSB0, or a vboard pty)")
    kwargs.setdefault("timeout", 0)
    try:
        return serial.Serial(port, baudrate, exclusive=True, **kwargs)
    except (serial.SerialException, ValueError, OSError) as e:
        raise port_error(port, e) from None


def port_error(port: str, e: Exception) -> UserError:
    from serial.tools import list_ports

    ports = sorted(p.device for p in list_ports.comports())
    hint = ("ports present: " + ", ".join(ports)) if ports else "no serial ports present"
    errno_ = getattr(e, "errno", None)
    if errno_ == 2 or not os.path.exists(port):
        reason = "no such device"
    elif errno_ in (11, 16) or "lock" in str(e).lower():
        reason = "in use by another program"
    else:
        reason = getattr(e, "strerror", None) or str(e).split(": ", 1)[-1]
    return UserError(f"cannot open {port}: {reason} ({hint})")


def _read_for(ser, seconds: float, until=None) -> bytes:
    """What arrives within `seconds` (stops early once the output ends with one of `until`)."""
    data = bytearray()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        chunk = ser.read(ser.in_waiting or 1)
        if chunk:
            data += chunk
            if until and bytes(data).endswith(until):
                break
        else:
            time.sleep(0.02)
    return bytes(data)


def take_over(port: str, timeout: float = TAKE_OVER_TIMEOUT) -> bytes:
    """Stop whatever runs on the board and leave it at its friendly prompt; returns what the board printed.
    UserError (one line) when the port cannot be opened or no prompt comes within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    seen = bytearray()
    attempts = 0
    with open_port(port, timeout=0) as ser:
        while time.monotonic() < deadline:
            for key in (b"\x03", b"\x02"):  # one byte at a time: an app reading the line may eat the next
                attempts += 1
                ser.write(key)
                seen += _read_for(ser, ATTEMPT_WAIT, (FRIENDLY_PROMPT,))
                if bytes(seen).endswith(FRIENDLY_PROMPT):
                    return bytes(seen)
    heard = f"; it sent {len(seen)} bytes, none a prompt" if seen else "; it sent nothing"
    raise UserError(f"no MicroPython prompt on {port} after {attempts} Ctrl-C/Ctrl-B in {timeout:g} s{heard} "
                    f"(is MicroPython running, at 115200 baud?)")


def show_state(port: str, resume: bool, out=sys.stdout.buffer) -> None:
    """What the board is doing, before mpremote's terminal attaches: a soft reset in the friendly REPL and
    the boot output (boot.py, main.py), or with `resume` what the board sent while nobody listened."""
    if resume:
        out.write(backlog(port))
        out.flush()
        return
    take_over(port)
    with open_port(port, timeout=0) as ser:
        ser.reset_input_buffer()
        ser.write(b"\x04")  # Ctrl-D at the friendly prompt: soft reset, then boot.py and main.py
        shown = _read_for(ser, SHOW_AFTER_RESET, (FRIENDLY_PROMPT,))
    if SOFT_REBOOT not in shown:
        raise UserError(f"{port}: no soft reboot after Ctrl-D at the prompt (got {shown[-80:]!r})")
    # The terminal shows the prompt again when the app ends; a prompt already shown stays on screen.
    out.write(shown)
    out.flush()


def backlog(port: str) -> bytes:
    """What the board sent while nobody read the port (pyserial discards it when it opens a port)."""
    import termios
    import tty

    if not port:
        raise UserError("no serial port given: pass --port PORT (e.g. /dev/ttyUSB0, or a vboard pty)")
    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as e:
        raise port_error(port, e) from None
    try:
        try:
            tty.setraw(fd, termios.TCSANOW)  # TCSANOW: keep what is queued
        except termios.error:
            raise UserError(f"cannot open {port}: not a serial port") from None
        data = bytearray()
        deadline = time.monotonic() + BACKLOG_WAIT
        while time.monotonic() < deadline:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                chunk = b""
            if chunk:
                data += chunk
            else:
                time.sleep(0.02)
        return bytes(data)
    finally:
        os.close(fd)


def repl_command(port: str, capture: str | None = None) -> list[str]:
    """mpremote's terminal on a board whose state show_state() has already shown: never reset again."""
    cmd = [find_executable("mpremote"), "connect", port, "resume", "repl"]
    if capture:
        cmd += ["--capture", capture]
    return cmd


def register(subparsers) -> None:
    p = subparsers.add_parser("repl", help="open a board's REPL through mpremote",
                              description="Open the REPL of a board running MicroPython (Ctrl-] leaves). "
                                          "The board is soft-reset first, so boot.py and main.py show what "
                                          "they print; --resume attaches without a reset.")
    p.add_argument("--port", required=True, help="serial port of the board, e.g. /dev/ttyUSB0 or a vboard pty")
    p.add_argument("--resume", action="store_true",
                   help="do not reset the board; show what it printed while nobody listened")
    p.add_argument("--capture", default=None, metavar="FILE", help="also write the session to FILE")
    p.add_argument("--dry-run", action="store_true", help="print what would be done and exit")
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    cmd = repl_command(args.port, capture=args.capture)
    if args.dry_run:
        if not args.resume:
            print(f"# interrupt the board on {args.port} (Ctrl-C until its prompt), soft-reset it (Ctrl-D) and "
                  f"show its boot output, then:")
        print(shlex.join(cmd))
        return 0
    show_state(args.port, args.resume)
    print(f"repl: {args.port}: " + ("attached without a reset" if args.resume else
                                    "soft reset: boot.py and main.py printed the above")
          + "; mpremote's terminal follows (Ctrl-] leaves)", file=sys.stderr, flush=True)
    os.execv(cmd[0], cmd)
    return 127  # not reached
