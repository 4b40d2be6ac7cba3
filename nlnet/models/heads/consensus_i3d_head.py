"""I3DHead that combines a video's test views as MMAction2's TSN head does."""
import torch
from mmaction.models.heads import I3DHead
from mmaction.registry import MODELS


@MODELS.register_module()
class ConsensusI3DHead(I3DHead):
    """I3DHead whose test views are averaged before ``average_clips`` is applied.

    MMAction2's no-pool C2D rows are TSN models (Recognizer2D + TSNHead): the features
    of all frames of all test views are averaged, classified once, and
    ``average_clips='prob'`` then only applies the softmax. I3DHead instead classifies
    every view and averages the views' scores (``'score'``) or their softmaxes
    (``'prob'``). For a frame-wise backbone (no temporal pooling) all views have
    equally many positions and the classifier is linear, so the mean of the views'
    logits is the logit of the mean feature: averaging logits first and applying
    ``average_clips`` to that single score gives TSN's ``pred_score`` from the same
    checkpoint. Training (one view per video) is I3DHead's.

    Args: as :class:`mmaction.models.heads.I3DHead`.
    """

    def average_clip(self, cls_scores: torch.Tensor, num_segs: int = 1) -> torch.Tensor:
        """Average the views' logits, then average as ``average_clips`` says.

        Args:
            cls_scores (Tensor): (B * num_segs, num_classes) logits, the views of a
                video consecutive.
            num_segs (int): views per video.

        Returns:
            Tensor: (B, num_classes) scores (for ``average_clips=None``,
            (B, 1, num_classes)).
        """
        videos = cls_scores.shape[0] // num_segs
        consensus = cls_scores.view(videos, num_segs, -1).mean(dim=1)
        return super().average_clip(consensus, num_segs=1)
