"""A video dataset that survives missing, empty, truncated and corrupt files.

Kinetics is collected from YouTube: a few of its hundreds of thousands of files
are always missing or unreadable. MMAction2's ``VideoDataset`` raises on the
first one, which ends a multi-day training run. :class:`RobustVideoDataset`
instead

* in training, logs the file and the reason and draws another sample (mmengine's
  refetch), so the epoch completes with full batches;
* in testing, raises :class:`BrokenVideoError` naming the file, or, with
  ``skip_broken=True``, checks every file when the dataset is built, leaves the
  unreadable ones out and lists them in :attr:`RobustVideoDataset.skipped`.
"""
import logging
import os
import os.path as osp

from mmaction.datasets import VideoDataset
from mmaction.registry import DATASETS
from mmengine.logging import print_log

__all__ = ['RobustVideoDataset', 'BrokenVideoError']

_REASON_CHARS = 300


class BrokenVideoError(RuntimeError):
    """A video file is missing or cannot be decoded; the message names it."""


def _describe(error):
    text = ' '.join(str(error).split())
    if len(text) > _REASON_CHARS:
        text = text[:_REASON_CHARS] + '...'
    return f'{type(error).__name__}: {text}' if text else type(error).__name__


def _missing_or_empty(filename):
    """The reason a local file cannot be a video, or None (remote paths are not checked)."""
    if '://' in filename:
        return None
    if not osp.isfile(filename):
        return 'file not found'
    if os.path.getsize(filename) == 0:
        return 'empty file (0 bytes)'
    return None


@DATASETS.register_module()
class RobustVideoDataset(VideoDataset):
    """:class:`mmaction.datasets.VideoDataset` that handles broken videos.

    The pipeline's reading stage is every transform up to the last one whose
    name ends in ``Decode`` (``DecordInit``, ``SampleFrames``, ``DecordDecode``
    in the usual pipelines). An exception raised there marks the video as
    broken; exceptions of later transforms are pipeline errors and propagate.

    Args:
        skip_broken (bool): only with ``test_mode=True``. Check each video when
            the dataset is built (file exists and is not empty, the pipeline's
            ``*Init`` transforms open it, and with decord its first and last
            frames decode) and leave out those that fail; they are listed in
            :attr:`skipped`. A video that passes the check and still fails to
            decode later raises :class:`BrokenVideoError`. Default False: any
            broken video raises during testing.
        **kwargs: arguments of :class:`mmaction.datasets.VideoDataset`
            (``ann_file``, ``pipeline``, ``data_prefix``, ``test_mode``, ...).

    Attributes:
        skipped (list[dict]): ``filename``, ``label`` and ``reason`` of every
            video left out by ``skip_broken``.
    """

    def __init__(self, *args, skip_broken=False, **kwargs):
        if skip_broken and not kwargs.get('test_mode', False):
            raise ValueError('skip_broken=True needs test_mode=True: during training broken '
                             'videos are always replaced by other samples')
        self.skip_broken = skip_broken
        self.skipped = []
        super().__init__(*args, **kwargs)

    def _reading_stage(self):
        transforms = self.pipeline.transforms
        decode_positions = [i for i, t in enumerate(transforms)
                            if type(t).__name__.endswith('Decode')]
        end = decode_positions[-1] + 1 if decode_positions else 0
        return transforms[:end], transforms[end:]

    def _probe(self, data_info):
        """The reason ``data_info``'s video cannot be read, or None."""
        filename = data_info['filename']
        reason = _missing_or_empty(filename)
        if reason is not None:
            return reason
        results = dict(data_info)
        try:
            for transform in self.pipeline.transforms:
                if not type(transform).__name__.endswith('Init'):
                    break
                results = transform(results)
            reader = results.get('video_reader')
            if results.get('total_frames', 1) < 1:
                return 'the video has no frames'
            if reader is not None and hasattr(reader, 'get_batch'):
                reader.get_batch([0, len(reader) - 1]).asnumpy()
        except Exception as error:  # any failure to open or decode makes the file unusable
            return _describe(error)
        return None

    def filter_data(self):
        data_list = super().filter_data()
        if not (self.test_mode and self.skip_broken):
            return data_list
        kept = []
        for data_info in data_list:
            reason = self._probe(data_info)
            if reason is None:
                kept.append(data_info)
                continue
            self.skipped.append(
                dict(filename=data_info['filename'], label=data_info['label'], reason=reason))
            print_log(f'skipping broken video {data_info["filename"]}: {reason}',
                      logger='current', level=logging.WARNING)
        if self.skipped:
            print_log(f'{len(self.skipped)} of {len(data_list)} videos are broken and left out '
                      f'of {self.ann_file}', logger='current', level=logging.WARNING)
        return kept

    def prepare_data(self, idx):
        """The sample after the pipeline; None (train) or an error (test) for a broken video."""
        data_info = self.get_data_info(idx)
        filename = data_info['filename']
        reading, rest = self._reading_stage()
        reason = _missing_or_empty(filename)
        results = data_info
        if reason is None:
            try:
                for transform in reading:
                    results = transform(results)
                    if results is None:
                        return None
            except Exception as error:  # the reading stage failed: the file is at fault
                reason = _describe(error)
        if reason is not None:
            if self.test_mode:
                raise BrokenVideoError(f'cannot read video {filename}: {reason}')
            print_log(f'broken video {filename} ({reason}); drawing another sample instead',
                      logger='current', level=logging.WARNING)
            return None
        for transform in rest:
            results = transform(results)
            if results is None:
                return None
        return results
