"""Inference on a user's own video or image: load a model from a config and a
checkpoint, read the input through the config's test pipeline, predict labels
or a mask, and compute where the non-local blocks attend from chosen queries.

``demo/video_demo.py``, ``demo/image_demo.py`` and ``demo/attention_app.py`` are
thin shells over these functions. Importing it registers nlnet into the OpenMMLab
registries (:mod:`nlnet.openmmlab`), which building a model from a config needs.
"""
from .. import openmmlab  # noqa: F401,I001  (first: registers nlnet, applies the stack fixes)
from .attention_maps import (QueryAttentionMap, capture_block_inputs, default_queries,
                             query_attention_map, test_step_with_block_inputs)
from .labels import (CHARADES_LABEL_MAP, KINETICS400_LABEL_MAP, Label, default_label_map,
                     label_names, load_label_map, predict_labels, scores_are_independent,
                     top_labels, video_scores)
from .model_loading import check_device, load_model
from .segmentation import ImageSegmentation, read_image, segment_image
from .video_input import VideoInput, read_video, test_pipeline

__all__ = [
    'QueryAttentionMap', 'capture_block_inputs', 'default_queries', 'query_attention_map',
    'test_step_with_block_inputs', 'CHARADES_LABEL_MAP', 'KINETICS400_LABEL_MAP', 'Label',
    'default_label_map', 'label_names', 'load_label_map', 'predict_labels',
    'scores_are_independent', 'top_labels', 'video_scores', 'check_device', 'load_model',
    'ImageSegmentation', 'read_image', 'segment_image', 'VideoInput', 'read_video',
    'test_pipeline'
]
