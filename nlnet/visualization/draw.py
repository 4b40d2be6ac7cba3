"""Figure 3 of the paper for one query: frames side by side, the query marked, arrows to
its top-k keys (width and colour by weight), optionally the weights as a heatmap.

Headless: matplotlib's Agg canvas, no display needed.
"""
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import ConnectionPatch, Rectangle  # noqa: E402

ARROW_COLOURS = 'autumn_r'
HEATMAP_COLOURS = 'jet'


def shown_frames(num_frames, num_shown, query_frame):
    """Clip frames to draw: ``num_shown`` at a stride (as Figure 3: 4 frames), the
    query's frame among them (it replaces the nearest one if the stride misses it)."""
    stride = max(1, num_frames // max(1, num_shown))
    frames = list(range(0, num_frames, stride))[:num_shown]
    if query_frame not in frames:
        nearest = min(range(len(frames)), key=lambda i: abs(frames[i] - query_frame))
        frames[nearest] = query_frame
    return sorted(frames)


def _frame_of(box, shown):
    """The first shown frame inside a key's time range [start, stop), or None."""
    start, stop = box
    return next((f for f in shown if start <= f < stop), None)


def draw_query_attention(frames, geometry, query, keys, out_file, weights=None,
                         num_shown=4, title=''):
    """Write one Figure-3-style PNG.

    Args:
        frames (np.ndarray): (T, H, W, 3) uint8 RGB, the model's input (T = 1 for images).
        geometry (BlockGeometry): the block's grids over the input.
        query (list[float]): the query's input coordinates, (t, y, x) or (y, x).
        keys (list[dict]): top-k keys from :func:`~.attention.top_keys`, heaviest first.
        out_file (str): PNG path.
        weights (Tensor | None): (M,) the query's weights; given, they are overlaid
            on each frame as a heatmap.
        num_shown (int): frames drawn side by side (video).
        title (str): figure title.

    Returns:
        list[int]: the clip frames drawn.
    """
    video = len(geometry.axes) == 3
    query_frame = int(query[0]) if video else 0
    shown = shown_frames(frames.shape[0], num_shown, query_frame) if video else [0]
    figure, axes = plt.subplots(1, len(shown), figsize=(3 * len(shown), 3.3), squeeze=False)
    axes = axes[0]
    panel = {frame: ax for frame, ax in zip(shown, axes)}
    key_map = geometry.key_index_map() if weights is not None else None
    for frame, ax in panel.items():
        ax.imshow(frames[frame], interpolation='nearest')
        if weights is not None:
            index = key_map[frame] if video else key_map
            heat = weights[index.clamp(min=0)].masked_fill(index < 0, 0).cpu().numpy()
            top = max(float(weights.max()), 1e-12)
            # Keys under 2 % of the heaviest stay transparent, so the frame shows through.
            ax.imshow(np.ma.masked_less(heat, 0.02 * top), cmap=HEATMAP_COLOURS, alpha=0.5,
                      vmin=0, vmax=top, interpolation='nearest')
        ax.set_title(f't={frame}' if video else 'image', fontsize=9)
        ax.set_axis_off()

    top = max(key['weight'] for key in keys) if keys else 1.0
    colours = plt.get_cmap(ARROW_COLOURS)
    query_yx = (query[-1], query[-2])
    for key in reversed(keys):  # heaviest drawn last, on top
        frame = _frame_of(key['box'][0], shown) if video else 0
        if frame is None:
            continue
        strength = key['weight'] / top if top > 0 else 0.0
        (y0, y1), (x0, x1) = key['box'][-2:]
        panel[frame].add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                         lw=0.8, edgecolor=colours(strength)))
        figure.add_artist(ConnectionPatch(
            xyA=query_yx, coordsA=panel[query_frame].transData,
            xyB=(key['centre'][-1], key['centre'][-2]), coordsB=panel[frame].transData,
            arrowstyle='->', color=colours(strength), lw=0.4 + 2.6 * strength, alpha=0.9))
    panel[query_frame].plot(*query_yx, marker='*', markersize=14, color='white',
                            markeredgecolor='black')
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(out_file, dpi=100)
    plt.close(figure)
    return shown
