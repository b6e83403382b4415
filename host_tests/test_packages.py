"""Every lib/ package installs the way micropython-lib packages do: its package.json (mip) is generated from its
manifest.py (`make packages`, hourglass.packages) and lists exactly its modules; its dependencies resolve from a
published repository (github: form, OWNER/REPO chosen at generation) and, in the checkout's own form, from any
working directory: `mpremote mip install` puts a working package, with its dependencies, on a virtual board."""
from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hourglass import mpvm, packages

PACKAGES = mpvm.lib_package_dirs()


def modules_of(pkg: Path) -> list[str]:
    return sorted(str(p.relative_to(pkg)) for p in pkg.rglob("*.py")
                  if p.name != "manifest.py" and "__pycache__" not in p.parts)


def manifest_requires(pkg: Path) -> list[str]:
    tree = ast.parse((pkg / "manifest.py").read_text())
    return sorted(node.args[0].value for node in ast.walk(tree)
                  if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "require")


def manifest_requires_in_order(pkg: Path) -> list[str]:
    tree = ast.parse((pkg / "manifest.py").read_text())
    calls = [node for node in ast.walk(tree)
             if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "require"]
    return [node.args[0].value for node in sorted(calls, key=lambda n: (n.lineno, n.col_offset))]


def manifest_version(pkg: Path) -> str:
    tree = ast.parse((pkg / "manifest.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "metadata":
            return next(k.value.value for k in node.keywords if k.arg == "version")
    raise AssertionError("manifest.py has no metadata(version=...)")


def test_committed_package_json_is_the_generated_one():
    """package.json is generated from manifest.py (`make packages`): the committed files are exactly that."""
    assert packages.generate(check=True) == []
    proc = subprocess.run([sys.executable, "-m", "hourglass.cli", "packages", "--check"], capture_output=True,
                          text=True, cwd=mpvm.REPO)
    assert proc.returncode == 0, proc.stderr


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
def test_dependencies_are_the_manifests_in_url_form(pkg):
    data = json.loads((pkg / "package.json").read_text())
    assert data["deps"] == [[f"github:{packages.DEFAULT_REPO}/lib/{dep}/package.json", packages.DEFAULT_BRANCH]
                            for dep in manifest_requires_in_order(pkg)]
    assert sorted(Path(d).parent.name for d, _ in data["deps"]) == manifest_requires(pkg)


def raw_url_to_repo_path(url: str, owner_repo: str, branch: str) -> Path:
    prefix = f"https://raw.githubusercontent.com/{owner_repo}/{branch}/"
    assert url.startswith(prefix), url
    return mpvm.REPO / url[len(prefix):]


def test_url_form_resolves_every_file_and_dependency_from_the_published_repo(tmp_path):
    """Generated for another OWNER/REPO and branch, every URL mip would fetch (package.json, its files, its
    dependencies' package.json, recursively) names the file at that path of this repository."""
    from mpremote.mip import _rewrite_url

    lib = tmp_path / "lib"
    shutil.copytree(mpvm.LIB, lib, ignore=shutil.ignore_patterns("__pycache__"))
    packages.generate(lib, repo="acme/hourglass", branch="v0.1")
    for pkg in PACKAGES:
        seen: set[str] = set()
        todo = [(f"github:acme/hourglass/lib/{pkg.name}/package.json", "v0.1")]
        while todo:
            url, branch = todo.pop()
            if url in seen:
                continue
            seen.add(url)
            # mip fetches package.json at the version it was given, and its files relative to it.
            local = raw_url_to_repo_path(_rewrite_url(url, branch), "acme/hourglass", "v0.1")
            generated = lib / local.relative_to(mpvm.LIB)
            data = json.loads(generated.read_text())
            base = url.rpartition("/")[0]
            for dest, src in data["urls"]:
                path = raw_url_to_repo_path(_rewrite_url(f"{base}/{src}", branch), "acme/hourglass", "v0.1")
                assert path.is_file() and path.relative_to(local.parent).as_posix() == dest
            todo += [tuple(d) for d in data["deps"]]
        assert len(seen) == len(dependency_closure(pkg.name))


def test_a_new_module_makes_the_committed_file_stale(tmp_path):
    lib = tmp_path / "lib"
    shutil.copytree(mpvm.LIB, lib, ignore=shutil.ignore_patterns("__pycache__"))
    assert packages.generate(lib, check=True) == []
    (lib / "coap" / "coap" / "extra.py").write_text("X = 1\n")
    assert packages.generate(lib, check=True) == [lib / "coap" / "package.json"]
    proc = subprocess.run([sys.executable, "-m", "hourglass.cli", "packages", "--check", "--lib-dir", str(lib)],
                          capture_output=True, text=True, cwd=mpvm.REPO)
    assert proc.returncode == 1 and proc.stderr.startswith("hourglass packages: out of date (run `make packages`)")
    packages.generate(lib)
    assert ["coap/extra.py", "coap/extra.py"] in json.loads((lib / "coap" / "package.json").read_text())["urls"]


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


def dependency_closure(name: str) -> list[str]:
    out = [name]
    for dep in manifest_requires(mpvm.LIB / name):
        out += [d for d in dependency_closure(dep) if d not in out]
    return out


def test_mip_install_of_each_package_from_another_directory(tmp_path):
    """The checkout's own form (build/mip/ from `make packages`) installs every package, with its dependencies,
    from a directory that is not the repository; cose then works on the board."""
    from hourglass.vboard import VirtualBoard

    mip = tmp_path / "mip"
    for pkg in PACKAGES:  # the local form only: the committed files stay as they are
        out = mip / pkg.name / "package.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(packages.dump(packages.local_json(pkg, mip)))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    flash = tmp_path / "flash"
    mpremote = str(Path(sys.executable).parent / "mpremote")
    with VirtualBoard(flash, board="ESP32_GENERIC") as board:
        def remote(*args):
            return subprocess.run([mpremote, "connect", board.port, "resume", *args], cwd=elsewhere,
                                  capture_output=True, text=True, timeout=300)

        for pkg in PACKAGES:
            target = f"lib_{pkg.name}"
            proc = remote("mip", "install", "--target", target, str(mip / pkg.name / "package.json"))
            assert proc.returncode == 0, proc.stdout + proc.stderr
            expected = {m for dep in dependency_closure(pkg.name) for m in modules_of(mpvm.LIB / dep)}
            installed = {p.relative_to(flash / target).as_posix() for p in (flash / target).rglob("*") if p.is_file()}
            assert installed == expected, pkg.name
            for dep in dependency_closure(pkg.name):
                for module in modules_of(mpvm.LIB / dep):
                    assert (flash / target / module).read_bytes() == (mpvm.LIB / dep / module).read_bytes()
            if pkg.name != "cose":  # every package with its dependencies would not fit the board's filesystem
                shutil.rmtree(flash / target)
        proc = remote("exec", "import sys; sys.path.insert(0, 'lib_cose'); import cose.mac0, cose.key; "
                              "k = cose.key.CoseKey.symmetric(b'k' * 32, alg=5); "
                              "m = cose.mac0.create(k, b'hi'); print('payload', cose.mac0.verify(m, k))")
        assert "payload b'hi'" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("argv,message", [
    (["--repo", "not-a-repo"], "hourglass packages: --repo must be OWNER/REPO, not 'not-a-repo'"),
    (["--lib-dir", "{tmp}/lib", "--check"], "hourglass packages: {tmp}/lib/bad/manifest.py: require('nothere')"),
])
def test_cli_user_errors_are_one_line_and_exit_1(tmp_path, argv, message):
    (tmp_path / "lib" / "bad").mkdir(parents=True)
    (tmp_path / "lib" / "bad" / "manifest.py").write_text('metadata(version="1")\nrequire("nothere")\n')
    argv = [a.format(tmp=tmp_path) for a in argv]
    proc = subprocess.run([sys.executable, "-m", "hourglass.cli", "packages", *argv], capture_output=True, text=True,
                          cwd=mpvm.REPO)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith(message.format(tmp=tmp_path)) and proc.stderr.count("\n") == 1, proc.stderr
