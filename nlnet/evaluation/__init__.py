"""Metrics registered into mmengine's METRICS registry on import."""
from .charades_map import CharadesMAP, mean_average_precision
from .plain_dump import PlainDumpResults, to_plain, write_dump

__all__ = ['CharadesMAP', 'mean_average_precision', 'PlainDumpResults', 'to_plain', 'write_dump']
