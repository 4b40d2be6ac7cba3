"""``tools/analysis/visualize_attention.py``: the attention of a trained model's
non-local blocks on one input, one PNG and one JSON per block and query."""
import json
import os
import os.path as osp


from .attention import (BlockGeometry, box_centre, non_local_blocks, query_attention,
                        strongest_queries, top_keys)
from .draw import draw_query_attention
from .model_input import build_model, run_model


def select_blocks(model, names, config_name='config'):
    """{path: block} of the blocks ``names`` (None: all of them), in the model's order.

    Raises:
        ValueError: a name that is no non-local block, listing the model's blocks.
    """
    blocks = non_local_blocks(model)
    if not names:
        return blocks
    unknown = [name for name in names if name not in blocks]
    if unknown:
        raise ValueError(f'--block {", ".join(unknown)}: no such non-local block in the model '
                         f'of {config_name}; its non-local blocks are: {", ".join(blocks)}')
    return {name: block for name, block in blocks.items() if name in names}


def parse_query(text):
    """'t,y,x' or 'y,x' -> list of floats."""
    try:
        return [float(value) for value in text.split(',')]
    except ValueError:
        raise ValueError(f'--queries {text!r}: expected comma-separated numbers such as '
                         '"3,40,52" (t,y,x) for video or "40,52" (y,x) for images') from None


def block_attention(block, x, geometry, queries=None, num_queries=4, topk=20):
    """Records of the block's attention for each query: the query (given in input
    coordinates, else the ``num_queries`` strongest, :func:`strongest_queries`), its
    cell, and the top-k keys; plus the (Q, M) weights for drawing."""
    if queries:
        indices = [geometry.query_index(query) for query in queries]
    else:
        indices = strongest_queries(block, x, num_queries)
    weights = query_attention(block, x, indices)
    records = []
    for number, index in enumerate(indices):
        box = geometry.query_box(index)
        records.append(dict(
            query=list(queries[number]) if queries else box_centre(box),
            query_index=int(index), query_box=box, axes=list(geometry.axes),
            key_grid=list(geometry.key_grid), weight_sum=float(weights[number].sum()),
            topk=top_keys(weights[number], geometry, topk)))
    return records, weights


def visualize_attention(cfg, checkpoint, input_path, out_dir, block_names=None, queries=None,
                        num_queries=4, topk=20, heatmap=False, num_shown=4):
    """Draw the attention of the chosen blocks and queries of ``cfg``'s model on one input.

    Args:
        cfg (Config): a recognition, segmentation or detection config.
        checkpoint (str): weights for its model.
        input_path (str): a video (recognition) or an image.
        out_dir (str): where ``<block>_q<i>.png`` and ``.json`` are written.
        block_names (list[str] | None): module paths; None draws every block.
        queries (list[list[float]] | None): input coordinates, (t, y, x) or (y, x);
            None takes each block's ``num_queries`` strongest positions.
        topk (int): keys drawn per query.
        heatmap (bool): also overlay each query's weights on the frames.
        num_shown (int): video frames drawn side by side.

    Returns:
        list[str]: the PNG files written.
    """
    if topk < 1 or num_queries < 1 or num_shown < 1:
        raise ValueError(f'--topk, --num-queries and --num-frames must be >= 1, got {topk}, '
                         f'{num_queries}, {num_shown}')
    model = build_model(cfg, checkpoint)
    blocks = select_blocks(model, block_names, cfg.filename)
    run = run_model(model, cfg, input_path)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for name, block in blocks.items():
        if name not in run.block_inputs:
            raise ValueError(f'block {name} did not run on {input_path!r}')
        x = run.block_inputs[name]
        geometry = BlockGeometry(block, x.shape[2:], run.input_size)
        records, weights = block_attention(block, x, geometry, queries, num_queries, topk)
        for number, record in enumerate(records):
            stem = osp.join(out_dir, f'{name.replace(".", "_")}_q{number}')
            shown = draw_query_attention(
                run.frames, geometry, record['query'], record['topk'], stem + '.png',
                weights=weights[number] if heatmap else None, num_shown=num_shown,
                title=f'{name} ({block.mode}, {block.scope}): query '
                      f'{",".join(f"{v:g}" for v in record["query"])}, top {len(record["topk"])}')
            record.update(block=name, mode=block.mode, scope=block.scope, input=input_path,
                          input_size=list(run.input_size), frames_drawn=shown,
                          frame_inds=run.frame_inds, prediction=run.prediction)
            with open(stem + '.json', 'w') as handle:
                json.dump(record, handle, indent=1)
            written.append(stem + '.png')
    return written
