"""Metrics registered into mmengine's METRICS registry on import, and the test dump."""
from .. import compat  # noqa: F401,I001  (first: the stack fixes before any mm import)
from .charades_map import CharadesMAP, mean_average_precision
from .dump_csv import dump_rows, write_dump_csv
from .plain_dump import DUMP_FORMAT, PlainDumpResults, to_plain, write_dump
from .readable_acc_metric import ReadableAccMetric, ReadableVideosOnly

__all__ = [
    'CharadesMAP', 'mean_average_precision', 'dump_rows', 'write_dump_csv', 'DUMP_FORMAT',
    'PlainDumpResults', 'to_plain', 'write_dump', 'ReadableAccMetric', 'ReadableVideosOnly'
]
