"""PCA projection and compact Features for heads."""

from __future__ import annotations

import numpy as np
import torch

from hyperland.data import load_samples, read_mtfl
from hyperland.features import Features, encode, fit_projection


def test_projection_is_orthonormal_pca_and_encode_matches_extract(r18, mtfl_root) -> None:
    imgs, _ = load_samples(read_mtfl(mtfl_root, "testing")[:4])
    proj = fit_projection(r18, imgs, n_components=8, per_image=200, random_state=0)
    c = proj.components
    torch.testing.assert_close(c @ c.T, torch.eye(8), atol=1e-4, rtol=0)
    assert 0.0 < proj.explained <= 1.0 and proj.in_channels == r18.num_channels()
    full = r18.extract(imgs)
    want = torch.einsum("dc,bchw->bdhw", c, full - proj.mean.view(1, -1, 1, 1))
    feats = encode(r18, imgs, projection=proj, dtype=torch.float32)
    torch.testing.assert_close(feats.maps, want, atol=1e-4, rtol=1e-4)
    pooled = encode(r18, imgs, projection=proj, pool=2)
    assert pooled.maps.dtype == torch.float16 and pooled.grid == (12, 12)
    torch.testing.assert_close(pooled.maps.float(), torch.nn.functional.avg_pool2d(want, 2), atol=2e-3, rtol=1e-2)
    # the first component carries the most variance of the projected descriptors
    var = feats.maps.transpose(0, 1).flatten(1).var(dim=1)
    assert var[0] >= var[-1]


def test_features_indexing_and_concat(r18, mtfl_root) -> None:
    imgs, _ = load_samples(read_mtfl(mtfl_root, "testing")[:3])
    f = encode(r18, imgs, pool=4)
    sub = f[[2, 0]]
    assert len(sub) == 2 and sub.sizes == [f.sizes[2], f.sizes[0]]
    torch.testing.assert_close(sub.maps[0], f.maps[2])
    both = Features.concat([f[0:1], f[[1, 2]]])
    torch.testing.assert_close(both.maps, f.maps)
    assert f[1].maps.shape[0] == 1 and f.channels == r18.num_channels()
    run = f[np.array([1, 2])]  # consecutive positions: a view of the stored maps, no copy
    assert run.maps.untyped_storage().data_ptr() == f.maps.untyped_storage().data_ptr()
    assert sub.maps.untyped_storage().data_ptr() != f.maps.untyped_storage().data_ptr()
    torch.testing.assert_close(run.maps, f.maps[1:])
