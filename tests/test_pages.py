"""``meshops.pages.small_pages``: numpy's huge-page hint off inside the block, the caller's setting after."""

from __future__ import annotations

import numpy as np
import pytest

from meshops import pages


def _hint() -> bool:
    from numpy._core.multiarray import _get_madvise_hugepage

    return bool(_get_madvise_hugepage())


@pytest.mark.skipif(pages._set_madvise_hugepage is None, reason="this numpy has no huge-page switch")
@pytest.mark.parametrize("before", [True, False])
def test_small_pages_turns_the_hint_off_and_restores_it(before):
    prev = pages._set_madvise_hugepage(before)
    try:
        with pages.small_pages():
            assert not _hint()
            a = np.ones(1 << 20)  # arrays still work inside
            assert a.sum() == 1 << 20
        assert _hint() == before
        with pytest.raises(RuntimeError), pages.small_pages():
            raise RuntimeError("inside")
        assert _hint() == before  # restored after an error too
    finally:
        pages._set_madvise_hugepage(prev)


def test_build_runs_with_small_pages_and_leaves_the_setting(monkeypatch):
    from meshops.graph import build

    if pages._set_madvise_hugepage is None:
        pytest.skip("this numpy has no huge-page switch")
    real, calls = pages._set_madvise_hugepage, []

    def record(v):
        calls.append(bool(v))
        return real(v)

    monkeypatch.setattr(pages, "_set_madvise_hugepage", record)
    before = _hint()
    g = build(np.random.default_rng(0).random((500, 3)), {"levels": 2, "k": 6})
    assert g.num_levels == 2 and _hint() == before
    assert calls[0] is False and calls[-1] == before  # off for the build, then back


def test_read_and_write_run_with_small_pages(tmp_path, monkeypatch):
    import meshops

    if pages._set_madvise_hugepage is None:
        pytest.skip("this numpy has no huge-page switch")
    real, calls = pages._set_madvise_hugepage, []
    monkeypatch.setattr(pages, "_set_madvise_hugepage", lambda v: calls.append(bool(v)) or real(v))
    mesh = meshops.Mesh(np.random.default_rng(1).random((50, 3)))
    path = meshops.write(mesh, tmp_path / "cloud.vtu")
    back = meshops.read(path)
    assert np.array_equal(back.points, mesh.points)
    assert calls.count(False) == 2  # once for the write, once for the read, each restored after
