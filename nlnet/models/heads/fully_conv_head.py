"""The official Caffe2 code's fully-convolutional test scores as an mmaction head."""
import math

import torch
import torch.nn.functional as F
from mmaction.models.heads import I3DHead
from mmaction.registry import MODELS


@MODELS.register_module()
class FullyConvHead(I3DHead):
    """:class:`I3DHead` scored as facebookresearch/video-nonlocal-net tests.

    The official test net (``resnet_video.py``, split ``test``) average-pools res5 with a
    (T, 7, 7) window at stride 1 (``pool5``), applies the classifier at every window
    position and averages the positions' softmax. This head returns the log of that
    average: logits whose softmax is the official probability, so that
    ``average_clips='prob'`` averages the official probabilities over clips and crops.
    With one window position (224 crops, as in training) the logits are the
    log-softmax of :class:`I3DHead`'s, which gives the same loss and prediction.

    Args:
        window (int): spatial size of the pool5 window (7); a smaller map is pooled
            whole.
        **kwargs: :class:`I3DHead` arguments (``spatial_type`` must stay ``'avg'``).

    Shape:
        input (N, in_channels, T, H, W); output (N, num_classes).
    """

    def __init__(self, window=7, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(window, int) or window < 1:
            raise ValueError(f'window must be an integer >= 1, got {window!r}')
        if self.spatial_type != 'avg':
            raise ValueError(f"spatial_type must be 'avg' for FullyConvHead, got "
                             f'{self.spatial_type!r}')
        self.window = window

    def forward(self, x, **kwargs):
        t, h, w = x.shape[2:]
        pooled = F.avg_pool3d(x, (t, min(self.window, h), min(self.window, w)), stride=1)
        if self.dropout is not None:
            pooled = self.dropout(pooled)
        positions = pooled.flatten(2).transpose(1, 2)  # (N, P, C)
        log_probs = F.log_softmax(self.fc_cls(positions), dim=-1)
        return torch.logsumexp(log_probs, dim=1) - math.log(positions.shape[1])
