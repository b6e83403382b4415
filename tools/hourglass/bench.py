"""`hourglass bench`: benchmarks on the MicroPython VM and on CPython, written as a Markdown + JSON report.

Benchmarks report; they never fail on timing. Sources:
- host_tests/bench/bench_<area>.py: device benchmarks (`bench_<op>()` returns a zero-argument operation);
  each runs on the VM and on CPython; on the VM we also find the operation's peak live heap (the smallest
  free heap it completes in, found by bisection with ballast allocations: the gc.mem_alloc high-water mark).
  COMPARE rows set two operations' ops/s side by side; PAIRED rows time two operations in alternating rounds
  in one process (the median of the per-round time ratios, which load on a shared machine cancels out of).
- host_tests/bench/host_<area>.py: host scenarios (`run(ctx) -> list[dict]`), e.g. throughput against a
  real peer.
- .mpy size of every lib/ module (mpy-cross -march=xtensawin, the ESP32's).
- import heap of every lib/ module as the board build deploys it (.mpy, here for the VM's arch, with the board's
  mpy-cross options and excludes), alone and in the groups an application loads together: gc.mem_alloc() after
  gc.collect(), with the firmware's own modules (asyncio, socket, os) imported first.
"""
from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hourglass import mpvm
from hourglass.common import find_executable

BENCH_DIR = mpvm.REPO / "host_tests" / "bench"
RUNNER = BENCH_DIR / "benchrunner.py"
RUNTIMES = ("micropython", "cpython")
MPY_ARCH = "xtensawin"
IMPORT_BOARD = "ESP32_GENERIC"  # whose mpy-cross options and excludes the import-heap rows use
# Module sets an application loads together, with a target where the project has one (None: report only).
# A device uses one CoAP transport: the serial one (coap.serial, coap.slip) is measured alone, not in the stack.
ISSUE8_CBOR_CRYPTO_COSE = ("cbor", "crypto.kdf", "crypto.aes", "crypto.ccm", "crypto.x25519", "crypto.p256",
                           "crypto.ed25519", "crypto.lms", "cose.sign1", "cose.mac0", "cose.encrypt0", "cose.key")
IMPORT_GROUPS = [
    ("steady state: the dual-role CoAP endpoint, serving (coap.endpoint + coap.serve) + UDP + CBOR + AES-CCM + HKDF",
     ("coap.endpoint", "coap.serve", "coap.udp", "cbor", "crypto.ccm", "crypto.kdf"), 40 * 1024),
    ("the same, requesting too (+ coap.requester: the client role, loaded with the first request)",
     ("coap.endpoint", "coap.serve", "coap.requester", "coap.udp", "cbor", "crypto.ccm", "crypto.kdf"), None),
    ("the same with coap.client + coap.server (the conveniences over the endpoint) instead",
     ("coap.client", "coap.server", "coap.udp", "cbor", "crypto.ccm", "crypto.kdf"), None),
    ("CBOR + AES-CCM + HKDF (the steady state's CBOR and crypto)", ("cbor", "crypto.ccm", "crypto.kdf"), 16 * 1024),
    ("CBOR + COSE_Encrypt0 (AES-CCM) + HKDF", ("cbor", "cose.encrypt0", "crypto.kdf"), None),
    ("bootstrap: X25519 + P-256 + HKDF", ("crypto.x25519", "crypto.p256", "crypto.kdf"), None),
    # EAP-NOOB: what a registered device keeps (they import nothing from crypto, cbor or coap), and what a
    # conversation (bootstrap or re-key) loads on top and Peer.unload() releases once registered
    ("EAP-NOOB, registered device: eapnoob.peer + eapnoob.console", ("eapnoob.peer", "eapnoob.console"), 12 * 1024),
    ("EAP-NOOB, a conversation's code (bootstrap + Reconnect, crypto included; released when registered)",
     ("eapnoob.peer", "eapnoob.console", "eapnoob.conversation", "eapnoob.bootstrap", "eapnoob.reconnect",
      "eapnoob.qr"), None),
    ("CoAP-EAP device + EAP-NOOB, registered (coapeap.device over the peer, its CoAP, CBOR and OSCORE imports)",
     ("coapeap.device", "eapnoob.peer", "eapnoob.console"), None),
    ("update: COSE_Sign1 with P-256, Ed25519 and HSS-LMS verify, COSE_Mac0, COSE_Encrypt + A128KW",
     ("cose.sign1", "cose.mac0", "cose.encrypt", "crypto.p256", "crypto.ed25519", "crypto.lms", "crypto.kw"), None),
    ("update, verify only: COSE_Sign1 with P-256, Ed25519 and HSS-LMS, COSE_Mac0 (a SUIT manifest's check)",
     ("cose.sign1", "cose.mac0", "crypto.p256", "crypto.ed25519", "crypto.lms"), None),
    ("CBOR + crypto + COSE of issue 8's stack (cbor, kdf/aes/ccm, x25519/p256/ed25519/lms, sign1/mac0/encrypt0/key)",
     ISSUE8_CBOR_CRYPTO_COSE, None),
    # coap.requester and coap.download are the client's code (loaded with the first request / block): counted
    ("everything (issue 8's stack): CBOR + crypto + COSE above, CoAP server, client (its request and Block2 "
     "download code included), UDP and optional parts",
     ISSUE8_CBOR_CRYPTO_COSE + ("coap.server", "coap.client", "coap.requester", "coap.download", "coap.udp",
                                "coap.observe", "coap.separate", "coap.block", "coap.linkformat", "coap.upload"),
     80 * 1024),
]
SERIAL_TRANSPORT = ("coap.serial", "coap.slip")
IMPORT_SCRIPT = r'''
import gc, sys
import asyncio, socket, os  # firmware modules (frozen / built in): not part of the figure
gc.collect()
a = gc.mem_alloc()
for m in sys.argv[1:]:
    __import__(m)
gc.collect()
print("@@HEAP", gc.mem_alloc() - a)
'''


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="run benchmarks on the MicroPython VM and CPython; write a report",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=mpvm.REPO / "build" / "bench", help="report directory")
    p.add_argument("-k", "--only", default="", help="run only benchmarks/modules whose name contains this")
    p.add_argument("--no-peak", action="store_true", help="skip the peak-heap search on the VM (faster)")
    p.add_argument("--no-host", action="store_true", help="skip host scenarios (host_*.py)")
    p.set_defaults(func=run_command)


@dataclass
class BenchModule:
    path: Path
    names: list[str]
    heap: str = mpvm.DEFAULT_HEAP
    cpython_only: tuple = ()
    micropython_only: tuple = ()
    no_peak: tuple = ()
    compare: list = field(default_factory=list)
    paired: list = field(default_factory=list)  # (label, a, b, runtime, target: the most a's time / b's may be)

    @property
    def name(self) -> str:
        return self.path.stem

    def names_for(self, runtime: str) -> list[str]:
        skip = self.cpython_only if runtime == "micropython" else self.micropython_only
        return [n for n in self.names if n not in skip]


def discover(only: str = "") -> list[BenchModule]:
    modules = []
    for path in sorted(BENCH_DIR.glob("bench_*.py")):
        tree = ast.parse(path.read_text(), str(path))
        consts = {}
        names = []
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("bench_"):
                names.append(node.name)
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                try:
                    consts[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    pass
        if only and only not in path.stem:
            names = [n for n in names if only in n]
        if not names:
            continue
        modules.append(BenchModule(path, names, consts.get("MP_HEAP", mpvm.DEFAULT_HEAP),
                                   tuple(consts.get("CPYTHON_ONLY", ())), tuple(consts.get("MICROPYTHON_ONLY", ())),
                                   tuple(consts.get("NO_PEAK", ())), list(consts.get("COMPARE", [])),
                                   [p for p in consts.get("PAIRED", []) if p[1] in names and p[2] in names]))
    return modules


def _vm_path() -> list[str]:
    return mpvm.device_path([BENCH_DIR, mpvm.DEVICE_TESTS])


def _parse_bench(text: str) -> dict[str, dict]:
    out = {}
    for line in text.splitlines():
        if line.startswith("@@PAIR "):
            _, a, b, rounds, na, nb, median, p10, p90, ta, tb = line.split()
            rounds, na, nb, ta, tb = int(rounds), int(na), int(nb), int(ta), int(tb)
            out[f"~{a}~{b}"] = {"rounds": rounds, "calls_a": na, "calls_b": nb, "ratio": int(median) / 1000,
                                "p10": int(p10) / 1000, "p90": int(p90) / 1000,
                                "ops_per_s_a": rounds * na * 1e6 / ta if ta else None,
                                "ops_per_s_b": rounds * nb * 1e6 / tb if tb else None}
        elif line.startswith("@@PEAK "):
            _, name, peak = line.split()
            peak = int(peak)
            out[name]["peak"] = None if peak < 0 else {"peak_vm": peak, "peak_board_est": peak // 2}
        elif line.startswith("@@BENCH "):
            _, name, n, us, alloc = line.split()
            n, us, alloc = int(n), int(us), int(alloc)
            out[name] = {"iterations": n, "us_per_op": us / n, "ops_per_s": n * 1e6 / us,
                         "alloc_gc_off": alloc if alloc >= 0 else None}
    return out


def run_module(mod: BenchModule, runtime: str, with_peak: bool) -> tuple[dict[str, dict], str]:
    """One process per module and runtime. On the VM, names marked with "+" also get a peak-heap search."""
    names = mod.names_for(runtime)
    if not names:
        return {}, ""
    pairs = [f"~{a}~{b}" for _, a, b, rt, _ in mod.paired if rt == runtime]
    if runtime == "micropython":
        marked = [("+" + n if with_peak and n not in mod.no_peak else n) for n in names]
        proc = mpvm.run([str(RUNNER), mod.name, *marked, *pairs], heap=mod.heap, path=_vm_path(), timeout=1800)
    else:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(_vm_path()))
        proc = subprocess.run([sys.executable, str(RUNNER), mod.name, *names, *pairs], cwd=mpvm.REPO, env=env,
                              capture_output=True, timeout=1800)
    text = proc.stdout.decode("utf-8", "replace")
    err = "" if proc.returncode == 0 else (text + proc.stderr.decode("utf-8", "replace"))[-2000:]
    return _parse_bench(text), err


def mpy_sizes() -> list[dict]:
    rows = []
    mpy_cross = find_executable("mpy-cross")
    with tempfile.TemporaryDirectory() as tmp:
        for pkg in mpvm.lib_package_dirs():
            for src in sorted(pkg.rglob("*.py")):
                if src.name in ("manifest.py",):
                    continue
                out = Path(tmp) / (src.stem + ".mpy")
                # ESP32's arch, so modules with @micropython.native/viper compile too.
                proc = subprocess.run([str(mpy_cross), f"-march={MPY_ARCH}", "-o", str(out), str(src)],
                                      capture_output=True)
                rel = src.relative_to(mpvm.LIB)
                rows.append({"module": str(rel), "source_bytes": src.stat().st_size,
                             "mpy_bytes": out.stat().st_size if proc.returncode == 0 else None,
                             "error": proc.stderr.decode()[-300:] if proc.returncode else ""})
    return rows


def _public(module: str) -> bool:
    return not module.split(".")[-1].startswith("_")


def import_heaps(only: str = "") -> dict:
    """Heap after importing each lib/ module alone (a fresh VM each), and the groups in IMPORT_GROUPS."""
    from hourglass import boards, build

    board = boards.load_board(IMPORT_BOARD)
    arch = build.host_arch()
    rows, groups = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "lib"
        modules = []
        for src in build.collect_sources(mpvm.LIB, Path(tmp) / "no-firmware"):
            if build.excluded_reason(board, src):
                continue
            out = tree / src.dest.removeprefix("lib/")
            out.parent.mkdir(parents=True, exist_ok=True)
            # -s: the repo-relative source name the board build embeds (it is interned on import, so it counts)
            subprocess.run([build.mpy_cross_binary(), f"-march={arch}", *board.mpy_cross_args, "-s",
                            src.path.relative_to(mpvm.REPO).as_posix(), "-o", str(out), str(src.path)],
                           check=True, capture_output=True)
            modules.append((src.module, out.stat().st_size))
        script = Path(tmp) / "import_heap.py"
        script.write_text(IMPORT_SCRIPT)

        def heap(mods) -> int | None:
            proc = mpvm.run([str(script), *mods], heap="1m", path=[str(tree)], timeout=120)
            for line in proc.stdout.decode("utf-8", "replace").splitlines():
                if line.startswith("@@HEAP "):
                    return int(line.split()[1])
            return None

        names = {m for m, _ in modules}
        for module, size in modules:
            if only and only not in module:
                continue
            rows.append({"module": module, "mpy_bytes": size, "heap_vm": heap([module])})
        stack = tuple(m for m, _ in modules if _public(m) and not m.startswith(SERIAL_TRANSPORT))
        every = [(label, mods, target) for label, mods, target in IMPORT_GROUPS]
        every.append(("every public lib/ module, OSCORE, SUIT, EAP-NOOB and CoAP-EAP included (a report: issue 8's "
                      "80 KB target is its own stack's row above; " + ", ".join(stack) + ")", stack, None))
        every.append(("every lib/ module but the serial transport, lazily loaded parts included",
                      tuple(m for m, _ in modules if not m.startswith(SERIAL_TRANSPORT)), None))
        for label, mods, target in every:
            present = [m for m in mods if m in names]
            groups.append({"label": label, "modules": present, "heap_vm": heap(present), "target": target})
    return {"arch": arch, "board": IMPORT_BOARD, "modules": rows, "groups": groups}


class HostContext:
    repo = mpvm.REPO
    mpvm = mpvm

    def __init__(self, only: str):
        self.only = only


def run_host_scenarios(only: str) -> list[dict]:
    rows = []
    for path in sorted(BENCH_DIR.glob("host_*.py")):
        if only and only not in path.stem:
            continue
        spec = importlib.util.spec_from_file_location(f"hourglass_bench_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.path[:0] = [p for p in _vm_path() if p not in sys.path]
        try:
            spec.loader.exec_module(module)
            for row in module.run(HostContext(only)):
                row.setdefault("source", path.name)
                rows.append(row)
        except Exception as e:  # a broken scenario is reported, the others still run
            rows.append({"name": path.stem, "runtime": "host", "value": None, "unit": "",
                         "note": f"scenario failed: {type(e).__name__}: {e}", "source": path.name})
    return rows


def _fmt(v, digits=1) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def write_report(out: Path, report: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["# Hourglass benchmark report", "",
             f"- date: {report['date']}", f"- host: {report['host']}",
             f"- MicroPython VM heap: per module (default {mpvm.DEFAULT_HEAP}); the VM is 64-bit, so a board's "
             "heap is about half the VM figure.", "",
             "Benchmarks report only; nothing here fails on timing.", "",
             "## Operations", "",
             "| benchmark | runtime | ops/s | µs/op | alloc/op, GC off (B) | peak heap on VM (B) | ≈ board (B) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in report["benchmarks"]:
        peak = r.get("peak") or {}
        lines.append(f"| {r['module']}.{r['name']} | {r['runtime']} | {_fmt(r['ops_per_s'])} | "
                     f"{_fmt(r['us_per_op'])} | {_fmt(r.get('alloc_gc_off'))} | {_fmt(peak.get('peak_vm'))} | "
                     f"{_fmt(peak.get('peak_board_est'))} |")
    if report["comparisons"]:
        lines += ["", "## Comparisons", "", "Ops/s ratios (≥ target), or paired time ratios (≤ target: the median "
                  "of rounds that alternate the two operations, with the 10th-90th percentile and each side's ops/s).",
                  "", "| comparison | ratio | target | meets | detail |", "|---|---:|---:|---|---|"]
        for c in report["comparisons"]:
            at_most = c.get("paired", False)
            if c["ratio"] is None or c["target"] is None:
                meets = "n/a"
            else:
                meets = "yes" if (c["ratio"] <= c["target"] if at_most else c["ratio"] >= c["target"]) else "NO"
            target = "—" if c["target"] is None else f"{'≤' if at_most else '≥'} {c['target']}"
            detail = ""
            if at_most and c["ratio"] is not None:
                detail = (f"{c['rounds']} rounds of {c['calls_a']} + {c['calls_b']} calls; p10-p90 {c['p10']:.2f}-"
                          f"{c['p90']:.2f}; {_fmt(c['ops_per_s_a'])} vs {_fmt(c['ops_per_s_b'])} ops/s")
            lines.append(f"| {c['label']} | {_fmt(c['ratio'], 2)} | {target} | {meets} | {detail} |")
    if report["host_scenarios"]:
        lines += ["", "## Host scenarios", "", "| scenario | runtime | value | unit | target | note |",
                  "|---|---|---:|---|---|---|"]
        for s in report["host_scenarios"]:
            lines.append(f"| {s['name']} | {s.get('runtime', '')} | {_fmt(s.get('value'), 2)} | {s.get('unit', '')} "
                         f"| {s.get('target', '')} | {s.get('note', '')} |")
    if report["errors"]:
        lines += ["", "## Errors", ""] + [f"- {e['module']} ({e['runtime']}): ```{e['error'][-500:]}```"
                                          for e in report["errors"]]
    imp = report.get("import_heap")
    if imp:
        lines += ["", f"## Import heap on the VM (.mpy, mpy-cross -march={imp['arch']} with {imp['board']}'s options)",
                  "", "Heap in use after `gc.collect()` once the modules are imported (asyncio, socket and os first: "
                  "they are firmware). The VM is 64-bit: a board needs about half. Alone: a fresh VM per module, "
                  "its imports included; the figures move in steps of ~1 KiB as the VM grows its qstr pool.", "",
                  "| module set | heap on VM (B) | ≈ board (B) | target on VM | meets |",
                  "|---|---:|---:|---:|---|"]
        for g in imp["groups"]:
            h, t = g["heap_vm"], g["target"]
            meets = "n/a" if h is None or t is None else ("yes" if h <= t else "NO")
            lines.append(f"| {g['label']} | {_fmt(h)} | {_fmt(h // 2 if h else None)} | "
                         f"{'—' if t is None else f'≤ {t:,}'} | {meets} |")
        lines += ["", "| module (alone, with what it imports) | .mpy (B) | heap on VM (B) |", "|---|---:|---:|"]
        for m in imp["modules"]:
            lines.append(f"| {m['module']} | {m['mpy_bytes']:,} | {_fmt(m['heap_vm'])} |")
    lines += ["", f"## .mpy sizes (mpy-cross -march={MPY_ARCH})", "",
              "| module | source (B) | .mpy (B) |", "|---|---:|---:|"]
    total = 0
    for m in report["mpy_sizes"]:
        total += m["mpy_bytes"] or 0
        lines.append(f"| {m['module']} | {m['source_bytes']:,} | {_fmt(m['mpy_bytes'])} |")
    lines.append(f"| **total** | | **{total:,}** |")
    (out / "report.md").write_text("\n".join(lines) + "\n")


def run_command(args) -> int:
    from tqdm import tqdm

    print(f"hourglass bench: report will be written to {args.out}/report.md and report.json")
    modules = discover(args.only)
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "host": f"{platform.machine()} {platform.python_version()}",
              "benchmarks": [], "comparisons": [], "host_scenarios": [], "errors": [], "mpy_sizes": []}
    results: dict[tuple[str, str], dict] = {}
    for mod in tqdm(modules, desc="device benchmarks", unit="module"):
        for runtime in RUNTIMES:
            rows, err = run_module(mod, runtime, with_peak=not args.no_peak)
            if err:
                report["errors"].append({"module": mod.name, "runtime": runtime, "error": err})
            for name in mod.names_for(runtime):
                row = rows.get(name)
                if row is None:
                    continue
                row = {"module": mod.name, "name": name, "runtime": runtime, **row}
                results[(name, runtime)] = row
                report["benchmarks"].append(row)
            for key, row in rows.items():
                if key.startswith("~"):
                    results[(key, runtime)] = row
        for label, a, b, runtime, target in mod.paired:  # the headline rows, before the ops/s comparisons
            pair = results.get((f"~{a}~{b}", runtime)) or {"ratio": None}
            report["comparisons"].append({"label": label, "a": [a, runtime], "b": [b, runtime], "target": target,
                                          "paired": True, **pair})
        for label, (a, ra), (b, rb), target in mod.compare:
            x, y = results.get((a, ra)), results.get((b, rb))
            ratio = x["ops_per_s"] / y["ops_per_s"] if x and y else None
            report["comparisons"].append({"label": label, "a": [a, ra], "b": [b, rb], "ratio": ratio,
                                          "target": target})
    if not args.no_host:
        report["host_scenarios"] = run_host_scenarios(args.only)
    report["mpy_sizes"] = mpy_sizes()
    report["import_heap"] = import_heaps(args.only)
    write_report(args.out, report)
    print((args.out / "report.md").read_text())
    return 0
