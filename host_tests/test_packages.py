"""Every lib/ package installs the way micropython-lib packages do: its package.json (mip) lists exactly its
modules, its manifest.py (freezing) names its dependencies, and `mpremote mip install` of a package.json puts
a working package, with its dependencies, on a (virtual) board."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hourglass import mpvm

PACKAGES = mpvm.lib_package_dirs()


def modules_of(pkg: Path) -> list[str]:
    return sorted(str(p.relative_to(pkg)) for p in pkg.rglob("*.py")
                  if p.name != "manifest.py" and "__pycache__" not in p.parts)


def manifest_requires(pkg: Path) -> list[str]:
    tree = ast.parse((pkg / "manifest.py").read_text())
    return sorted(node.args[0].value for node in ast.walk(tree)
                  if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "require")


def manifest_version(pkg: Path) -> str:
    tree = ast.parse((pkg / "manifest.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "metadata":
            return next(k.value.value for k in node.keywords if k.arg == "version")
    raise AssertionError("manifest.py has no metadata(version=...)")


@pytest.mark.parametrize("pkg", PACKAGES, ids=[p.name for p in PACKAGES])
def test_package_json_lists_every_module_with_relative_urls(pkg):
    data = json.loads((pkg / "package.json").read_text())
    urls = data["urls"]
    assert sorted(dest for dest, _ in urls) == modules_of(pkg)
    for dest, src in urls:
        assert src == dest, "sources are relative to package.json, so a checkout or a mirror both work"
        assert (pkg / src).is_file()
    assert data["version"] == manifest_version(pkg)


@pytest.mark.parametrize("pkg", PACKAGES, ids=[p.name for p in PACKAGES])
def test_dependencies_agree_between_manifest_and_package_json(pkg):
    data = json.loads((pkg / "package.json").read_text())
    deps = sorted(Path(d).parent.name for d, _ in data.get("deps", []))
    assert deps == manifest_requires(pkg)
    for dep, _ in data.get("deps", []):
        assert (mpvm.REPO / dep).is_file(), f"{dep} (deps are given from the repo root)"


@pytest.mark.parametrize("pkg", PACKAGES, ids=[p.name for p in PACKAGES])
def test_imports_stay_inside_declared_dependencies(pkg):
    """A package imports only itself, its declared dependencies and MicroPython's own modules."""
    ours = {p.name for p in PACKAGES}
    allowed = {pkg.name, *manifest_requires(pkg)}
    for src in pkg.rglob("*.py"):
        if src.name == "manifest.py":
            continue
        for node in ast.walk(ast.parse(src.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in ours:
                    assert top in allowed, f"{src.relative_to(mpvm.REPO)} imports {name} but manifest.py " \
                                           f"does not require('{top}')"


def test_mip_install_on_a_virtual_board(tmp_path):
    """mpremote mip installs cose from its package.json, with cbor and crypto, and it works on the board."""
    from hourglass.vboard import VirtualBoard

    flash = tmp_path / "flash"
    mpremote = str(Path(sys.executable).parent / "mpremote")
    with VirtualBoard(flash, board="ESP32_GENERIC") as board:
        def remote(*args):
            return subprocess.run([mpremote, "connect", board.port, "resume", *args], cwd=mpvm.REPO,
                                  capture_output=True, text=True, timeout=300)

        proc = remote("mip", "install", "--target", "lib", "lib/cose/package.json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for pkg in ("cose", "cbor", "crypto"):
            for module in modules_of(mpvm.LIB / pkg):
                assert (flash / "lib" / module).read_bytes() == (mpvm.LIB / pkg / module).read_bytes()
        proc = remote("exec", "import cose.mac0, cose.key; k = cose.key.CoseKey.symmetric(b'k' * 32, alg=5); "
                              "m = cose.mac0.create(k, b'hi'); print('payload', cose.mac0.verify(m, k))")
        assert "payload b'hi'" in proc.stdout, proc.stdout + proc.stderr
