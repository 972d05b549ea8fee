"""Debian packages unpacked into the cache: with apt-get, or a downloaded
`.deb` unpacked with Python alone (for systems without apt-get)."""

import shutil
import subprocess

import pytest

from rnnapps.datasets import debian


def build_deb(folder, name="rnnapps-test-data"):
    """A small real `.deb` (built with dpkg-deb, xz and gzip) holding one data file."""
    tree = folder / "tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: t <t@example.org>\n"
        "Description: test data\n")
    (tree / "usr" / "share" / name).mkdir(parents=True)
    (tree / "usr" / "share" / name / "words.txt").write_text("Haus :: house\n")
    debs = []
    for compression in ("xz", "gzip"):
        deb = folder / f"{name}_1.0-1_all.{compression}.deb"
        subprocess.run(["dpkg-deb", f"-Z{compression}", "--build", str(tree), str(deb)],
                       check=True, capture_output=True)
        debs.append(deb)
    return debs


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="builds its .deb with dpkg-deb")
@pytest.mark.parametrize("which", [0, 1], ids=["xz", "gzip"])
def test_a_downloaded_deb_is_unpacked_with_python_alone(tmp_path, monkeypatch, which):
    monkeypatch.setenv("RNNAPPS_CACHE", str(tmp_path / "cache"))
    deb = build_deb(tmp_path)[which]
    assert debian.main([str(deb)]) == 0
    root = debian.package_root("rnnapps-test-data")
    assert (root / "usr/share/rnnapps-test-data/words.txt").read_text() == "Haus :: house\n"
    # What dpkg-deb itself unpacks is the same tree.
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path / "dpkg")], check=True)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == sorted(
        p.relative_to(tmp_path / "dpkg").as_posix() for p in (tmp_path / "dpkg").rglob("*"))


def test_not_a_deb_is_an_error_and_unpacks_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RNNAPPS_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "words_1.0_all.deb"
    bad.write_bytes(b"PK\x03\x04 not an ar archive")
    assert debian.main([str(bad)]) == 1
    assert "is not a .deb file" in capsys.readouterr().err
    assert not debian.package_root("words").exists()
    assert debian.main([str(tmp_path / "missing_1_all.deb")]) == 1
    assert "no such file" in capsys.readouterr().err
