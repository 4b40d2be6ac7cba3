"""Tensor-in/tensor-out forms of OpenMMLab models, what an exporter traces.

An OpenMMLab model's ``forward`` takes data samples and returns them; these
wrap its test-time computation on a tensor that the config's data preprocessor
has already made (mean/std normalised, RGB, in its layout).
"""
import torch.nn as nn
from mmengine.model import revert_sync_batchnorm


class RecognizerScores(nn.Module):
    """Class scores of a video recognizer, each input clip one view of its own video.

    Backbone (and neck), head, and the head's test-time combination of views
    (``average_clip`` with one view: softmax probabilities for ``average_clips=
    'prob'``, sigmoid for :class:`~nlnet.models.heads.MultiLabelI3DHead`), as
    ``test_step`` scores a one-view video.

    Args:
        recognizer (nn.Module): an MMAction2 ``Recognizer3D``.

    Shape:
        input (N, C, T, H, W) normalised clips; output (N, num_classes).
    """

    def __init__(self, recognizer):
        super().__init__()
        self.recognizer = recognizer

    def forward(self, clips):
        features, _ = self.recognizer.extract_feat(clips.unsqueeze(1))
        head = self.recognizer.cls_head
        return head.average_clip(head(features), num_segs=1)


class SegmentorLogits(nn.Module):
    """Class logits of a segmentor at its input's size, the whole image at once.

    MMSeg's ``encode_decode``: backbone, decode head (no auxiliary head) and a
    bilinear resize to the input; the mask is their argmax over classes. A config
    testing by sliding windows (``test_cfg.mode='slide'``) runs this on each window.
    SyncBN layers become BatchNorm (one process, eval statistics: the same output).

    Args:
        segmentor (nn.Module): an MMSeg ``EncoderDecoder``.

    Shape:
        input (N, 3, H, W) normalised images; output (N, num_classes, H, W).
    """

    def __init__(self, segmentor):
        super().__init__()
        self.segmentor = revert_sync_batchnorm(segmentor)

    def forward(self, images):
        # The head resizes to the first image's img_shape: every image of the batch has it.
        return self.segmentor.encode_decode(images, [dict(img_shape=images.shape[2:])])
