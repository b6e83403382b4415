"""`hourglass packages`: every lib/<package>/package.json (mip) generated from its manifest.py, as
micropython-lib's build does, so the two cannot drift.

Two forms. The committed lib/<package>/package.json is the published form: its file URLs are relative to the
package.json (mip joins them to wherever it was fetched from) and its dependencies are
`github:OWNER/REPO/lib/<dep>/package.json` at a branch (--repo, --branch), because mip resolves a dependency
on its own, not relative to the package that names it. `--local DIR` also writes a checkout's own form under
DIR (make: build/mip/), whose dependencies are absolute paths into this checkout, so that
`mpremote mip install <DIR>/<package>/package.json` works from any working directory without a network.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from hourglass.common import REPO, UserError

LIB = REPO / "lib"
# Where the published form points, the one place that says it: a placeholder until the project is published
# (set the real OWNER/REPO here, then `make packages`; a test checks the committed files match it).
DEFAULT_REPO = "OWNER/REPO"
DEFAULT_BRANCH = "main"


class Manifest:
    """What a manifest.py declares, evaluated with micropython-lib's manifest functions (metadata, module,
    package, require). Paths are relative to the manifest's folder, as in MicroPython's manifestfile."""

    def __init__(self, path: Path):
        self.path = path
        self.version = ""
        self.description = ""
        self.files: list[tuple[str, Path]] = []  # (path on the board under the target, source file)
        self.requires: list[str] = []
        here = path.parent

        def metadata(version=None, description=None, **_):
            self.version = version or self.version
            self.description = description or self.description

        def module(name, base_path=".", opt=None):
            src = here / base_path / name
            if not src.is_file():
                raise UserError(f"{path}: module({name!r}): no {src}")
            self.files.append((name, src))

        def package(name, files=None, base_path=".", opt=None):
            base = here / base_path / name
            if not base.is_dir():
                raise UserError(f"{path}: package({name!r}): no folder {base}")
            found = files if files is not None else sorted(
                p.relative_to(base).as_posix() for p in base.rglob("*.py") if "__pycache__" not in p.parts)
            for f in found:
                if not (base / f).is_file():
                    raise UserError(f"{path}: package({name!r}): no {base / f}")
                self.files.append((f"{name}/{f}", base / f))

        def require(name, library=None, **_):
            self.requires.append(name)

        def unsupported(*_, **__):
            raise UserError(f"{path}: only metadata/module/package/require are understood here")

        scope = {"metadata": metadata, "module": module, "package": package, "require": require,
                 "include": unsupported, "freeze": unsupported, "add_library": unsupported}
        exec(compile(path.read_text(), str(path), "exec"), scope)
        if not self.version:
            raise UserError(f"{path}: metadata(version=...) is missing")


def package_dirs(lib_dir: Path = LIB) -> list[Path]:
    return sorted(p for p in lib_dir.iterdir() if (p / "manifest.py").is_file())


def published_json(pkg: Path, repo: str = DEFAULT_REPO, branch: str = DEFAULT_BRANCH, lib_dir: Path = LIB) -> dict:
    """The published package.json of lib/<pkg>: relative file URLs, github: dependencies."""
    manifest = Manifest(pkg / "manifest.py")
    prefix = lib_dir.relative_to(REPO).as_posix() if lib_dir.is_relative_to(REPO) else "lib"
    for dep in manifest.requires:
        if not (lib_dir / dep / "manifest.py").is_file():
            raise UserError(f"{pkg / 'manifest.py'}: require({dep!r}): no {lib_dir / dep / 'manifest.py'}")
    return {
        "urls": sorted([dest, src.relative_to(pkg).as_posix()] for dest, src in manifest.files),
        "deps": [[f"github:{repo}/{prefix}/{dep}/package.json", branch] for dep in manifest.requires],
        "version": manifest.version,
    }


def local_json(pkg: Path, out_dir: Path) -> dict:
    """The checkout's own package.json for lib/<pkg>, written to out_dir/<pkg>/: file URLs relative to it,
    dependencies as absolute paths to their local package.json."""
    manifest = Manifest(pkg / "manifest.py")
    here = (out_dir / pkg.name).resolve()
    return {
        "urls": sorted([dest, Path(os.path.relpath(src.resolve(), here)).as_posix()] for dest, src in manifest.files),
        "deps": [[str((out_dir / dep / "package.json").resolve()), "latest"] for dep in manifest.requires],
        "version": manifest.version,
    }


def dump(data: dict) -> str:
    return json.dumps(data, indent=2) + "\n"


def generate(lib_dir: Path = LIB, repo: str = DEFAULT_REPO, branch: str = DEFAULT_BRANCH,
             local: Path | None = None, check: bool = False) -> list[Path]:
    """Write (or with check, compare) every package.json; returns the files that were out of date."""
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise UserError(f"--repo must be OWNER/REPO, not {repo!r}")
    stale = []
    for pkg in package_dirs(lib_dir):
        path = pkg / "package.json"
        text = dump(published_json(pkg, repo, branch, lib_dir))
        if not path.is_file() or path.read_text() != text:
            stale.append(path)
            if not check:
                path.write_text(text)
        if local is not None and not check:
            target = local / pkg.name / "package.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(dump(local_json(pkg, local)))
    return stale


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("packages", help="generate lib/*/package.json (mip) from each manifest.py",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", default=DEFAULT_REPO, help=f"OWNER/REPO of the published form (default {DEFAULT_REPO})")
    p.add_argument("--branch", default=DEFAULT_BRANCH,
                   help=f"branch or tag the dependencies are fetched at (default {DEFAULT_BRANCH})")
    p.add_argument("--local", type=Path, default=None, help="also write the checkout's own form under this folder")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a package.json is out of date")
    p.add_argument("--lib-dir", type=Path, default=LIB, help=argparse.SUPPRESS)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    stale = generate(args.lib_dir, args.repo, args.branch, args.local, args.check)
    if args.check and stale:
        raise UserError("out of date (run `make packages`): " + ", ".join(str(p) for p in stale))
    for path in stale:
        print(f"hourglass packages: wrote {path}")
    if args.local is not None:
        print(f"hourglass packages: local form in {args.local}: mpremote mip install "
              f"{args.local.resolve()}/<package>/package.json")
    return 0
