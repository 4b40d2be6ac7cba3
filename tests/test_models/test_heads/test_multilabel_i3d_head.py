"""MultiLabelI3DHead: binary cross-entropy on multi-hot labels, test views combined by max/mean."""
import pytest
import torch
import torch.nn.functional as F

import nlnet.openmmlab  # noqa: F401  (registers MultiLabelI3DHead)
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample

DEFAULT_SCOPE = 'mmaction'
VIDEOS, VIEWS, CHANNELS, CLASSES = 2, 3, 8, 6


def head(**kwargs):
    return MODELS.build(dict(type='MultiLabelI3DHead', num_classes=CLASSES, in_channels=CHANNELS,
                             dropout_ratio=0.0, **kwargs))


def explicit_logits(model, feats):
    """The head's logits written out: spatio-temporal average, then the linear classifier."""
    return feats.mean(dim=(2, 3, 4)) @ model.fc_cls.weight.T + model.fc_cls.bias


@pytest.mark.parametrize('combination', ['max', 'mean'])
def test_views_are_combined_over_their_sigmoids(combination):
    torch.manual_seed(0)
    model = head(clip_combination=combination).eval()
    feats = torch.randn(VIDEOS * VIEWS, CHANNELS, 2, 2, 2) * 3
    samples = [ActionDataSample() for _ in range(VIDEOS)]
    with torch.no_grad():
        scores = torch.stack([s.pred_score for s in model.predict(feats, samples)])
        probabilities = explicit_logits(model, feats).sigmoid().view(VIDEOS, VIEWS, CLASSES)
    expected = probabilities.amax(dim=1) if combination == 'max' else probabilities.mean(dim=1)
    torch.testing.assert_close(scores, expected)
    assert scores.shape == (VIDEOS, CLASSES)


def test_training_loss_is_binary_cross_entropy_on_multi_hot_labels():
    torch.manual_seed(0)
    model = head()
    feats = torch.randn(VIDEOS, CHANNELS, 2, 2, 2)
    labels = torch.tensor([[1., 0, 1, 0, 0, 0], [0., 0, 0, 0, 0, 0]])  # 2nd clip: no action
    samples = [ActionDataSample().set_gt_label(label) for label in labels]
    losses = model.loss(feats, samples)
    assert set(losses) == {'loss_cls'}
    expected = F.binary_cross_entropy_with_logits(explicit_logits(model, feats), labels)
    torch.testing.assert_close(losses['loss_cls'], expected)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="clip_combination must be one of .* got 'median'"):
        head(clip_combination='median')
    with pytest.raises(ValueError, match='average_clips is fixed by MultiLabelI3DHead'):
        head(average_clips='prob')
