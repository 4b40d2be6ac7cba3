"""What a trained network does: the paper's Figure 3 (attention of chosen queries of a
non-local block) and Figure 4 (training and validation error curves from mmengine logs)."""
from .. import compat  # noqa: F401,I001  (first: the stack fixes before any mm import)
from .attention import (BlockGeometry, non_local_blocks, query_attention, strongest_queries,
                        top_keys)
from .draw import draw_query_attention
from .model_input import build_model, run_model, single_view_pipeline
from .visualize import block_attention, parse_query, select_blocks, visualize_attention

__all__ = [
    'BlockGeometry', 'non_local_blocks', 'query_attention', 'strongest_queries', 'top_keys',
    'draw_query_attention', 'build_model', 'run_model', 'single_view_pipeline',
    'block_attention', 'parse_query', 'select_blocks', 'visualize_attention'
]
