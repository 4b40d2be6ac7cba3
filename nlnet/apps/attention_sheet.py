"""The attention explorer's pictures, drawn with OpenCV so that a click redraws in milliseconds.

Each clip frame is drawn above its heat map: the query's weight of the key cell
each input pixel falls in (:class:`nlnet.apis.QueryAttentionMap`), coloured on one
scale for all frames so that the frames compare. Unlike the command-line demo's
overlay (:mod:`nlnet.visualization.attention_overlay`, heat blended into the
frame), frame and heat map sit apart: on the demo's black frames with coloured
squares a blended heat cell looked like one more coloured square. The top keys
get numbered boxes (1: heaviest) over the input region they stand for, and the
query a white ring on its frame.
"""
import cv2
import numpy as np

HEATMAP_COLOURS = cv2.COLORMAP_INFERNO
KEY_BOX_COLOUR = (255, 255, 255)
QUERY_COLOUR = (255, 255, 255)
OUTLINE_COLOUR = (0, 0, 0)
TITLE_HEIGHT = 18
GAP = 6
BACKGROUND = 255
QUERY_TITLE_BACKGROUND = (255, 214, 140)
# The sheet: frames a row and panel size, for clips of up to 8 frames and for longer ones
# (NL-I3D's 32 frames on 4 rows of 8 rather than 8 rows of 4 large panels).
SHORT_CLIP = 8
SHEET_LAYOUTS = {True: dict(pixels=160, columns=4), False: dict(pixels=112, columns=8)}


def enlargement(size, target):
    """The whole factor (>= 1) that brings the longer side of ``size`` pixels closest to
    ``target``."""
    return max(1, int(round(target / max(size))))


def sheet_layout(size, num_frames):
    """(scale, columns) of the sheet for frames of ``size`` (H, W): small frames enlarged by
    a whole factor, large ones shrunk to the panel size."""
    layout = SHEET_LAYOUTS[num_frames <= SHORT_CLIP]
    if max(size) <= layout['pixels']:
        return enlargement(size, layout['pixels']), layout['columns']
    return layout['pixels'] / max(size), layout['columns']


def resize(frame, scale):
    """``frame`` enlarged by a whole ``scale`` >= 1 (nearest neighbour: a model pixel stays a
    square) or shrunk by a ``scale`` < 1 (area averaging)."""
    height, width = frame.shape[:2]
    if scale >= 1:
        if scale != int(scale):
            raise ValueError(f'an enlarging scale must be a whole number, got {scale}')
        return cv2.resize(frame, (width * int(scale), height * int(scale)),
                          interpolation=cv2.INTER_NEAREST)
    return cv2.resize(frame, (round(width * scale), round(height * scale)),
                      interpolation=cv2.INTER_AREA)


def colour_heat(heat, top):
    """(h, w, 3) uint8 RGB: ``heat`` (h, w) on the scale [0, top], black to pale yellow."""
    level = np.clip(heat / max(top, 1e-12), 0, 1)
    bgr = cv2.applyColorMap((level * 255).round().astype(np.uint8), HEATMAP_COLOURS)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def mark_query(panel, query_yx, scale):
    """A white ring with a black outline centred on input pixel ``query_yx`` of ``panel``."""
    centre = (int((query_yx[1] + 0.5) * scale), int((query_yx[0] + 0.5) * scale))
    radius = max(4, int(scale))
    cv2.circle(panel, centre, radius + 2, OUTLINE_COLOUR, 2, cv2.LINE_AA)
    cv2.circle(panel, centre, radius, QUERY_COLOUR, 2, cv2.LINE_AA)
    cv2.circle(panel, centre, 2, QUERY_COLOUR, -1, cv2.LINE_AA)


def mark_key(panel, box_yx, rank, scale):
    """A numbered box over the input region ``box_yx`` ([y0, y1), [x0, x1)) of a top key."""
    (y0, y1), (x0, x1) = box_yx
    top_left = (int(round(x0 * scale)), int(round(y0 * scale)))
    bottom_right = (int(round(x1 * scale)) - 1, int(round(y1 * scale)) - 1)
    cv2.rectangle(panel, top_left, bottom_right, OUTLINE_COLOUR, 3)
    cv2.rectangle(panel, top_left, bottom_right, KEY_BOX_COLOUR, 1)
    origin = (top_left[0] + 3, top_left[1] + 13)
    cv2.putText(panel, str(rank), origin, cv2.FONT_HERSHEY_SIMPLEX, 0.4, OUTLINE_COLOUR, 3,
                cv2.LINE_AA)
    cv2.putText(panel, str(rank), origin, cv2.FONT_HERSHEY_SIMPLEX, 0.4, KEY_BOX_COLOUR, 1,
                cv2.LINE_AA)


def key_frames(box_t, num_frames):
    """The clip frames a key's time range [start, stop) covers (one frame or several when
    the block's grid is coarser in time than the clip)."""
    start, stop = box_t
    return [t for t in range(num_frames) if start <= t + 0.5 < stop]


def titled(panel, title, background=(BACKGROUND, ) * 3):
    """``panel`` under a strip holding ``title``."""
    strip = np.empty((TITLE_HEIGHT, panel.shape[1], 3), np.uint8)
    strip[:] = background
    cv2.putText(strip, title, (2, TITLE_HEIGHT - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                OUTLINE_COLOUR, 1, cv2.LINE_AA)
    return np.concatenate([strip, panel])


def tile(panels, columns):
    """Panels of one size in rows of ``columns``, ``GAP`` pixels apart, on white."""
    height, width = panels[0].shape[:2]
    rows = -(-len(panels) // columns)
    sheet = np.full((rows * height + (rows - 1) * GAP, columns * width + (columns - 1) * GAP, 3),
                    BACKGROUND, np.uint8)
    for index, panel in enumerate(panels):
        row, column = divmod(index, columns)
        top, left = row * (height + GAP), column * (width + GAP)
        sheet[top:top + height, left:left + width] = panel
    return sheet


def frame_shares(weights, geometry):
    """The query's attention on each clip frame, summing to the weights' total over the
    frames: a key cell's weight is split evenly among the clip frames its time range
    covers (several where the block's grid is coarser in time than the clip); a frame
    that pooling dropped gets 0. A list of T floats; video blocks only."""
    per_slice = weights.detach().float().cpu().reshape(geometry.key_grid).flatten(1).sum(1)
    frames_per_slice = geometry.pool_kernel[0] * geometry.scale[0]
    shares = [0.0] * geometry.input_size[0]
    for key_t, weight in enumerate(per_slice.tolist()):
        covered = key_frames([key_t * frames_per_slice, (key_t + 1) * frames_per_slice],
                             len(shares))
        for t in covered:
            shares[t] += weight / len(covered)
    return shares


def draw_attention_sheet(frames, heat, query, keys, shares, scale, columns=4):
    """Every clip frame above the query's heat map on it, its top keys boxed and numbered
    on both, the query ringed on its frame (whose title is orange), each frame's share of
    the attention in its title.

    Args:
        frames (np.ndarray): (T, H, W, 3) uint8 RGB, the model's input.
        heat (np.ndarray): (T, H, W) the query's weights over the input
            (:class:`nlnet.apis.QueryAttentionMap`).
        query (list[float]): input coordinates (t, y, x).
        keys (list[dict]): top keys, heaviest first, from
            :func:`nlnet.visualization.attention.top_keys` (``box`` per axis t, y, x).
        shares (list[float]): T, each frame's attention from :func:`frame_shares`.
        scale (float): each frame's size on the sheet: a whole enlargement, or < 1.
        columns (int): frames per row.

    Returns:
        np.ndarray: uint8 RGB, ``columns`` frames a row, each a title strip, the frame
        and its heat map.
    """
    top = float(heat.max())
    shown = [resize(frame, scale) for frame in frames]
    maps = [colour_heat(resize(plane, scale), top) for plane in heat]
    for rank, key in enumerate(keys, start=1):
        for t in key_frames(key['box'][0], len(frames)):
            mark_key(shown[t], key['box'][1:], rank, scale)
            mark_key(maps[t], key['box'][1:], rank, scale)
    query_frame = int(query[0])
    mark_query(shown[query_frame], query[1:], scale)
    mark_query(maps[query_frame], query[1:], scale)
    panels = [np.concatenate([frame, np.full((GAP // 2, frame.shape[1], 3), BACKGROUND, np.uint8),
                              heat_map]) for frame, heat_map in zip(shown, maps)]
    titled_panels = [
        titled(panel, f't={t}: {100 * share:.1f} %',
               QUERY_TITLE_BACKGROUND if t == query_frame else (BACKGROUND, ) * 3)
        for t, (panel, share) in enumerate(zip(panels, shares))]
    return tile(titled_panels, min(columns, len(panels)))


def draw_query_frame(frame, scale, query_yx=None):
    """The frame the user clicks on, enlarged, with the current query marked if it lies there."""
    panel = resize(frame, scale)
    if query_yx is not None:
        mark_query(panel, query_yx, scale)
    return panel
