"""FullyConvHead: the official Caffe2 fully-convolutional test scores."""
import pytest
import torch
import torch.nn.functional as F
from mmaction.models.heads import I3DHead

from nlnet.models.heads import FullyConvHead

HEAD = dict(num_classes=5, in_channels=6, dropout_ratio=0.5)


def heads():
    torch.manual_seed(0)
    ours = FullyConvHead(**HEAD).eval()
    theirs = I3DHead(**HEAD).eval()
    ours.init_weights()
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def test_one_window_gives_i3d_head_probabilities():
    """224 crops: res5 is 7x7, one pool5 position (training and the official val net)."""
    ours, theirs = heads()
    x = torch.randn(2, 6, 4, 7, 7)
    torch.testing.assert_close(ours(x), F.log_softmax(theirs(x), dim=-1))


def test_scores_average_the_softmax_of_every_window():
    """256 crops: res5 is 8x8, pool5 (T x 7 x 7, stride 1) has 2 x 2 positions, each
    classified; the official score is the mean of their softmax."""
    ours, _ = heads()
    x = torch.randn(2, 6, 4, 8, 8)
    windows = [x[:, :, :, i:i + 7, j:j + 7].mean(dim=(2, 3, 4)) for i in (0, 1) for j in (0, 1)]
    expected = torch.stack([torch.softmax(ours.fc_cls(w), dim=-1) for w in windows]).mean(0)
    torch.testing.assert_close(torch.softmax(ours(x), dim=-1), expected)
    assert not torch.allclose(expected, torch.softmax(ours.fc_cls(x.mean(dim=(2, 3, 4))), -1))


def test_arguments_are_validated():
    with pytest.raises(ValueError, match='window must be an integer >= 1, got 0'):
        FullyConvHead(window=0, **HEAD)
    with pytest.raises(ValueError, match="spatial_type must be 'avg'"):
        FullyConvHead(spatial_type=None, **HEAD)
