"""Charades (Sigurdsson et al., 2016): 157 actions, several per video, labelled in time.

On-disk layout of the Charades_v1 release (``data/charades.md``)::

    Charades_v1_480/<id>.mp4          # the videos, or
    Charades_v1_rgb/<id>/<id>-000001.jpg ...   # their frames, extracted at 24 fps
    Charades_v1_train.csv             # id, ..., actions, length
    Charades_v1_test.csv
    Charades_v1_classes.txt           # "c000 Holding some clothes", line i is class i

The ``actions`` column lists the video's actions with their time spans in
seconds, ``c092 11.90 21.20;c147 0.00 12.60``. As in the official recipes
(PySlowFast's ``charades.py``), a training clip is labelled with the actions
active during the frames it spans; test videos are labelled with all of their
actions (every test clip of a video votes for the same label set).
"""
import csv
import math
import os
import os.path as osp
from dataclasses import dataclass

import torch
from mmaction.registry import DATASETS
from mmengine.fileio import exists

from .robust_video_dataset import RobustVideoDataset

__all__ = ['ActionSpan', 'CharadesDataset', 'load_charades_classes', 'parse_actions',
           'read_charades_csv', 'active_classes']

CLIP_LABELS = ('span', 'video')
REQUIRED_COLUMNS = ('id', 'actions')
# Times in the csv have two decimals; a span ending exactly on a frame's time
# must include that frame despite float rounding (0.35 s x 20 fps = 6.999...).
_TIME_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ActionSpan:
    """One annotated action: class index and its span in seconds, ends included."""

    label: int
    start: float
    end: float


def load_charades_classes(path):
    """Class ids (``c000``, ...) in label order, from ``Charades_v1_classes.txt``."""
    with open(path) as handle:
        lines = [line.strip() for line in handle if line.strip()]
    ids = [line.split(maxsplit=1)[0] for line in lines]
    if len(set(ids)) != len(ids):
        raise ValueError(f'{path}: class ids are not unique')
    return ids


def parse_actions(text, class_index, where):
    """The :class:`ActionSpan` list of one ``actions`` cell (empty for a video without actions).

    Args:
        text (str): e.g. ``'c092 11.90 21.20;c147 0.00 12.60'``.
        class_index (dict[str, int]): class id -> label.
        where (str): file and row, for error messages.
    """
    spans = []
    for item in filter(None, (part.strip() for part in text.split(';'))):
        fields = item.split()
        if len(fields) != 3:
            raise ValueError(f'{where}: action {item!r} is not "<class> <start> <end>"')
        name, start, end = fields
        if name not in class_index:
            raise ValueError(f'{where}: unknown action class {name!r}')
        try:
            start, end = float(start), float(end)
        except ValueError:
            raise ValueError(f'{where}: action {item!r} has a non-numeric time') from None
        if not (math.isfinite(start) and math.isfinite(end)):
            raise ValueError(f'{where}: action {item!r} has a non-finite time')
        if not 0 <= start <= end:
            raise ValueError(f'{where}: action {item!r} does not satisfy 0 <= start <= end')
        spans.append(ActionSpan(class_index[name], start, end))
    return spans


def csv_records(handle):
    """``(first_line, last_line, fields)`` of each record of a csv file that is not blank
    (empty or whitespace only).

    The lines are the file's own (from 1): a quoted cell may hold newlines, so a
    record can span several lines and the record count is not a line number.
    """
    reader = csv.reader(handle)
    last_line = 0
    for fields in reader:
        first_line, last_line = last_line + 1, reader.line_num
        if any(field.strip() for field in fields):
            yield first_line, last_line, fields


def read_charades_csv(path, class_index):
    """``[(video_id, [ActionSpan, ...]), ...]`` of a ``Charades_v1_*.csv``, in file order.

    Every row must have as many fields as the header, a non-empty ``id`` seen
    on no other row, and well-formed ``actions``; errors name the file, the
    row's line in the file and the video. A UTF-8 byte order mark before the
    header is skipped.

    Args:
        path (str): the csv file, with at least the columns ``id`` and ``actions``.
        class_index (dict[str, int]): class id -> label.
    """
    videos, first_seen = [], {}
    with open(path, newline='', encoding='utf-8-sig') as handle:
        records = csv_records(handle)
        try:
            _, _, header = next(records)
        except StopIteration:
            raise ValueError(f'{path}: empty file, expected a header with the columns '
                             f'{list(REQUIRED_COLUMNS)}') from None
        missing = set(REQUIRED_COLUMNS) - set(header)
        if missing:
            raise ValueError(f'{path}: missing column(s) {sorted(missing)}')
        for first_line, last_line, fields in records:
            lines = (f'line {first_line}' if first_line == last_line
                     else f'lines {first_line}-{last_line}')
            if len(fields) != len(header):
                raise ValueError(f'{path}, {lines}: {len(fields)} fields where the header has '
                                 f'{len(header)} ({",".join(header)}); a truncated row or '
                                 'an unquoted comma?')
            row = dict(zip(header, fields))
            video_id = row['id']
            if not video_id.strip():
                raise ValueError(f'{path}, {lines}: empty id')
            if video_id in first_seen:
                raise ValueError(f'{path}, {lines}: video {video_id} is listed twice (first on '
                                 f'line {first_seen[video_id]})')
            first_seen[video_id] = first_line
            where = f'{path}, {lines} (video {video_id})'
            videos.append((video_id, parse_actions(row['actions'], class_index, where)))
    if not videos:
        raise ValueError(f'{path}: no videos, only the header')
    return videos


def active_classes(spans, first_frame, last_frame, fps):
    """Sorted labels of the actions active on some frame of ``first_frame..last_frame``.

    Frame ``i`` shows time ``i / fps``; an action is active on it when
    ``start <= i / fps <= end``.

    Args:
        spans (list[ActionSpan]): the video's actions.
        first_frame (int): first frame of the clip (0-based).
        last_frame (int): last frame of the clip, included.
        fps (float): frames per second of the decoded video.
    """
    if fps <= 0:
        raise ValueError(f'fps must be positive, got {fps}')
    labels = set()
    for span in spans:
        first_active = max(first_frame, math.ceil(span.start * fps - _TIME_TOLERANCE))
        last_active = min(last_frame, math.floor(span.end * fps + _TIME_TOLERANCE))
        if first_active <= last_active:
            labels.add(span.label)
    return sorted(labels)


@DATASETS.register_module()
class CharadesDataset(RobustVideoDataset):
    """Charades videos with multi-hot labels, as tolerant of broken files as Kinetics'.

    Each sample's ``label`` is a float tensor of ``num_classes`` zeros and ones.
    With ``clip_labels='span'`` it is computed after frame sampling from the
    sampled frames' first and last index and the video's frame rate (decord's
    ``avg_fps``, or ``frame_fps`` for extracted frames); the pipeline's reading
    stage must therefore contain ``SampleFrames``.

    Videos are read from ``data_prefix['video']`` (``<id><video_ext>``, with
    ``DecordInit`` / ``DecordDecode``); with ``data_prefix=dict(img=...)``
    from frame folders ``<id>/<id>-000001.jpg ...`` (``RawFrameDecode``, frames
    numbered from 1); a sample's ``filename`` is then its first frame, so a
    missing folder is reported by that file's name.

    Args:
        ann_file (str): ``Charades_v1_{train,test}.csv``.
        class_file (str): ``Charades_v1_classes.txt``.
        clip_labels (str): ``'span'`` (default in training): the actions active
            in the clip; ``'video'``: all actions of the video. Test datasets
            always use ``'video'``.
        video_ext (str): extension of the files under ``data_prefix['video']``.
        frame_fps (float): frame rate of extracted frames (24 for Charades_v1_rgb),
            used where the decoder reports none.
        **kwargs: arguments of :class:`RobustVideoDataset` (``pipeline``,
            ``data_prefix``, ``test_mode``, ``strict``, ``skip_broken``, ...).
    """

    def __init__(self, ann_file, class_file, clip_labels='span', video_ext='.mp4', frame_fps=24,
                 **kwargs):
        if clip_labels not in CLIP_LABELS:
            raise ValueError(f'clip_labels must be one of {CLIP_LABELS}, got {clip_labels!r}')
        for key in ('multi_class', 'num_classes'):
            if key in kwargs:
                raise ValueError(f'{key} is set by CharadesDataset (from class_file), not the '
                                 'config')
        if frame_fps <= 0:
            raise ValueError(f'frame_fps must be positive, got {frame_fps}')
        if 'metainfo' in kwargs:
            raise ValueError("metainfo is set by CharadesDataset (classes from class_file)")
        if not exists(class_file):
            raise FileNotFoundError(f'class_file {class_file!r} does not exist')
        self.class_ids = load_charades_classes(class_file)
        self.clip_labels = 'video' if kwargs.get('test_mode', False) else clip_labels
        self.video_ext = video_ext
        self.frame_fps = frame_fps
        if 'img' in kwargs.get('data_prefix', {}):
            kwargs.setdefault('start_index', 1)
        # metainfo reaches the evaluator as dataset_meta: CharadesMAP names classes by their ids.
        super().__init__(ann_file, multi_class=True, num_classes=len(self.class_ids),
                         metainfo=dict(classes=tuple(self.class_ids)), **kwargs)

    def load_data_list(self):
        """One dict per csv row: ``filename``, ``video_id``, ``label`` (list), ``actions``,
        and for frames ``frame_dir``, ``total_frames``, ``filename_tmpl``."""
        if not exists(self.ann_file):
            raise FileNotFoundError(f'ann_file {self.ann_file!r} does not exist')
        class_index = {name: label for label, name in enumerate(self.class_ids)}
        return [dict(self._location(video_id), video_id=video_id,
                     label=sorted({span.label for span in spans}), actions=spans)
                for video_id, spans in read_charades_csv(self.ann_file, class_index)]

    def filter_data(self):
        data_list = super().filter_data()
        # CharadesMAP reads it from dataset_meta: the videos it never sees are still counted.
        self._metainfo['num_skipped'] = len(self.skipped)
        return data_list

    def _location(self, video_id):
        """Where the video's pixels are: its file, or its frame folder and first frame."""
        frame_root = self.data_prefix.get('img')
        if frame_root is None:
            return dict(filename=osp.join(self.data_prefix.get('video') or '',
                                          video_id + self.video_ext))
        frame_dir = osp.join(frame_root, video_id)
        template = f'{video_id}-{{:06d}}.jpg'
        frames = os.listdir(frame_dir) if osp.isdir(frame_dir) else []
        return dict(filename=osp.join(frame_dir, template.format(1)), frame_dir=frame_dir,
                    filename_tmpl=template,
                    total_frames=sum(name.startswith(f'{video_id}-') and name.endswith('.jpg')
                                     for name in frames))

    def _reading_stage(self):
        reading, rest = super()._reading_stage()
        if self.clip_labels == 'span':
            if not any(type(t).__name__ == 'SampleFrames' for t in reading):
                raise ValueError("clip_labels='span' needs SampleFrames in the pipeline before "
                                 'the last *Decode transform')
            rest = [self._label_clip] + list(rest)
        return reading, rest

    def _label_clip(self, results):
        """Replace the video's labels by those active between the first and last sampled frame."""
        frames = results['frame_inds'] - results['start_index']
        fps = results.get('avg_fps') or self.frame_fps
        label = torch.zeros(self.num_classes)
        label[active_classes(results['actions'], int(frames.min()), int(frames.max()), fps)] = 1.
        results['label'] = label
        return results
