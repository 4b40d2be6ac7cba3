"""What the attention explorer computes, without the web page: one video's model run cached
per upload, then one clicked query's attention from that cache.

An upload reads the video through the config's test pipeline
(:func:`nlnet.apis.read_video`; one view by default) and runs the model once,
keeping each non-local block's input x
(:func:`nlnet.apis.test_step_with_block_inputs`). A click at input position
(t, y, x) then forms only that query's row of the block's normalised weights
f(x_i, x_j)/C(x) over its M keys (:func:`nlnet.apis.query_attention_map`, i.e.
``reference_weights`` restricted to one query): no network forward.
"""
import time
from dataclasses import dataclass, field

import numpy as np

from nlnet.analysis.complexity import config_task
from nlnet.apis import (default_queries, query_attention_map, read_video,
                        test_step_with_block_inputs, top_labels)
from nlnet.visualization.attention import non_local_blocks

from .attention_sheet import frame_shares


@dataclass
class VideoFeatures:
    """One uploaded video as the model saw it, with what a click needs.

    Attributes:
        video (str): the file.
        frames (np.ndarray): (T, H, W, 3) uint8 RGB, the model's first view.
        block_inputs (dict[str, Tensor]): block name -> its input x, (V, C, *S).
        labels (list[Label]): the top classes with their scores, best first.
        note (str | None): the reader's note (a video shorter than a clip is looped).
    """
    video: str
    frames: np.ndarray
    block_inputs: dict = field(default_factory=dict)
    labels: list = field(default_factory=list)
    note: str = None

    @property
    def input_size(self):
        """(T, H, W) of the model's input."""
        return tuple(self.frames.shape[:3])


class AttentionExplorer:
    """A loaded recognizer and what the explorer asks of it.

    Args:
        model (nn.Module): a recognizer with non-local blocks, from
            :func:`nlnet.apis.load_model` (``model.cfg`` is its config).
        class_names (list[str]): label i's name, one per class of the head.
        views (int | None): 1 reads the centre clip and crop (a click's heat maps are
            on it); None the config's test views (the labels then combine them and
            the heat maps show the first view).
        num_labels (int): classes listed per video.
        num_keys (int): top keys marked per query.
    """

    def __init__(self, model, class_names, views=1, num_labels=5, num_keys=8):
        if num_labels < 1 or num_keys < 1:
            raise ValueError(f'num_labels and num_keys must be >= 1, got {num_labels}, {num_keys}')
        self.model = model
        self.cfg = model.cfg
        if config_task(self.cfg) != 'recognition':
            raise ValueError(f'{self.cfg.filename}: the explorer takes video recognition configs, '
                             f'this one is for {config_task(self.cfg)}')
        self.blocks = non_local_blocks(model)
        if not self.blocks:
            raise ValueError(f'{self.cfg.filename}: the model has no non-local block '
                             '(NonLocalBlock), so there is no attention to explore')
        self.class_names = list(class_names)
        self.views = views
        self.num_labels = num_labels
        self.num_keys = num_keys

    @property
    def block_names(self):
        return list(self.blocks)

    def analyse(self, video):
        """Run the model once on ``video`` and keep what clicks need (:class:`VideoFeatures`).

        Raises:
            ValueError: the video cannot be read (naming the file).
        """
        clip = read_video(video, self.cfg, self.views)
        samples, block_inputs = test_step_with_block_inputs(self.model, clip.data)
        scores = samples[0].pred_score.detach().cpu().numpy()
        missing = [name for name in self.blocks if name not in block_inputs]
        if missing:
            raise ValueError(f'{video}: the blocks {", ".join(missing)} did not run')
        return VideoFeatures(str(video), clip.frames, block_inputs,
                             top_labels(scores, self.class_names, self.num_labels), clip.note)

    def attend(self, features, block_name, query):
        """The attention of input position ``query`` (t, y, x) in ``block_name``.

        Returns:
            tuple[dict, np.ndarray]: the JSON-ready record the page shows (``input_size``,
            ``block``,
            ``mode``, ``scope``, ``query``, ``query_index`` and ``query_box`` on the
            block's grid, ``grid``, ``key_grid``, all M ``weights`` in the key grid's
            flat order, each frame's share ``frame_shares``, ``top_keys`` and the
            ``seconds`` it took) and the (T, H, W) heat map of the weights.

        Raises:
            ValueError: an unknown block (naming the model's blocks) or a position
                outside the input (naming the coordinate).
        """
        start = time.perf_counter()
        if block_name not in self.blocks:
            raise ValueError(f'block {block_name!r}: no such non-local block; the model has '
                             f'{", ".join(self.blocks)}')
        block = self.blocks[block_name]
        x = features.block_inputs[block_name]
        attention = query_attention_map(block, x, query, features.input_size, self.num_keys)
        geometry = attention.geometry
        record = dict(
            video=features.video, input_size=list(features.input_size), block=block_name,
            mode=block.mode, scope=block.scope, query=attention.query, query_index=attention.query_index,
            query_box=attention.query_box, grid=list(geometry.grid),
            key_grid=list(geometry.key_grid), weights=attention.weights.tolist(),
            frame_shares=frame_shares(attention.weights, geometry), top_keys=attention.keys)
        record['seconds'] = time.perf_counter() - start
        return record, attention.heat

    def strongest_query(self, features, block_name):
        """Input pixel (t, y, x) at the centre of the cell the block changes most: the
        page's first query."""
        centre = default_queries(self.blocks[block_name], features.block_inputs[block_name],
                                 features.input_size, 1)[0]
        return [int(value) for value in centre]
