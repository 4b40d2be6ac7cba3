"""A user's video through a recognition config's test pipeline, as one batch for
``model.test_step``: the config's test views (e.g. 10 clips x 3 crops) or one view
(the centre clip, centre crop).

The pipeline is the config's own, so the model sees what ``tools/test.py`` feeds
it for the same file. A video shorter than a clip keeps MMAction2's behaviour
(``SampleFrames`` loops the frames, or repeats the last one with
``out_of_bound_opt='repeat_last'``); :class:`VideoInput` says so in ``note``.
"""
import copy
import os.path as osp
from dataclasses import dataclass

import numpy as np
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope

from nlnet.visualization import single_view_pipeline

__all__ = ['VideoInput', 'read_video', 'test_pipeline']


@dataclass
class VideoInput:
    """One video, ready for the model.

    Attributes:
        path (str): the file.
        data (dict): the pipeline's output collated as a batch of one video
            (``inputs``: [(V, C, T, H, W) uint8 RGB], ``data_samples``), the
            argument of ``model.test_step``.
        num_views (int): V, the clips x crops the model sees.
        total_frames (int): frames in the file.
        clip_len (int): frames per clip.
        frame_interval (int): video frames between two clip frames.
        frame_inds (list[int]): the video frame of each frame of the first clip.
        looped (bool): the video is shorter than a clip, so the clip reuses frames.
        reuse (str): how they are reused, the pipeline's ``out_of_bound_opt``.
    """
    path: str
    data: dict
    num_views: int
    total_frames: int
    clip_len: int
    frame_interval: int
    frame_inds: list
    looped: bool
    reuse: str = 'loop'

    @property
    def frames(self):
        """(T, H, W, 3) uint8 RGB: the first view as the model sees it, before
        normalisation (the centre view when read with ``views=1``)."""
        return self.data['inputs'][0][0].permute(1, 2, 3, 0).numpy()

    @property
    def note(self):
        """A line for the user when the clip reuses frames, else None."""
        if not self.looped:
            return None
        span = (self.clip_len - 1) * self.frame_interval + 1
        how = 'looped' if self.reuse == 'loop' else f'reused ({self.reuse})'
        return (f'note: {self.path} has {self.total_frames} frames, fewer than one clip spans '
                f'({self.clip_len} frames at interval {self.frame_interval}: {span}); its frames '
                f'are {how} as the test pipeline does')


def test_pipeline(cfg, views=None):
    """The transforms of ``cfg``'s test pipeline for ``views`` (None: the config's
    test views; 1: the centre clip and centre crop).

    Raises:
        ValueError: ``views`` other than None or 1.
    """
    if views is None:
        return copy.deepcopy(list(cfg.test_dataloader.dataset.pipeline))
    if views == 1:
        return single_view_pipeline(cfg)
    raise ValueError(f'--views {views!r}: the demo runs the config\'s test views (leave it out) '
                     'or one view (1: the centre clip, centre crop)')


def _check_file(path):
    if not osp.exists(path):
        raise ValueError(f'video {path!r} does not exist')
    if not osp.isfile(path):
        raise ValueError(f'video {path!r} is not a file')
    if osp.getsize(path) == 0:
        raise ValueError(f'video {path!r} is empty (0 bytes)')


def read_video(path, cfg, views=None):
    """Run ``path`` through ``cfg``'s test pipeline.

    Args:
        path (str): a video file (anything decord reads: MP4, AVI, WebM, ...).
        cfg (Config): a recognition config.
        views (int | None): None for the config's test views, 1 for one view.

    Returns:
        VideoInput

    Raises:
        ValueError: the file is missing or empty, no video (decord cannot open or
            decode it), or has no frames; the message names the file.
    """
    path = str(path)
    _check_file(path)
    init_default_scope(cfg.get('default_scope'))
    transforms = Compose(test_pipeline(cfg, views)).transforms
    sampler = next((t for t in transforms if type(t).__name__ == 'SampleFrames'), None)
    results = dict(filename=path, label=-1, start_index=0, modality='RGB')
    frame_inds = total_frames = None
    for transform in transforms:
        try:
            results = transform(results)
        except Exception as error:  # decord raises its own DECORDError and RuntimeErrors
            raise ValueError(f'video {path!r} cannot be read ({type(transform).__name__}: '
                             f'{type(error).__name__}: {error})') from error
        if results is None:
            raise ValueError(f'video {path!r}: the test pipeline dropped it at '
                             f'{type(transform).__name__}')
        if total_frames is None and 'total_frames' in results:
            total_frames = int(results['total_frames'])
            if not total_frames:
                raise ValueError(f'video {path!r} has no frames')
        if frame_inds is None and 'frame_inds' in results:
            frame_inds = np.asarray(results['frame_inds']).reshape(-1)
    clip_len = int(getattr(sampler, 'clip_len', len(frame_inds)))
    first_clip = [int(i) for i in frame_inds[:clip_len]]
    data = pseudo_collate([results])
    return VideoInput(
        path=path, data=data, num_views=int(data['inputs'][0].shape[0]),
        total_frames=total_frames, clip_len=clip_len,
        frame_interval=int(getattr(sampler, 'frame_interval', 1)), frame_inds=first_clip,
        looped=bool(np.any(np.diff(first_clip) <= 0)),
        reuse=getattr(sampler, 'out_of_bound_opt', 'loop'))
