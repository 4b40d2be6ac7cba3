"""Official models, run from their blobs by the official code's definitions, give the same
scores as nlnet's models of the official configs after conversion (float64)."""
import pytest
import torch
from helpers.official_caffe2 import (OFFICIAL_CONFIGS, official_forward, official_test_scores,
                                     random_blobs, video_blob_shapes, with_training_state,
                                     write_python2_pickle)
from helpers.official_models import NUM_CLASSES, WIDTH, tiny_model

from nlnet.converters import caffe2_to_model_state_dict, load_caffe2_blobs


@pytest.mark.parametrize('config, frames', [
    ('c2d_r50-official_8xb8-32x2x1-400k_kinetics400-rgb.py', 16),
    ('i3d_r50-official_8xb8-8x8x1-400k_kinetics400-rgb.py', 8),
    ('nl-i3d_r50-official_8xb8-32x2x1-400k_kinetics400-rgb.py', 16),
    # 16 frames reach res3 as 8: two groups of 4 frames for its non-local blocks.
    ('nl-i3d_r50-official-affine_8xb2-32x4x1-400k_kinetics400-rgb.py', 16),
])
def test_converted_model_gives_the_official_logits(config, frames, tmp_path):
    official = OFFICIAL_CONFIGS[config]
    blobs = random_blobs(video_blob_shapes(official, WIDTH, NUM_CLASSES), seed=1)
    pkl = str(tmp_path / 'official.pkl')
    write_python2_pickle(pkl, dict(blobs=with_training_state(blobs)))

    # float64 before conversion: the W_z bias folded into the BN mean (rm - b) is exact there.
    model = tiny_model(config).double().eval()
    state_dict, dropped = caffe2_to_model_state_dict(load_caffe2_blobs(pkl), model.state_dict(),
                                                     pkl)
    model.load_state_dict(state_dict, strict=True)
    x = torch.randn(2, 3, frames, 32, 32, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model.cls_head(model.backbone(x))
        expected = official_forward(official, blobs, x)
    assert ours.shape == (2, NUM_CLASSES)
    assert expected.abs().max() > 0.1  # a network that carries signal, not all zeros
    # FullyConvHead scores log-probabilities; one pool5 position at this size.
    torch.testing.assert_close(ours, torch.log_softmax(expected, dim=-1), rtol=1e-10,
                               atol=1e-10)
    assert 'model_iter' in dropped and 'conv1_w_momentum' in dropped


def test_fully_convolutional_test_scores_at_256():
    """A 256 crop leaves res5 at 8x8: the official test net scores 2 x 2 pool5 windows;
    nlnet's FullyConvHead gives the same probabilities (mmaction's 'prob' averaging)."""
    config = 'nl-i3d_r50-official_8xb8-8x8x1-400k_kinetics400-rgb.py'
    official = OFFICIAL_CONFIGS[config]
    blobs = random_blobs(video_blob_shapes(official, WIDTH, NUM_CLASSES), seed=2)
    model = tiny_model(config).double().eval()
    state_dict, _ = caffe2_to_model_state_dict(blobs, model.state_dict())
    model.load_state_dict(state_dict, strict=True)
    x = torch.randn(1, 3, 2, 256, 256, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        features = model.backbone(x)
        ours = torch.softmax(model.cls_head(features), dim=-1)
        expected = official_test_scores(official, blobs, x)
    assert features.shape[-2:] == (8, 8)
    torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-10)
