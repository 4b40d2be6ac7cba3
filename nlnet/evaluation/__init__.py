"""Metrics registered into mmengine's METRICS registry on import."""
from .plain_dump import PlainDumpResults, to_plain, write_dump

__all__ = ['PlainDumpResults', 'to_plain', 'write_dump']
