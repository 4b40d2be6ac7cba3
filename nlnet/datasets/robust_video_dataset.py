"""A video dataset that survives missing, empty, truncated and corrupt files.

Kinetics is collected from YouTube: a few of its hundreds of thousands of files
are always missing or unreadable. MMAction2's ``VideoDataset`` raises on the
first one, which ends a multi-day training run. :class:`RobustVideoDataset`
instead

* in training, draws another sample (mmengine's refetch), so the epoch
  completes with full batches, and records the file and the reason in the
  returned sample's ``replaced_videos`` (:class:`BrokenVideoHook` logs them);
* in testing, raises :class:`BrokenVideoError` naming the file (``strict=True``,
  the default), or, with ``strict=False``, returns the next readable video in
  its place marked ``broken_video`` so that the batch stays full and
  :class:`ReadableAccMetric` leaves it out of the metrics. Videos are checked
  as they are read, not up front: on a 20k-video set a build-time check costs
  minutes (``benchmarks/bench_check_videos.py``). ``skip_broken=True`` checks
  every file when the dataset is built instead, and lists the unreadable ones
  in :attr:`RobustVideoDataset.skipped`.
"""
import logging
import os
import os.path as osp
import re

from mmaction.datasets import VideoDataset
from mmaction.registry import DATASETS
from mmengine.logging import print_log

__all__ = ['RobustVideoDataset', 'BrokenVideoError', 'describe_error', 'missing_or_empty']

_REASON_CHARS = 300
# decord prefixes its messages with the time of day, e.g. "[20:23:17] ".
_DECORD_CLOCK = re.compile(r'\[\d\d:\d\d:\d\d\] ')


class BrokenVideoError(RuntimeError):
    """A video file is missing or cannot be decoded; the message names it."""


def describe_error(error):
    """``<type>: <message>`` on one line, without decord's clock time, at most ~300 characters.

    The same broken file gives the same text every time, so it is reported once.
    """
    text = _DECORD_CLOCK.sub('', ' '.join(str(error).split()))
    if len(text) > _REASON_CHARS:
        text = text[:_REASON_CHARS] + '...'
    return f'{type(error).__name__}: {text}' if text else type(error).__name__


def missing_or_empty(filename):
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

    Samples that stand in for broken videos carry, in their data sample's
    metainfo, ``replaced_videos`` (training: list of dicts with ``filename``
    and ``reason``, one per broken video drawn before this one) or
    ``broken_video`` (testing with ``strict=False``: dict with ``filename``,
    ``label`` and ``reason`` of the video this sample stands in for).

    Args:
        strict (bool): only with ``test_mode=True``. True (default): a broken
            video raises :class:`BrokenVideoError` naming it. False: it is
            replaced by the next readable video, marked ``broken_video``; the
            evaluator must then leave marked samples out
            (``val_evaluator = dict(type='ReadableAccMetric')``).
        skip_broken (bool): only with ``test_mode=True``. Check each video when
            the dataset is built (file exists and is not empty, the pipeline's
            ``*Init`` transforms open it, and with decord its first and last
            frames decode) and leave out those that fail; they are listed in
            :attr:`skipped`. Default False.
        **kwargs: arguments of :class:`mmaction.datasets.VideoDataset`
            (``ann_file``, ``pipeline``, ``data_prefix``, ``test_mode``, ...).

    Attributes:
        skipped (list[dict]): ``filename``, ``label`` and ``reason`` of every
            video left out by ``skip_broken``.
    """

    def __init__(self, *args, strict=True, skip_broken=False, **kwargs):
        test_mode = kwargs.get('test_mode', False)
        for name, value in (('strict', strict), ('skip_broken', skip_broken)):
            if not isinstance(value, bool):
                raise TypeError(f'{name} must be True or False, got {value!r}')
        if skip_broken and not test_mode:
            raise ValueError('skip_broken=True needs test_mode=True: during training broken '
                             'videos are always replaced by other samples')
        if not strict and not test_mode:
            raise ValueError('strict=False needs test_mode=True: during training broken '
                             'videos are always replaced by other samples')
        self.strict = strict
        self.skip_broken = skip_broken
        self.skipped = []
        # Indices found broken by this process (each dataloader worker has its
        # own copy): never drawn again as a replacement, never decoded twice.
        self._known_broken = {}
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
        reason = missing_or_empty(filename)
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
            return describe_error(error)
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

    def _read(self, idx):
        """``(sample, None)`` after the pipeline, or ``(None, reason)`` for a broken video.

        The sample is None without a reason where a later transform dropped it.
        """
        if idx in self._known_broken:
            return None, self._known_broken[idx]
        data_info = self.get_data_info(idx)
        reading, rest = self._reading_stage()
        reason = missing_or_empty(data_info['filename'])
        results = data_info
        if reason is None:
            try:
                for transform in reading:
                    results = transform(results)
                    if results is None:
                        return None, None
            except Exception as error:  # the reading stage failed: the file is at fault
                reason = describe_error(error)
        if reason is not None:
            self._known_broken[idx] = reason
            return None, reason
        for transform in rest:
            results = transform(results)
            if results is None:
                return None, None
        return results, None

    def prepare_data(self, idx):
        """The sample after the pipeline; None (train) or an error (test) for a broken video."""
        sample, reason = self._read(idx)
        if reason is not None and self.test_mode:
            raise BrokenVideoError(
                f'cannot read video {self.get_data_info(idx)["filename"]}: {reason}')
        return sample

    def _broken_entry(self, idx, reason):
        data_info = self.get_data_info(idx)
        return dict(filename=data_info['filename'], label=data_info['label'], reason=reason)

    def _another(self, idx):
        """The index to read instead of ``idx``: random in training, the next one in testing."""
        if len(self._known_broken) >= len(self):
            raise BrokenVideoError(f'every video of {self.ann_file} is broken')
        while True:
            idx = (idx + 1) % len(self) if self.test_mode else self._rand_another()
            if idx not in self._known_broken:
                return idx

    def __getitem__(self, idx):
        if not self._fully_initialized:
            self.full_init()
        replaced = []
        for _ in range(self.max_refetch + 1):
            sample, reason = self._read(idx)
            if reason is not None:
                entry = self._broken_entry(idx, reason)
                if self.test_mode and self.strict:
                    raise BrokenVideoError(f'cannot read video {entry["filename"]}: {reason}')
                replaced.append(entry)
            elif sample is not None:
                return self._mark(sample, replaced)
            elif self.test_mode:
                raise RuntimeError(f'the test pipeline dropped sample {idx} of {self.ann_file}')
            idx = self._another(idx)
        raise RuntimeError(f'no readable sample after {self.max_refetch + 1} tries in '
                           f'{self.ann_file}: {replaced}')

    def _mark(self, sample, replaced):
        if not replaced:
            return sample
        if self.test_mode:
            # Only the video this index stands for; broken videos skipped on
            # the way are reported when their own index is read.
            sample['data_samples'].set_metainfo(dict(broken_video=replaced[0]))
        else:
            sample['data_samples'].set_metainfo(
                dict(replaced_videos=[dict(filename=e['filename'], reason=e['reason'])
                                      for e in replaced]))
        return sample
