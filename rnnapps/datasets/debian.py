"""Debian packages that hold a task's default data, unpacked without root.

Some default datasets ship as Debian packages (the translation task's Ding
dictionary is `trans-de-en`). With root, `apt-get install PACKAGE` puts them
under `/usr/share`; without it, `install(PACKAGE)` fetches the `.deb` with
`apt-get download` and unpacks it with `dpkg-deb -x` into
`~/.cache/rnnapps/debian/PACKAGE/` (or `$RNNAPPS_CACHE/debian/PACKAGE/`),
the same tree under another root. The tasks look in both places.

Command line: `python -m rnnapps.datasets.debian PACKAGE [PACKAGE...]`.

Without apt-get (macOS, Windows, other Linux distributions), download the
package's `.deb` file from https://packages.debian.org (any architecture:
these packages are `all`) and give its path instead of the name:
`python -m rnnapps.datasets.debian trans-de-en_1.9-4_all.deb` unpacks it with
Python alone (`install_deb`) into the same cache folder.
"""

import os
import pathlib
import subprocess
import sys
import tarfile
import tempfile

__all__ = ["cache_dir", "package_root", "install", "install_deb"]


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


def _data_member(deb):
    """`(name, bytes)` of the `data.tar.*` member of the ar archive `deb`."""
    data = pathlib.Path(deb).read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise RuntimeError(f"{deb} is not a .deb file (no ar archive header)")
    offset = 8
    while offset + 60 <= len(data):
        header = data[offset:offset + 60]
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise RuntimeError(f"{deb} is not a .deb file (a malformed ar member header)")
        offset += 60
        if name.startswith("data.tar"):
            return name, data[offset:offset + size]
        offset += size + size % 2  # members start at even offsets
    raise RuntimeError(f"{deb} holds no data.tar member")


def install_deb(deb, package=None):
    """Unpacks a downloaded `.deb` file into the cache, with Python alone.

    For systems without apt-get and dpkg-deb. The package name is the file
    name up to its first `_` (Debian's `NAME_VERSION_ARCH.deb`) unless
    `package` is given. Atomic, like `install`; returns the package's root.

    Raises:
        RuntimeError: not a `.deb`, or compressed with zstd (which Python's
            `tarfile` cannot read: unpack it with `dpkg-deb -x`, or use a
            `.deb` from a Debian release that compresses with xz).
    """
    deb = pathlib.Path(deb)
    if not deb.is_file():
        raise RuntimeError(f"{deb}: no such file")
    package = package or deb.name.split("_")[0]
    target = package_root(package)
    if target.is_dir():
        return target
    name, payload = _data_member(deb)
    if name.endswith(".zst"):
        raise RuntimeError(f"{deb} is compressed with zstd, which Python's tarfile cannot "
                           f"read; unpack it with dpkg-deb -x, or take the .deb of a Debian "
                           f"release that uses xz")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{package}-", dir=target.parent) as work:
        unpacked = pathlib.Path(work) / "root"
        import io

        try:
            with tarfile.open(fileobj=io.BytesIO(payload), mode="r:*") as archive:
                archive.extractall(unpacked, filter="data")
        except (tarfile.TarError, EOFError, OSError) as error:
            raise RuntimeError(f"{deb}: cannot unpack {name}: {error}")
        try:
            os.rename(unpacked, target)
        except OSError:
            if not target.is_dir():
                raise
    return target


def main(argv=None):
    packages = sys.argv[1:] if argv is None else argv
    if not packages:
        print("usage: python -m rnnapps.datasets.debian PACKAGE|FILE.deb [...]", file=sys.stderr)
        return 2
    for package in packages:
        try:
            root = install_deb(package) if package.endswith(".deb") else install(package)
        except RuntimeError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"{package}: {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
