"""meshops.atomic: atomic writes and the marked-block rewrite the benchmarks use for READMEs."""

from __future__ import annotations

import pytest

from meshops.atomic import atomic_path, replace_block, write_text_atomic

B, E = "<!-- b -->", "<!-- e -->"


def test_replace_block_rewrites_only_the_block(tmp_path):
    p = tmp_path / "README.md"
    p.write_text(f"# Title\n\nintro\n{B}\nold table\n{E}\n\nnotes after\n")
    replace_block(p, B, E, "\nnew table\n")
    assert p.read_text() == f"# Title\n\nintro\n{B}\nnew table\n{E}\n\nnotes after\n"
    replace_block(p, B, E, "\nthird\n")
    assert p.read_text().count(B) == 1 and "third" in p.read_text() and "new table" not in p.read_text()


def test_replace_block_appends_with_prefix_or_refuses(tmp_path):
    p = tmp_path / "README.md"
    p.write_text("# Title\n\n")
    replace_block(p, B, E, "\nx\n", prefix="## Results\n\n")
    assert p.read_text() == f"# Title\n\n## Results\n\n{B}\nx\n{E}\n"
    fresh = tmp_path / "new.md"
    replace_block(fresh, B, E, "\ny\n")
    assert fresh.read_text() == f"{B}\ny\n{E}\n"
    q = tmp_path / "plain.md"
    q.write_text("no markers\n")
    with pytest.raises(ValueError, match="plain.md: no '<!-- b -->' ... '<!-- e -->' block to fill"):
        replace_block(q, B, E, "\nz\n", required=True)
    assert q.read_text() == "no markers\n"


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    p = tmp_path / "out.json"
    write_text_atomic("old", p)
    with pytest.raises(RuntimeError), atomic_path(p) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert p.read_text() == "old" and sorted(x.name for x in tmp_path.iterdir()) == ["out.json"]
    write_text_atomic("new", tmp_path / "sub" / "deeper.txt")
    assert (tmp_path / "sub" / "deeper.txt").read_text() == "new"
