# Boot of the virtual board: `micropython -i vboard_boot.py FLASH MOUNT RUN_MAIN MISSING`, started by
# tools/hourglass/vboard.py. This file runs on the MicroPython VM, never on CPython. It makes the VM look
# like a board before its REPL starts:
# - the flash directory is the board's filesystem at its mount point ("/" on ESP32, "/flash" on nRF), and the
#   working directory and sys.path are the board's;
# - machine.reset() ends the VM with exit code 90, which the supervisor turns into a hard reset (the unix
#   port's machine module has no reset); micropython.kbd_intr() also tells the supervisor whether Ctrl-C may
#   become a SIGINT;
# - MISSING ("-" or a comma list) names modules, or module.attribute, the board's firmware lacks: importing
#   them raises ImportError (hashlib.md5 and the like raise AttributeError), as on the board; a .mpy holding
#   native code for the board's CPU (viper/native, built with -march) also raises ImportError, as the VM
#   cannot run it and the pure-Python fallback is what the VM can test;
# - boot.py, then main.py (only when RUN_MAIN is "1": boards skip main.py after a soft reset in the raw REPL)
#   run in the REPL's namespace; an exception in them is printed and the REPL still starts.
# Two markers on stdout, which the supervisor removes, say when Ctrl-C may be sent as SIGINT.


def _vboard_setup():
    import os
    import sys
    import vfs

    flash, mount, run_main = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    missing = [m for m in sys.argv[4].split(",") if m and m != "-"]
    vfs.umount("/")
    vfs.mount(vfs.VfsPosix(flash), mount)
    os.chdir(mount)
    if mount == "/":
        sys.path[:] = ["", ".frozen", "/lib"]
    else:
        sys.path[:] = ["", ".frozen", mount, mount + "/lib"]
    del sys.argv[:]

    import machine as unix_machine

    class BoardMachine:
        # Everything the unix port's machine module has, plus reset().
        def __getattr__(self, name):
            return getattr(unix_machine, name)

        def reset(self):
            sys.exit(90)  # vboard.HARD_RESET_EXIT

    sys.modules["machine"] = BoardMachine()

    import micropython as unix_micropython

    class BoardMicropython:
        # kbd_intr() also tells the supervisor (on stderr), which turns Ctrl-C into SIGINT only when enabled:
        # a program using the console as a data line (mpremote mount, coap.serial) disables it.
        def __getattr__(self, name):
            return getattr(unix_micropython, name)

        def kbd_intr(self, c):
            unix_micropython.kbd_intr(c)
            sys.stderr.write("\x00VBKI%d\x00" % c)

    sys.modules["micropython"] = BoardMicropython()

    hidden_modules = [m for m in missing if "." not in m]
    hidden_attrs = {}
    for m in missing:
        if "." in m:
            mod, attr = m.split(".", 1)
            hidden_attrs.setdefault(mod, []).append(attr)

    def restricted(mod_name, attrs):
        real = __import__(mod_name)

        class BoardModule:
            def __getattr__(self, name):
                if name in attrs:
                    raise AttributeError(name)
                return getattr(real, name)

        return BoardModule()

    for mod, attrs in hidden_attrs.items():
        sys.modules[mod] = restricted(mod, attrs)
    import builtins

    unix_import = builtins.__import__

    def board_import(name, *args):
        if name in hidden_modules:
            raise ImportError("no module named '%s'" % name)
        try:
            return unix_import(name, *args)
        except ValueError as e:
            # A .mpy with native code for the board's CPU: the VM cannot run it. To the program that module
            # is absent, so its pure-Python fallback runs (on the board the native code does).
            if "mpy arch" in str(e):
                raise ImportError("%s: native code for another architecture" % name)
            raise

    builtins.__import__ = board_import
    present = []
    for name in ("boot.py", "main.py") if run_main else ("boot.py",):
        try:
            os.stat(name)
            present.append(name)
        except OSError:
            pass
    return present


def _vboard_run(name, namespace):
    import sys

    try:
        with open(name) as f:
            source = f.read()
        exec(compile(source, name, "exec"), namespace)
    except SystemExit:
        raise  # sys.exit() in boot.py/main.py is a soft reset, as on a board
    except BaseException as e:  # KeyboardInterrupt included: print it and go on, as a board does
        sys.print_exception(e)


_vboard_name = None
for _vboard_name in _vboard_setup():
    # From here on the VM's SIGINT handler is in place, so Ctrl-C may interrupt: tell the supervisor.
    print("\x00VBRUN\x00", end="")
    _vboard_run(_vboard_name, globals())
del _vboard_name, _vboard_setup, _vboard_run
# The REPL starts next: until its prompt, a Ctrl-C must reach it as a byte, not as a signal.
print("\x00VBREPL\x00", end="")
