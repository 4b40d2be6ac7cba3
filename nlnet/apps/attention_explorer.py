"""The attention explorer's web page (Gradio): upload a video, read the predicted labels,
click a point on a frame and see where a non-local block attends across all frames.

An upload runs the model once (:meth:`AttentionExplorer.analyse`); the page then
shows the strongest position of the chosen block as its first query. A click on
the frame image (or a change of block) computes that one query's attention from
the cached block input (:meth:`AttentionExplorer.attend`) and redraws the sheet
of heat maps. What the sheet shows is also written, as JSON, into the hidden
text box ``#attention-data`` (query, block, all M key weights, top keys, the
server's time for the click), for scripts and the browser test to read back.
"""
import collections
import itertools
import json
import os
import os.path as osp
import tempfile
import time

import cv2
import gradio as gr

from .attention_sheet import (draw_attention_sheet, draw_query_frame, enlargement,
                              sheet_layout)

# The clickable frame: a small frame is enlarged by a whole factor to about this width.
CLICK_FRAME_PIXELS = 320
DATA_ELEMENT = 'attention-data'
# Pictures handed to Gradio stay on disk for this many later pictures (Gradio copies each
# into its cache when the handler returns).
KEPT_PICTURES = 64
# Fonts the machine has: the default theme would fetch its fonts from the internet.
LOCAL_FONTS = ['ui-sans-serif', 'system-ui', 'sans-serif']
LOCAL_MONO_FONTS = ['ui-monospace', 'monospace']
INTRO = """# Non-local attention explorer
Upload a video (or pick an example). The model predicts its labels and keeps each
non-local block's input. **Click a point on the frame** to see where the block attends from
there across all frames: the heat map of the point's weights f(x_i, x_j)/C(x) over the
block's keys (one colour scale for all frames), the top keys boxed and numbered (1: heaviest),
the clicked point ringed (its frame's title in orange), each frame's share of the attention in
its title."""


def _label_scores(features):
    return {label.name: label.score for label in features.labels}


def _status(record, handler_seconds):
    t, y, x = (int(v) for v in record['query'])
    top = record['top_keys'][0]
    (t0, t1), (y0, y1), (x0, x1) = top['box']
    return (f"Query t={t}, y={y}, x={x} in `{record['block']}` ({record['mode']}, "
            f"{record['scope']}; key grid {'x'.join(map(str, record['key_grid']))}). "
            f"Heaviest key: frames [{t0:g}, {t1:g}), rows [{y0:g}, {y1:g}), columns "
            f"[{x0:g}, {x1:g}) with weight {top['weight']:.3f}. "
            f'Answered in {1000 * handler_seconds:.1f} ms on the server.')


class ExplorerPage:
    """The Gradio page around an :class:`~nlnet.apps.attention_session.AttentionExplorer`.

    Args:
        explorer (AttentionExplorer): the model.
        examples (list[str]): videos offered as examples.
    """

    def __init__(self, explorer, examples=()):
        self.explorer = explorer
        self.examples = [osp.abspath(path) for path in examples]
        for path in self.examples:
            if not osp.isfile(path):
                raise ValueError(f'example video {path!r} does not exist')
        self._pictures = tempfile.TemporaryDirectory(prefix='nlnet_explorer_')
        self._numbers = itertools.count()
        self._written = collections.deque()

    def _picture(self, image):
        """``image`` (RGB) as a PNG file of its own, for Gradio to serve.

        Not a numpy output: Gradio writes those into its cache under their content's hash,
        rewriting the file in place when the same picture comes again (the demo's cue
        frames are alike), and a browser fetching it meanwhile gets a truncated image
        that never loads. A file is copied into the cache only when absent, atomically.
        """
        path = osp.join(self._pictures.name, f'{next(self._numbers)}.png')
        if not cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise RuntimeError(f'could not write {path}')
        self._written.append(path)
        while len(self._written) > KEPT_PICTURES:
            os.remove(self._written.popleft())
        return path

    def _show(self, features, block_name, query):
        """Outputs after choosing ``query`` (t, y, x): the clickable frame, the sheet, the JSON,
        the query state and the status line."""
        start = time.perf_counter()
        try:
            record, heat = self.explorer.attend(features, block_name, query)
        except ValueError as error:
            raise gr.Error(str(error)) from error
        frames = features.frames
        sheet = draw_attention_sheet(frames, heat, query, record['top_keys'],
                                     record['frame_shares'],
                                     *sheet_layout(frames.shape[1:3], len(frames)))
        frame = draw_query_frame(frames[int(query[0])],
                                 enlargement(frames.shape[1:3], CLICK_FRAME_PIXELS), query[1:])
        frame, sheet = self._picture(frame), self._picture(sheet)
        handler_seconds = time.perf_counter() - start
        record = dict(record, handler_seconds=handler_seconds)
        return frame, sheet, json.dumps(record), list(query), _status(record, handler_seconds)

    def on_video(self, video, block_name):
        """A new upload: run the model, list the labels, show the strongest query."""
        if video is None:
            return (None, None, gr.update(value=0, maximum=1), None, None, '', None,
                    'Upload a video or pick an example.')
        try:
            features = self.explorer.analyse(video)
        except ValueError as error:
            raise gr.Error(str(error)) from error
        query = self.explorer.strongest_query(features, block_name)
        frame, sheet, data, query, status = self._show(features, block_name, query)
        slider = gr.update(value=query[0], maximum=len(features.frames) - 1)
        if features.note:  # a video shorter than a clip: its frames are looped
            status = f'{features.note}.\n\n{status}'
        return features, _label_scores(features), slider, frame, sheet, data, query, status

    def on_click(self, features, block_name, frame_index, event: gr.SelectData):
        """A click at ``event.index`` = [x, y] pixels of the enlarged frame ``frame_index``."""
        if features is None:
            raise gr.Error('Upload a video first.')
        scale = enlargement(features.frames.shape[1:3], CLICK_FRAME_PIXELS)
        column, row = event.index
        query = [int(frame_index), int(row) // scale, int(column) // scale]
        return self._show(features, block_name, query)

    def on_block(self, features, block_name, query):
        """Another block: the same query's attention there."""
        if features is None or query is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return self._show(features, block_name, query)

    def on_frame(self, features, frame_index, query):
        """Another frame to click on (the query ring shows only on the query's own frame)."""
        if features is None:
            return None
        frame_index = int(frame_index)
        on_frame = query is not None and int(query[0]) == frame_index
        return self._picture(draw_query_frame(
            features.frames[frame_index],
            enlargement(features.frames.shape[1:3], CLICK_FRAME_PIXELS),
            query[1:] if on_frame else None))

    def build(self):
        """The :class:`gradio.Blocks` page."""
        names = self.explorer.block_names
        with gr.Blocks(title='nlnet attention explorer', analytics_enabled=False,
                       fill_width=True) as page:
            features = gr.State(None)
            query = gr.State(None)
            gr.Markdown(INTRO)
            with gr.Row():
                with gr.Column(scale=1, min_width=300):
                    video = gr.Video(label='Video', sources=['upload'], elem_id='video-input',
                                     height=200)
                    if self.examples:
                        gr.Examples(examples=[[path] for path in self.examples], inputs=[video],
                                    label='Examples')
                    labels = gr.Label(label='Predicted labels', elem_id='labels',
                                      num_top_classes=self.explorer.num_labels)
                with gr.Column(scale=1, min_width=340):
                    block = gr.Dropdown(choices=names, value=names[0], label='Non-local block',
                                        elem_id='block')
                    frame_index = gr.Slider(0, 1, value=0, step=1, label='Frame to click on',
                                            elem_id='frame')
                    gr.Markdown('**Click a point** on this frame:')
                    frame = gr.Image(show_label=False, interactive=False, type='filepath',
                                     elem_id='query-frame', buttons=[])
                with gr.Column(scale=2, min_width=680):
                    gr.Markdown('**Where the clicked point attends**: each frame above its '
                                'heat map')
                    sheet = gr.Image(show_label=False, interactive=False, type='filepath',
                                     elem_id='attention-maps',
                                     buttons=['download', 'fullscreen'])
                    status = gr.Markdown(elem_id='attention-status')
            data = gr.Textbox(visible='hidden', elem_id=DATA_ELEMENT)

            shown = [frame, sheet, data, query, status]
            video.change(self.on_video, [video, block],
                         [features, labels, frame_index, frame, sheet, data, query, status],
                         api_name='analyse')
            frame.select(self.on_click, [features, block, frame_index], shown,
                         api_name='click', trigger_mode='always_last')
            block.change(self.on_block, [features, block, query], shown, api_name='block')
            frame_index.change(self.on_frame, [features, frame_index, query], [frame],
                               api_name='frame', show_progress='hidden')
        return page

    def launch(self, host='127.0.0.1', port=7860, block=True):
        """Serve the page; with ``block=False`` return at once (the server runs in a thread).

        Returns:
            gradio.Blocks: the running page (``.close()`` stops it).
        """
        page = self.build()
        page.launch(server_name=host, server_port=port, prevent_thread_lock=not block,
                    allowed_paths=sorted({osp.dirname(path) for path in self.examples}),
                    theme=gr.themes.Default(font=LOCAL_FONTS, font_mono=LOCAL_MONO_FONTS),
                    quiet=not block, show_error=True)
        return page
