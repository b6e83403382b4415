# Boot of the virtual board: `micropython -i vboard_boot.py FLASH MOUNT RUN_MAIN MISSING BLOCK_SIZE BLOCK_COUNT
# ROMFS ROMFS_SIZE OTA HARD` (or, frozen into the VM, `-i -c "import vboard_boot; ..." ARGS`), started by
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
# - BLOCK_SIZE x BLOCK_COUNT is the board's filesystem (board.toml): os.statvfs reports it, with the blocks
#   the flash directory's files would take on LittleFS as used, and a write that would need more blocks than
#   are free fails with ENOSPC (errno 28), as on the board;
# - ROMFS ("-" or a file) holds the board's ROMFS partition of ROMFS_SIZE bytes: vfs.rom_ioctl serves it (so
#   `mpremote romfs deploy` writes it, and the file keeps it across resets), and a valid image is mounted at
#   /rom with /rom and /rom/lib on sys.path, as the board's boot does. Its bytes take the VM's heap (a board
#   maps them from flash): the supervisor adds ROMFS_SIZE to the heap;
# - OTA ("-" or FILE,ota_0=SIZE,ota_1=SIZE) gives an ESP32 with an OTA table the esp32 module of
#   vboard_esp32.py (esp32.Partition over FILE, otadata in FILEdata); HARD is "1" for a power-on or hard reset,
#   when that module's bootloader() picks the slot to boot (and rolls back an unconfirmed image);
# - boot.py, then main.py (only when RUN_MAIN is "1": boards skip main.py after a soft reset in the raw REPL)
#   run in the REPL's namespace; an exception in them is printed and the REPL still starts.
# Two markers on stdout, which the supervisor removes, say when Ctrl-C may be sent as SIGINT.


def _vboard_setup():
    import os
    import sys
    import vfs

    flash, mount, run_main = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    missing = [m for m in sys.argv[4].split(",") if m and m != "-"]
    block_size, block_count = int(sys.argv[5]), int(sys.argv[6])
    romfs_file, romfs_size = sys.argv[7], int(sys.argv[8])
    ota, hard_boot = sys.argv[9], sys.argv[10] == "1"
    # First, while the heap is empty: the ROMFS partition's bytes in one piece.
    rom = bytearray(romfs_size) if romfs_size else None
    if rom is not None:
        # Opened before the host's filesystem is unmounted: the partition is written back through it.
        rom_store = open(romfs_file, "r+b")
        rom_store.readinto(rom)
    esp32_ns = None
    if ota != "-":
        # The esp32 module (vboard_esp32.py beside this file) and its two files, opened before "/" changes.
        parts = ota.split(",")
        if "/" in __file__:
            esp32_ns = {}
            with open(__file__.rsplit("/", 1)[0] + "/vboard_esp32.py") as f:
                exec(f.read(), esp32_ns)
        else:  # frozen into the VM (`hourglass frozen-vm`), as a board has its esp32 module in its firmware
            import vboard_esp32
            esp32_ns = vboard_esp32.__dict__
        files = []
        for name in (parts[0], parts[0] + "data"):
            open(name, "ab").close()
            files.append(open(name, "r+b"))
        esp32_ns["configure"](files[0], files[1], [(p.split("=")[0], int(p.split("=")[1])) for p in parts[1:]])
        if hard_boot:
            esp32_ns["bootloader"]()
    vfs.umount("/")
    flash_vfs = vfs.VfsPosix(flash)
    vfs.mount(flash_vfs, mount)
    os.chdir(mount)
    if mount == "/":
        sys.path[:] = ["", ".frozen", "/lib"]
    else:
        sys.path[:] = ["", ".frozen", mount, mount + "/lib"]
    if rom is not None and rom[:3] == b"\xd2\xcd\x31":
        try:
            vfs.mount(vfs.VfsRom(rom), "/rom")
            sys.path[:0] = ["/rom"]
            sys.path.insert(3, "/rom/lib")
        except OSError:
            pass
    del sys.argv[:]

    def blocks(size):
        # LittleFS: a file of up to block_size/8 bytes is inlined in its directory's metadata
        return 0 if size <= block_size // 8 else (size + block_size - 1) // block_size

    def used_blocks(path):
        n = 2  # the directory's metadata pair
        for entry in os.ilistdir(path):
            p = path.rstrip("/") + "/" + entry[0]
            if entry[1] & 0x4000:
                n += used_blocks(p)
            else:
                n += blocks(os.stat(p)[6])
        return n

    def on_flash(path):
        if not path.startswith("/"):
            path = os.getcwd()
        if path.startswith(("/remote", "/rom")):  # mpremote's host mount, the ROMFS
            return False
        return mount == "/" or path == mount or path.startswith(mount + "/")

    def relative(path, cwd):
        if not path.startswith("/"):
            return path
        a = [x for x in path.split("/") if x]
        b = [x for x in cwd.split("/") if x]
        i = 0
        while i < len(a) and i < len(b) and a[i] == b[i]:
            i += 1
        return "/".join([".."] * (len(b) - i) + a[i:]) or "."

    import builtins

    unix_open = builtins.open

    class BoardFile:
        # A file on the board's filesystem opened for writing: refuses to grow past the free blocks.
        def __init__(self, f, free, size):
            self._f = f
            self._free = free  # blocks free besides the ones this file holds
            self._size = size

        def __getattr__(self, name):
            return getattr(self._f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

        def __iter__(self):
            return iter(self._f)

        def write(self, data):
            size = self._size + len(data)
            if blocks(size) > self._free:
                raise OSError(28)  # ENOSPC, as LittleFS raises it on a full board
            n = self._f.write(data)
            self._size += n or 0
            return n

    def board_open(name, mode="r", *args, **kw):
        f = unix_open(name, mode, *args, **kw)
        if isinstance(name, str) and ("w" in mode or "a" in mode or "+" in mode or "x" in mode) \
                and on_flash(name):
            size = 0 if "w" in mode else os.stat(name)[6]
            free = block_count - used_blocks(mount) + blocks(size)
            return BoardFile(f, free, size)
        return f

    builtins.open = board_open

    class BoardOs:
        # The unix port's os, with the board filesystem's statvfs.
        def __getattr__(self, name):
            return getattr(os, name)

        def rename(self, old, new):
            # The unix port's rename under a mount point other than "/" fails (ENOENT) with absolute paths;
            # VfsPosix resolves relative ones against the process's own working directory, which follows
            # os.chdir() on the board: rename with the paths relative to it.
            if mount != "/" and on_flash(old) and on_flash(new):
                cwd = os.getcwd()
                return flash_vfs.rename(relative(old, cwd), relative(new, cwd))
            return os.rename(old, new)

        def statvfs(self, path):
            if not on_flash(path):
                return os.statvfs(path)
            free = max(0, block_count - used_blocks(mount))
            return (block_size, block_size, block_count, free, free, 0, 0, 0, 0, 255)

    sys.modules["os"] = BoardOs()

    class BoardVfs:
        # The unix port's vfs, with the board's ROMFS partition (vfs.rom_ioctl, as on a board built with it).
        def __getattr__(self, name):
            return getattr(vfs, name)

        def rom_ioctl(self, op, *args):
            if op == 1:
                return 1
            if args and args[0] != 0:
                return -22  # EINVAL: one partition
            if op == 2:
                return memoryview(rom)
            if op == 3:  # prepare (erase) for writing; answers the smallest write
                offset, length = (0, args[1]) if len(args) == 2 else args[1:3]
                if offset + length > len(rom):
                    return -22
                erased = b"\xff" * 4096
                for i in range(offset, offset + length, 4096):
                    rom[i:min(i + 4096, offset + length)] = erased[:min(4096, offset + length - i)]
                return 4
            if op == 4:
                offset, data = args[1], args[2]
                if offset + len(data) > len(rom):
                    return -22
                rom[offset:offset + len(data)] = data
                return 0
            if op == 5:  # write complete: the partition's bytes survive resets
                rom_store.seek(0)
                rom_store.write(rom)
                rom_store.flush()
                return 0
            if op == 6:
                return 4096  # erase size: an nRF52840 flash page
            return -22

    if rom is not None:
        sys.modules["vfs"] = BoardVfs()

    import machine as unix_machine

    class BoardMachine:
        # Everything the unix port's machine module has, plus reset().
        def __getattr__(self, name):
            return getattr(unix_machine, name)

        def reset(self):
            sys.exit(90)  # vboard.HARD_RESET_EXIT

    sys.modules["machine"] = BoardMachine()

    if esp32_ns is not None:
        class Esp32:
            # The virtual board's esp32 module (vboard_esp32.py): OTA partitions and the bootloader's otadata.
            def __getattr__(self, name):
                try:
                    return esp32_ns[name]
                except KeyError:
                    raise AttributeError(name)

        sys.modules["esp32"] = Esp32()

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
    except SystemExit as e:
        # sys.exit() in boot.py/main.py is a soft reset (machine.reset(): exit code 90, a hard one), as on a
        # board; under -i the VM would go on to its REPL, so tell the supervisor, which ends the VM
        code = e.args[0] if e.args and isinstance(e.args[0], int) else 0
        sys.stderr.write("\x00VBEXIT%d\x00" % code)
        import time
        while True:
            time.sleep(1)
    except BaseException as e:  # KeyboardInterrupt included: print it and go on, as a board does
        sys.print_exception(e)


def _vboard_boot(namespace):
    for name in _vboard_setup():
        # From here on the VM's SIGINT handler is in place, so Ctrl-C may interrupt: tell the supervisor.
        print("\x00VBRUN\x00", end="")
        _vboard_run(name, namespace)
    # The REPL starts next: until its prompt, a Ctrl-C must reach it as a byte, not as a signal.
    print("\x00VBREPL\x00", end="")


# Run as a script, boot.py and main.py run in the REPL's namespace (its globals). Frozen into the VM, this is a
# module: `-c "import vboard_boot; vboard_boot._vboard_boot(globals())"` (vboard.VirtualBoard) does the same.
if __name__ == "__main__":
    _vboard_boot(globals())
    del _vboard_setup, _vboard_run, _vboard_boot
