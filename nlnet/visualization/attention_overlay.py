"""The paper's Figure 1 on any clip or image: each query's attention over all frames,
drawn with OpenCV (fast enough for every frame of a video, no display needed).

A panel is one clip frame, enlarged by an integer factor, with one query's weights
as a heat map (keys under 2 % of the heaviest stay transparent), its top keys as
boxes, and arrows from the query to them; arrow width and colour grow with the
weight (yellow to red). The query is a filled circle on its own frame and a ring
at the same place on the others. Above the panels, the predicted labels.

- :func:`overlay_frames`: one image per clip frame, a panel per query side by side
  (for an MP4 or a GIF, :func:`write_animation`);
- :func:`figure_sheet`: one image, a row per query and a column per frame, the
  arrows crossing frames from the query to its keys as in Figure 1 (for a PNG);
- :func:`segmentation_figure`: an image with its mask in the class palette, then a
  panel per query of a 2-D block (NonLocalNet).
"""
import math
import os.path as osp

import cv2
import numpy as np

# Frames are enlarged by an integer factor until their short side reaches this (a frame
# per image), or the smaller side on a sheet of all frames.
MIN_PANEL_SIDE = 256
MIN_SHEET_SIDE = 128
# Keys lighter than this share of the heaviest stay transparent.
HEAT_FLOOR = 0.02
HEAT_ALPHA = 0.5
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.45
LINE_HEIGHT = 18
GAP = 4
ARROW_HEAD = 8
ANIMATION_SUFFIXES = ('.mp4', '.gif')
SHEET_SUFFIXES = ('.png', '.jpg')
BACKGROUND = (255, 255, 255)
TEXT = (0, 0, 0)


def panel_scale(frame_shape, min_side=MIN_PANEL_SIDE):
    """The integer factor frames of ``(H, W)`` are enlarged by."""
    return max(1, math.ceil(min_side / max(1, min(frame_shape[:2]))))


def _arrow_colour(strength):
    """Yellow (weak) to red (strongest), RGB, as ``draw.py``'s ``autumn_r``."""
    return (255, int(round(255 * (1 - strength))), 0)


def _enlarge(frame, scale):
    """Each pixel as a ``scale`` x ``scale`` block (any dtype: frames and class masks)."""
    return np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)


def heat_on_frame(frame, heat, top):
    """``frame`` (H, W, 3) RGB with ``heat`` (H, W) blended as a jet colour map scaled to
    ``top`` (the heaviest weight of the query); light keys stay transparent."""
    level = np.clip(heat / max(top, 1e-12), 0, 1)
    colours = cv2.cvtColor(cv2.applyColorMap((level * 255).astype(np.uint8), cv2.COLORMAP_JET),
                           cv2.COLOR_BGR2RGB)
    shown = (level >= HEAT_FLOOR)[..., None]
    blended = (1 - HEAT_ALPHA) * frame + HEAT_ALPHA * colours
    return np.where(shown, blended, frame).round().astype(np.uint8)


def _scales(scale):
    return (scale, scale) if np.isscalar(scale) else tuple(scale)


def _point(yx, scale):
    """Input position (y, x), pixel centres at integers, -> drawn pixel (x, y); ``scale``:
    one factor or (sy, sx)."""
    sy, sx = _scales(scale)
    return (int(round((yx[1] + 0.5) * sx - 0.5)), int(round((yx[0] + 0.5) * sy - 0.5)))


def _key_frames(key):
    start, stop = key['box'][0]
    return range(int(math.floor(start)), int(math.ceil(stop)))


def _draw_key_box(image, key, scale, colour, origin=(0, 0)):
    sy, sx = _scales(scale)
    (y0, y1), (x0, x1) = key['box'][-2:]
    top_left = (origin[0] + int(round(x0 * sx)), origin[1] + int(round(y0 * sy)))
    bottom_right = (origin[0] + int(round(x1 * sx)) - 1, origin[1] + int(round(y1 * sy)) - 1)
    cv2.rectangle(image, top_left, bottom_right, colour, max(1, int(min(sy, sx)) // 8))


def _marker_radius(scale):
    return max(4, int(round(min(_scales(scale)))))


def _draw_query(image, centre, scale, own_frame):
    radius = _marker_radius(scale)
    if own_frame:
        cv2.circle(image, centre, radius, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(image, centre, radius, (0, 0, 0), 1, cv2.LINE_AA)
    else:
        cv2.circle(image, centre, radius, (255, 255, 255), 2, cv2.LINE_AA)


def _arrow(image, start, end, strength, scale):
    thickness = max(1, int(round((0.5 + 2.5 * strength) * min(_scales(scale)) / 4)))
    length = max(1.0, math.hypot(end[0] - start[0], end[1] - start[1]))
    # The head keeps about the same size on a short arrow and on one across frames.
    tip = min(0.3, (ARROW_HEAD + 2 * thickness) / length)
    cv2.arrowedLine(image, start, end, _arrow_colour(strength), thickness, cv2.LINE_AA,
                    tipLength=tip)


def attention_panel(frame, frame_index, attention, scale):
    """One clip frame with one query's attention: heat map, top keys of this frame boxed,
    arrows from the query's place to them, the query marked.

    Args:
        frame (np.ndarray): (H, W, 3) uint8 RGB, clip frame ``frame_index``.
        frame_index (int): its index t in the clip.
        attention (QueryAttentionMap | None): the query's map (3-D); None draws the
            frame alone.
        scale (int): enlargement factor.

    Returns:
        np.ndarray: (H * scale, W * scale, 3) uint8 RGB.
    """
    if attention is None:
        return _enlarge(frame, scale)
    top = float(attention.weights.max())
    image = _enlarge(heat_on_frame(frame, attention.heat[frame_index], top), scale)
    query = _point(attention.query[-2:], scale)
    for key in reversed(attention.keys):  # heaviest drawn last, on top
        if frame_index not in _key_frames(key):
            continue
        strength = key['weight'] / top if top > 0 else 0.0
        _draw_key_box(image, key, scale, _arrow_colour(strength))
        _arrow(image, query, _point(key['centre'][-2:], scale), strength, scale)
    _draw_query(image, query, scale, int(attention.query[0]) == frame_index)
    return image


def _text_block(lines, width):
    block = np.full((LINE_HEIGHT * len(lines) + GAP, width, 3), BACKGROUND, np.uint8)
    for number, line in enumerate(lines):
        cv2.putText(block, line, (GAP, LINE_HEIGHT * (number + 1) - 5), FONT, FONT_SCALE,
                    TEXT, 1, cv2.LINE_AA)
    return block


def label_lines(labels, independent=False):
    """Header lines for the labels: ``1. name  0.873`` each, after a line saying what the
    scores are."""
    kind = 'per-class probabilities (sigmoid)' if independent else 'class probabilities'
    return [f'top {len(labels)} labels, {kind}:'] + [
        f'{rank}. {label.name}  {label.score:.3f}' for rank, label in enumerate(labels, 1)]


def _query_title(number, attention):
    coords = ','.join(f'{value:g}' for value in attention.query)
    return f'query {number}: t,y,x = {coords}'


def _block_line(attentions):
    names = list(dict.fromkeys(name for name, _ in attentions))
    return [f'attention of {", ".join(names)}'] if names else []


def overlay_frames(frames, attentions, header_lines, frame_inds=None):
    """One image per clip frame: the header, then a panel per query side by side.

    Args:
        frames (np.ndarray): (T, H, W, 3) uint8 RGB, the clip as the model saw it.
        attentions (list[tuple[str, QueryAttentionMap]]): (block name, map) per query;
            empty: the frames with the header only.
        header_lines (list[str]): text above the panels (the labels).
        frame_inds (list[int] | None): the video frame of each clip frame, for the
            caption.

    Returns:
        list[np.ndarray]: T images of one size, uint8 RGB.
    """
    scale = panel_scale(frames.shape[1:3])
    columns = attentions or [(None, None)]
    panel_width = frames.shape[2] * scale
    width = len(columns) * panel_width + (len(columns) - 1) * GAP
    header = _text_block(header_lines + _block_line(attentions), width)
    titles = _text_block([''], width)
    for number, (_, attention) in enumerate(columns):
        if attention is not None:
            cv2.putText(titles, _query_title(number, attention),
                        (number * (panel_width + GAP) + GAP, LINE_HEIGHT - 5), FONT,
                        FONT_SCALE * 0.85, TEXT, 1, cv2.LINE_AA)
    images = []
    for index, frame in enumerate(frames):
        panels = []
        for number, (_, attention) in enumerate(columns):
            if number:
                panels.append(np.full((frame.shape[0] * scale, GAP, 3), BACKGROUND, np.uint8))
            panels.append(attention_panel(frame, index, attention, scale))
        row = np.concatenate(panels, axis=1)
        caption = f'clip frame t={index} of {len(frames)}'
        if frame_inds is not None:
            caption += f' (video frame {frame_inds[index]})'
        footer = _text_block([caption], width)
        images.append(np.concatenate([header, titles, row, footer], axis=0))
    return images


def figure_sheet(frames, attentions, header_lines):
    """Figure 1 as one image: a row per query, every clip frame side by side, arrows from
    the query (on its frame) to its top keys across the frames.

    Args: as :func:`overlay_frames`.

    Returns:
        np.ndarray: uint8 RGB.
    """
    scale = panel_scale(frames.shape[1:3], MIN_SHEET_SIDE)
    height, width = frames.shape[1] * scale, frames.shape[2] * scale
    num_frames = len(frames)
    sheet_width = num_frames * width + (num_frames - 1) * GAP
    parts = [_text_block(header_lines + _block_line(attentions), sheet_width)]
    for number, (_, attention) in enumerate(attentions or [(None, None)]):
        row = np.full((height, sheet_width, 3), BACKGROUND, np.uint8)
        top = float(attention.weights.max()) if attention is not None else 0.0
        for index, frame in enumerate(frames):
            image = _enlarge(frame if attention is None else
                             heat_on_frame(frame, attention.heat[index], top), scale)
            row[:, index * (width + GAP):index * (width + GAP) + width] = image
        if attention is not None:
            query_frame = int(attention.query[0])
            query = _point(attention.query[-2:], scale)
            query = (query[0] + query_frame * (width + GAP), query[1])
            for key in reversed(attention.keys):
                strength = key['weight'] / top if top > 0 else 0.0
                for index in _key_frames(key):
                    origin = (index * (width + GAP), 0)
                    _draw_key_box(row, key, scale, _arrow_colour(strength), origin)
                    centre = _point(key['centre'][-2:], scale)
                    _arrow(row, query, (centre[0] + origin[0], centre[1]), strength, scale)
            _draw_query(row, query, scale, own_frame=True)
            parts.append(_text_block([_query_title(number, attention)], sheet_width))
        parts.append(row)
    captions = _text_block([''], sheet_width)
    for index in range(num_frames):
        cv2.putText(captions, f't={index}', (index * (width + GAP) + width // 2 - 12,
                                             LINE_HEIGHT - 5), FONT, FONT_SCALE, TEXT, 1,
                    cv2.LINE_AA)
    parts.append(captions)
    return np.concatenate(parts, axis=0)


def segmentation_figure(image, mask, palette, attentions, header_lines, to_image,
                        opacity=0.5):
    """The image with its mask blended in the class palette, then a panel per query.

    Args:
        image (np.ndarray): (H, W, 3) uint8 RGB.
        mask (np.ndarray): (H, W) class per pixel; classes outside ``palette`` (ignore
            index) stay unpainted.
        palette (list[tuple[int]]): RGB colour of each class.
        attentions (list[tuple[str, QueryAttentionMap]]): (block name, map) per query of
            a 2-D block, in model input coordinates.
        header_lines (list[str]): text above the panels.
        to_image (tuple[float]): (sy, sx), image pixels per model input pixel.
        opacity (float): weight of the palette colour over the image.

    Returns:
        np.ndarray: uint8 RGB, the panels side by side under the header; a small
        image is enlarged by an integer factor (:func:`panel_scale`).
    """
    scale = panel_scale(image.shape[:2])
    image, mask = _enlarge(image, scale), _enlarge(mask, scale)
    to_image = tuple(factor * scale for factor in to_image)
    colours = np.asarray(palette, np.float64)
    painted = (mask >= 0) & (mask < len(colours))
    overlay = image.astype(np.float64)
    overlay[painted] = (1 - opacity) * overlay[painted] + opacity * colours[mask[painted]]
    panels = [overlay.round().astype(np.uint8)]
    titles = ['mask']
    height, width = image.shape[:2]
    for number, (_, attention) in enumerate(attentions):
        heat = cv2.resize(attention.heat, (width, height), interpolation=cv2.INTER_NEAREST)
        top = float(attention.weights.max())
        panel = heat_on_frame(image, heat, top)
        query = _point(attention.query, to_image)
        for key in reversed(attention.keys):
            strength = key['weight'] / top if top > 0 else 0.0
            _draw_key_box(panel, key, to_image, _arrow_colour(strength))
            _arrow(panel, query, _point(key['centre'], to_image), strength, to_image)
        _draw_query(panel, query, to_image, own_frame=True)
        panels.append(panel)
        image_query = [value * factor / scale for value, factor in zip(attention.query, to_image)]
        titles.append(f'query {number}: y,x = ' + ','.join(f'{v:.0f}' for v in image_query))
    gap = np.full((height, GAP, 3), BACKGROUND, np.uint8)
    row = np.concatenate([part for panel in panels for part in (gap, panel)][1:], axis=1)
    title_row = _text_block([''], row.shape[1])
    for number, title in enumerate(titles):
        cv2.putText(title_row, title, (number * (width + GAP) + GAP, LINE_HEIGHT - 5), FONT,
                    FONT_SCALE * 0.85, TEXT, 1, cv2.LINE_AA)
    header = _text_block(header_lines + _block_line(attentions), row.shape[1])
    return np.concatenate([header, title_row, row], axis=0)


def check_out_file(path):
    """Refuse an output file of a kind the demo does not write, naming it.

    Raises:
        ValueError: the suffix is none of .mp4, .gif, .png, .jpg.
    """
    suffix = osp.splitext(str(path))[1].lower()
    if suffix not in ANIMATION_SUFFIXES + SHEET_SUFFIXES:
        raise ValueError(f'--out-file {path!r}: expected a .mp4 or .gif (a frame per clip '
                         'frame) or a .png or .jpg (all frames on one sheet)')
    return suffix


def write_animation(path, images, fps=4):
    """Write ``images`` (RGB, one size) as an MP4 (OpenCV's mp4v) or a looping GIF (Pillow)."""
    if check_out_file(path) == '.gif':
        from PIL import Image
        first, *rest = [Image.fromarray(image) for image in images]
        first.save(path, save_all=True, append_images=rest, duration=int(1000 / fps), loop=0)
        return path
    height, width = images[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
    if not writer.isOpened():
        raise ValueError(f'--out-file {path!r}: OpenCV cannot write an MP4 there')
    try:
        for image in images:
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path


def write_image(path, image):
    """Write one RGB image (PNG or JPEG)."""
    check_out_file(path)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise ValueError(f'--out-file {path!r}: OpenCV cannot write the image there')
    return path
