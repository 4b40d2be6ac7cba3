"""Check every video of an annotation list with decord before training on it.

:func:`scan_videos` opens each listed video in a pool of worker processes,
reads its frame count and decodes (:func:`check_video`)

* by default, the frames the validation and test views of the shipped configs
  read (:data:`CONFIG_VIEW_SAMPLINGS`, sampled by mmaction's own
  ``SampleFrames``) and the first, middle and last frame. Damage in frames that
  only training clips reach (random offsets anywhere in a video) is not seen;
* with ``thorough=True``, in addition every frame, in order.

It keeps its progress in ``<out_dir>/checked.tsv`` (``checked_thorough.tsv`` when
thorough; one line per video, flushed as it goes), so an interrupted scan resumes
where it stopped, and finally writes

* ``broken.txt``: ``<path>\\t<reason>`` per unreadable video;
* ``ok_list.txt``: the annotation file without the broken entries (usable as
  ``ann_file``);
* ``summary.txt``: counts per reason and per class, the classes left without a
  readable video, and the Kinetics-400 split sizes beside the ones found.

Each worker opens its own readers (a reader never crosses a fork).
"""
import functools
import multiprocessing
import os
import os.path as osp
from collections import Counter
from dataclasses import dataclass, field

import decord
from mmaction.datasets.transforms import SampleFrames
from mmengine.utils import ProgressBar

from .robust_video_dataset import describe_error, missing_or_empty

__all__ = ['check_video', 'view_frames', 'scan_videos', 'ScanResult', 'KINETICS400_SPLIT_SIZES',
           'CONFIG_VIEW_SAMPLINGS']

# Videos per split of Kinetics-400: its first release (Kay et al. 2017,
# 306,245 clips) and MMAction2's validation copy (data/kinetics400.md).
KINETICS400_SPLIT_SIZES = {
    'train': [('original release', 246245)],
    'val': [('original release', 20000), ("MMAction2's copy", 19796)],
    'test': [('original release', 40000)],
}
KINETICS400_CLASSES = 400
PROGRESS_NAME = 'checked.tsv'
# A thorough scan keeps its own progress: a default scan's verdicts do not stand for it.
THOROUGH_PROGRESS_NAME = 'checked_thorough.tsv'
# (clip_len, frame_interval, num_clips) of every SampleFrames(test_mode=True) in the
# validation and test pipelines of configs/ (tests/test_datasets/test_video_check.py
# reads them from there).
CONFIG_VIEW_SAMPLINGS = ((8, 2, 1), (8, 2, 10), (8, 8, 1), (8, 8, 10), (16, 4, 1), (16, 4, 10),
                         (32, 2, 1), (32, 2, 10), (32, 4, 1), (32, 4, 10), (128, 1, 1),
                         (128, 1, 10))
# Frames decoded per get_batch call: bounds the memory of long videos.
_BATCH_FRAMES = 32
_samplers = None


def view_frames(num_frames):
    """Sorted indices (0-based) of the frames the views of :data:`CONFIG_VIEW_SAMPLINGS`
    read from a video of ``num_frames`` frames, with its first, middle and last frame."""
    global _samplers
    if _samplers is None:
        _samplers = [SampleFrames(clip_len, frame_interval, num_clips, test_mode=True)
                     for clip_len, frame_interval, num_clips in CONFIG_VIEW_SAMPLINGS]
    frames = {0, num_frames // 2, num_frames - 1}
    for sampler in _samplers:
        frames.update(sampler(dict(total_frames=num_frames, start_index=0))['frame_inds']
                      .ravel().tolist())
    return sorted(frames)


def check_video(path, thorough=False):
    """``(num_frames, reason)`` of the video at ``path``; ``reason`` is None if it is readable.

    Decodes the frames of :func:`view_frames` (seeking as the test pipelines'
    ``DecordDecode`` does), and with ``thorough`` then every frame in order.

    A reason is ``<kind>`` or ``<kind>: <detail>``, the kind one of ``file not
    found``, ``empty file (0 bytes)``, ``cannot open``, ``no frames``,
    ``cannot decode``.
    """
    reason = missing_or_empty(path)
    if reason is not None:
        return 0, reason
    try:
        reader = decord.VideoReader(path, num_threads=1)
        num_frames = len(reader)
    except Exception as error:  # decord raises its own and runtime errors on bad containers
        return 0, f'cannot open: {describe_error(error)}'
    if num_frames < 1:
        return 0, 'no frames'
    frames = view_frames(num_frames)
    try:
        for first in range(0, len(frames), _BATCH_FRAMES):
            reader.get_batch(frames[first:first + _BATCH_FRAMES]).asnumpy()
    except Exception as error:  # a frame the header promises does not decode
        return num_frames, f'cannot decode: {describe_error(error)}'
    if thorough:
        index = 0
        try:
            reader = decord.VideoReader(path, num_threads=1)
            for index in range(num_frames):
                reader.next()
        except Exception as error:  # incl. StopIteration: fewer frames decode than listed
            return num_frames, f'cannot decode: frame {index}: {describe_error(error)}'
    return num_frames, None


def reason_kind(reason):
    """The kind of a :func:`check_video` reason (the part before the detail)."""
    return reason.split(':', 1)[0]


@dataclass
class AnnotationEntry:
    line: str
    path: str
    label: str


def read_annotation(ann_file, data_prefix):
    """The entries of an MMAction2 video list (``<relative path> <label> ...`` per line)."""
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'annotation file not found: {ann_file}')
    entries = []
    with open(ann_file) as handle:
        for number, line in enumerate(handle, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 2:
                raise ValueError(f'{ann_file}, line {number}: expected "<path> <label>", '
                                 f'got {line.strip()!r}')
            entries.append(AnnotationEntry(line.rstrip('\n'), osp.join(data_prefix, fields[0]),
                                           fields[1]))
    return entries


def _read_progress(path):
    """``{video path: (num_frames, reason)}`` from a progress file; drops a half-written line."""
    done = {}
    if not osp.isfile(path):
        return done
    with open(path) as handle:
        for line in handle:
            if not line.endswith('\n'):
                break
            video, frames, reason = line.rstrip('\n').split('\t')
            done[video] = (int(frames), reason or None)
    return done


def _check_entry(path, thorough=False):
    return (path, *check_video(path, thorough))


@dataclass
class ScanResult:
    """What a scan found; ``checked`` maps every listed video path to ``(num_frames, reason)``."""

    ann_file: str
    entries: list
    checked: dict
    resumed: int = 0
    broken: dict = field(init=False)

    def __post_init__(self):
        self.broken = {e.path: self.checked[e.path][1] for e in self.entries
                       if self.checked[e.path][1] is not None}

    def summary(self):
        """The summary as lines of text."""
        total, broken = len(self.entries), len(self.broken)
        lines = [f'{self.ann_file}: {total} videos listed, {total - broken} readable, '
                 f'{broken} broken' + (f' ({self.resumed} checked by an earlier run)'
                                       if self.resumed else '')]
        kinds = Counter(reason_kind(reason) for reason in self.broken.values())
        lines += ['broken by reason:'] + [f'  {kind}: {count}' for kind, count in
                                          sorted(kinds.items(), key=lambda item: -item[1])]
        listed = Counter(e.label for e in self.entries)
        readable = Counter(e.label for e in self.entries if e.path not in self.broken)
        empty = [label for label in sorted(listed, key=_label_order) if readable[label] == 0]
        lines.append(f'classes: {len(listed)} listed (Kinetics-400: {KINETICS400_CLASSES}), '
                     f'{len(empty)} with no readable video')
        lines += [f'  class {label}: no readable video of {listed[label]}' for label in empty]
        broken_classes = sorted((label for label in listed if readable[label] < listed[label]),
                                key=_label_order)
        lines += ['broken per class:'] + [
            f'  class {label}: {listed[label] - readable[label]} of {listed[label]}'
            for label in broken_classes]
        lines.append('Kinetics-400 split sizes (expected / found here):')
        split = _split_of(self.ann_file)
        for name, sizes in KINETICS400_SPLIT_SIZES.items():
            if split in (None, name):
                for source, size in sizes:
                    lines.append(f'  {name} ({source}): {size} / {total} listed, '
                                 f'{total - broken} readable')
        return lines


def _label_order(label):
    return (0, int(label), '') if label.isdigit() else (1, 0, label)


def _split_of(ann_file):
    name = osp.basename(ann_file)
    found = [split for split in KINETICS400_SPLIT_SIZES if split in name]
    return found[0] if len(found) == 1 else None


def scan_videos(ann_file, data_prefix, out_dir, workers=1, progress_file=None, thorough=False):
    """Check every video of ``ann_file``, resuming an earlier scan into ``out_dir``.

    Args:
        ann_file (str): MMAction2 video list, ``<path relative to data_prefix> <label>``.
        data_prefix (str): folder the listed paths are relative to.
        out_dir (str): where ``checked.tsv``, ``broken.txt``, ``ok_list.txt`` and
            ``summary.txt`` are written.
        workers (int): decoding processes (>= 1).
        progress_file: stream for the progress bar with ETA (None: no bar).
        thorough (bool): decode every frame (:func:`check_video`); the progress is
            kept in ``checked_thorough.tsv`` instead.

    Returns:
        ScanResult: the findings for every listed video.
    """
    if workers < 1:
        raise ValueError(f'workers must be >= 1, got {workers}')
    if not osp.isdir(data_prefix):
        raise FileNotFoundError(f'data prefix is not a directory: {data_prefix}')
    entries = read_annotation(ann_file, data_prefix)
    os.makedirs(out_dir, exist_ok=True)
    progress_path = osp.join(out_dir, THOROUGH_PROGRESS_NAME if thorough else PROGRESS_NAME)
    checked = _read_progress(progress_path)
    listed = list(dict.fromkeys(e.path for e in entries))
    todo = [path for path in listed if path not in checked]
    resumed = len(listed) - len(todo)
    # Rewrite without a half-written last line, then append as results come in.
    with open(progress_path, 'w') as handle:
        handle.writelines(f'{path}\t{frames}\t{reason or ""}\n'
                          for path, (frames, reason) in checked.items())
    if todo:
        bar = ProgressBar(len(todo), file=progress_file) if progress_file else None
        with open(progress_path, 'a') as handle, \
                multiprocessing.get_context('fork').Pool(workers) as pool:
            check = functools.partial(_check_entry, thorough=thorough)
            for path, frames, reason in pool.imap_unordered(check, todo, chunksize=1):
                handle.write(f'{path}\t{frames}\t{reason or ""}\n')
                handle.flush()
                checked[path] = (frames, reason)
                if bar is not None:
                    bar.update()
        if bar is not None:
            progress_file.write('\n')
    result = ScanResult(ann_file, entries, checked, resumed)
    _write_outputs(result, out_dir)
    return result


def _write_outputs(result, out_dir):
    with open(osp.join(out_dir, 'broken.txt'), 'w') as handle:
        handle.writelines(f'{path}\t{reason}\n' for path, reason in result.broken.items())
    with open(osp.join(out_dir, 'ok_list.txt'), 'w') as handle:
        handle.writelines(f'{e.line}\n' for e in result.entries if e.path not in result.broken)
    with open(osp.join(out_dir, 'summary.txt'), 'w') as handle:
        handle.write('\n'.join(result.summary()) + '\n')
