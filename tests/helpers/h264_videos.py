"""Real H.264 clips, and copies damaged inside their stream, for the video checker's tests.

Kinetics' videos are H.264 in MP4; OpenCV's writer here has no H.264 encoder, so the
clips are encoded with libx264 through PyAV (one thread: the same bytes every run).
A damaged copy keeps the container (header and index) intact and flips bytes or zeroes
a range in the middle of the coded frames, where a first / middle / last frame check
does not necessarily decode.
"""
import av
import numpy as np

DAMAGE_KINDS = ('flipped_bytes', 'zeroed_range')


def write_h264_clip(path, num_frames=96, width=160, height=120, fps=24):
    """A moving gradient scene with a keyframe every 48 frames; returns ``path``."""
    ys, xs = np.mgrid[0:height, 0:width]
    with av.open(str(path), 'w') as container:
        stream = container.add_stream('libx264', rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
        stream.options = {'preset': 'veryfast', 'threads': '1', 'g': '48'}
        for t in range(num_frames):
            frame = np.stack([(xs + 3 * t) % 256, (ys + 2 * t) % 256, (xs + ys + t) % 256],
                             axis=-1).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
        container.mux(stream.encode())
    return str(path)


def stream_span(data):
    """``(first, end)`` byte offsets of the coded frames (the payload of the ``mdat`` box)."""
    at = data.find(b'mdat')
    if at < 4:
        raise ValueError('no mdat box: not an MP4 file')
    size = int.from_bytes(data[at - 4:at], 'big')
    return at + 4, at - 4 + size


def damaged_copy(data, kind, rng):
    """``data`` with its coded frames damaged in the middle 80 % of the stream.

    ``flipped_bytes``: 1-16 bytes XORed with a random non-zero value;
    ``zeroed_range``: 16-1024 consecutive bytes set to zero.
    """
    first, end = stream_span(data)
    low, high = first + (end - first) // 10, end - (end - first) // 10
    damaged = bytearray(data)
    if kind == 'flipped_bytes':
        for position in rng.integers(low, high, size=int(rng.integers(1, 17))):
            damaged[position] ^= int(rng.integers(1, 256))
    elif kind == 'zeroed_range':
        length = int(rng.integers(16, 1025))
        start = int(rng.integers(low, high - length))
        damaged[start:start + length] = bytes(length)
    else:
        raise ValueError(f'kind must be one of {DAMAGE_KINDS}, got {kind!r}')
    return bytes(damaged)
