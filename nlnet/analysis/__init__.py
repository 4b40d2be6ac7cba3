"""Model analysis: FLOPs and parameters by mmengine's counter, per task convention."""
from .. import compat  # noqa: F401,I001  (first: the stack fixes before any mm import)
from .complexity import TASKS, config_task, model_complexity
from .flops import (FLOP_HANDLES, NL_FLOPS, attention_flops, count_flops, flop_analyzer,
                    format_size, format_table)

__all__ = [
    'TASKS', 'config_task', 'model_complexity', 'FLOP_HANDLES', 'NL_FLOPS', 'attention_flops',
    'count_flops', 'flop_analyzer', 'format_size', 'format_table'
]
