"""ConsensusI3DHead scores a video's test views as MMAction2's TSNHead does."""
import pytest
import torch

import nlnet.openmmlab  # noqa: F401  (registers ConsensusI3DHead)
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample

DEFAULT_SCOPE = 'mmaction'
VIDEOS, VIEWS, FRAMES, CHANNELS, CLASSES = 2, 3, 4, 16, 5


def head(type_, average_clips):
    return MODELS.build(dict(type=type_, num_classes=CLASSES, in_channels=CHANNELS,
                             dropout_ratio=0.4, average_clips=average_clips)).eval()


def pred_scores(model, feats, **kwargs):
    samples = [ActionDataSample() for _ in range(VIDEOS)]
    with torch.no_grad():
        return torch.stack([s.pred_score for s in model.predict(feats, samples, **kwargs)])


@pytest.mark.parametrize('average_clips', ['prob', 'score'])
def test_views_are_scored_as_tsn_scores_all_their_frames(average_clips):
    """(videos x views, C, T, H, W) features of a frame-wise backbone give the scores TSNHead
    gives for the same frames as (videos x views x T, C, H, W) 2D features."""
    torch.manual_seed(0)
    feats = torch.randn(VIDEOS * VIEWS, CHANNELS, FRAMES, 2, 2) * 3
    ours = head('ConsensusI3DHead', average_clips)
    tsn = head('TSNHead', average_clips)
    tsn.fc_cls.load_state_dict(ours.fc_cls.state_dict())
    frames = feats.transpose(1, 2).reshape(-1, CHANNELS, 2, 2)

    expected = pred_scores(tsn, frames, num_segs=VIEWS * FRAMES)
    torch.testing.assert_close(pred_scores(ours, feats), expected, rtol=1e-5, atol=1e-6)
    if average_clips == 'prob':
        torch.testing.assert_close(expected.sum(dim=1), torch.ones(VIDEOS))
        # I3DHead averages the views' softmaxes: not TSN's scores.
        per_view = head('I3DHead', average_clips)
        per_view.fc_cls.load_state_dict(ours.fc_cls.state_dict())
        assert not torch.allclose(pred_scores(per_view, feats), expected, atol=1e-3)

