"""One CSV row per video of a ``tools/test.py --dump`` file (``tools/analysis/dump_to_csv.py``).

Columns: ``index`` (position among the scored samples), ``filename``,
``label`` (the ground truth; labels of a multi-label video separated by
spaces), ``status`` (``scored``; ``broken`` or ``skipped`` for videos left
out, which have no prediction), ``num_views`` (clips x crops averaged), then
``top1_class``, ``top1_score`` ... ``top<k>_class``, ``top<k>_score``.
"""
import csv
import pickle

import numpy as np

from .plain_dump import DUMP_FORMAT

__all__ = ['read_dump', 'dump_rows', 'write_dump_csv']


def read_dump(path):
    """The dump at ``path``; a ValueError names the file when it is not an ``nlnet-dump/1``."""
    try:
        with open(path, 'rb') as handle:
            dump = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError) as error:
        raise ValueError(f'{path}: cannot read the dump ({type(error).__name__}: {error})')
    found = dump.get('format') if isinstance(dump, dict) else None
    if found != DUMP_FORMAT:
        raise ValueError(f'{path}: not a {DUMP_FORMAT!r} dump of tools/test.py --dump '
                         f'(format: {found!r}); dumps written before the format key was added '
                         'must be written again')
    return dump


def _label(value):
    if isinstance(value, np.ndarray):
        return ' '.join(str(int(v)) for v in value.reshape(-1))
    return '' if value is None else str(value)


def dump_rows(dump, top_k=5):
    """The CSV rows (dicts) of ``dump``: its scored samples, then its broken and skipped videos.

    Args:
        dump (dict): a loaded ``nlnet-dump/1``.
        top_k (int): predicted classes per row, >= 1 (fewer if there are fewer classes).
    """
    if not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f'top_k must be an int >= 1, got {top_k!r}')
    rows = []
    for sample in dump['samples']:
        scores = np.asarray(sample['pred_score'], dtype=np.float64).reshape(-1)
        row = dict(index=sample['index'], filename=sample.get('filename', ''),
                   label=_label(sample.get('gt_label')), status='scored',
                   num_views=sample.get('num_views', ''))
        for rank, cls in enumerate(np.argsort(-scores, kind='stable')[:top_k], start=1):
            row[f'top{rank}_class'] = int(cls)
            row[f'top{rank}_score'] = f'{scores[cls]:.6g}'
        rows.append(row)
    for status in ('broken', 'skipped'):
        for video in dump.get(status, []):
            rows.append(dict(index='', filename=video.get('filename', ''),
                             label=_label(video.get('label')), status=status, num_views=''))
    return rows


def write_dump_csv(dump, path, top_k=5):
    """Write :func:`dump_rows` of ``dump`` to the CSV file ``path``; returns the row count."""
    rows = dump_rows(dump, top_k)
    ranks = max((int(key[3:].split('_')[0]) for row in rows for key in row
                 if key.startswith('top')), default=0)
    columns = ['index', 'filename', 'label', 'status', 'num_views'] + [
        f'top{rank}_{part}' for rank in range(1, ranks + 1) for part in ('class', 'score')]
    with open(path, 'w', newline='') as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval='')
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
