"""Debian packages that hold a task's default data, unpacked without root.

Some default datasets ship as Debian packages (the translation task's Ding
dictionary is `trans-de-en`). With root, `apt-get install PACKAGE` puts them
under `/usr/share`; without it, `install(PACKAGE)` fetches the `.deb` with
`apt-get download` and unpacks it with `dpkg-deb -x` into
`~/.cache/rnnapps/debian/PACKAGE/` (or `$RNNAPPS_CACHE/debian/PACKAGE/`),
the same tree under another root. The tasks look in both places.

Command line: `python -m rnnapps.datasets.debian PACKAGE [PACKAGE...]`.
"""

import os
import pathlib
import subprocess
import sys
import tempfile

__all__ = ["cache_dir", "package_root", "install"]


def cache_dir():
    """The folder under which packages are unpacked."""
    root = os.environ.get("RNNAPPS_CACHE") or pathlib.Path.home() / ".cache" / "rnnapps"
    return pathlib.Path(root) / "debian"


def package_root(package):
    """The root folder `package` is (or would be) unpacked under."""
    return cache_dir() / package


def _run(command, cwd=None):
    try:
        return subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise RuntimeError(f"{command[0]} is not available: this needs a Debian-based system")
    except subprocess.CalledProcessError as error:
        detail = (error.stderr or error.stdout or "").strip().splitlines()
        raise RuntimeError(
            f"`{' '.join(command)}` failed: {detail[-1] if detail else error.returncode}"
        )


def install(package):
    """Downloads `package` with apt-get and unpacks it into the cache.

    Atomic: the package is unpacked into a temporary folder that is renamed
    into place when complete. Returns the package's root folder (a file of
    the package at `/usr/share/x` is then at `root/usr/share/x`).

    Raises:
        RuntimeError: apt-get or dpkg-deb is missing or fails (e.g. no
            network, an unknown package), with the tool's message.
    """
    target = package_root(package)
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{package}-", dir=target.parent) as work:
        work = pathlib.Path(work)
        try:
            _run(["apt-get", "download", package], cwd=work)
        except RuntimeError:
            # A fresh machine may have no package lists yet; `apt-get
            # update` needs root, so only try it then.
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                _run(["apt-get", "update", "-qq"])
                _run(["apt-get", "download", package], cwd=work)
            else:
                raise
        debs = sorted(work.glob(f"{package}_*.deb"))
        if not debs:
            raise RuntimeError(f"apt-get download {package} wrote no .deb file")
        unpacked = work / "root"
        _run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)])
        try:
            os.rename(unpacked, target)
        except OSError:
            if not target.is_dir():  # not another process finishing first
                raise
    return target


def main(argv=None):
    packages = sys.argv[1:] if argv is None else argv
    if not packages:
        print("usage: python -m rnnapps.datasets.debian PACKAGE [PACKAGE...]", file=sys.stderr)
        return 2
    for package in packages:
        try:
            root = install(package)
        except RuntimeError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"{package}: {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
