"""I3D head for multi-label video (Charades): per-class sigmoids, test views combined by max."""
import torch
from mmaction.models.heads import I3DHead
from mmaction.registry import MODELS

CLIP_COMBINATIONS = ('max', 'mean')


@MODELS.register_module()
class MultiLabelI3DHead(I3DHead):
    """:class:`mmaction.models.heads.I3DHead` with independent class probabilities.

    Training: binary cross-entropy on the logits against multi-hot labels
    (``loss_cls``, default ``BCELossWithLogits``). Testing: every view's sigmoid
    probabilities, combined over the views of a video by their maximum (the
    Charades recipes' ``max`` ensemble: an action seen in one clip is in the
    video) or their mean.

    Args:
        num_classes (int): number of classes (157 for Charades).
        in_channels (int): channels of the backbone's output.
        clip_combination (str): ``'max'`` (default) or ``'mean'``.
        loss_cls (dict): the loss; default ``dict(type='BCELossWithLogits')``.
        **kwargs: the other arguments of :class:`I3DHead` (``spatial_type``,
            ``dropout_ratio``, ``init_std``); not ``average_clips`` nor
            ``multi_class``, which this head fixes.
    """

    def __init__(self, num_classes, in_channels, clip_combination='max',
                 loss_cls=dict(type='BCELossWithLogits'), **kwargs):
        if clip_combination not in CLIP_COMBINATIONS:
            raise ValueError(f'clip_combination must be one of {CLIP_COMBINATIONS}, '
                             f'got {clip_combination!r}')
        for key in ('average_clips', 'multi_class'):
            if key in kwargs:
                raise ValueError(f'{key} is fixed by MultiLabelI3DHead; use clip_combination')
        super().__init__(num_classes, in_channels, loss_cls=loss_cls, multi_class=True, **kwargs)
        self.clip_combination = clip_combination

    def average_clip(self, cls_scores: torch.Tensor, num_segs: int = 1) -> torch.Tensor:
        """Per-class probabilities of each video from the logits of its views.

        Args:
            cls_scores (Tensor): (B * num_segs, num_classes) logits, the views of a
                video consecutive.
            num_segs (int): views per video.

        Returns:
            Tensor: (B, num_classes) probabilities.
        """
        probabilities = cls_scores.sigmoid().view(cls_scores.shape[0] // num_segs, num_segs, -1)
        if self.clip_combination == 'max':
            return probabilities.amax(dim=1)
        return probabilities.mean(dim=1)
