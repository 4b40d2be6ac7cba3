"""Video transforms nlnet adds to MMAction2's."""
import cv2
import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

__all__ = ['ClipHueRotation']


@TRANSFORMS.register_module()
class ClipHueRotation(BaseTransform):
    """Rotate the hue of every frame of a clip by one random angle per clip.

    Colours that are equal stay equal and colours that differ stay different,
    so labels defined by colour relations survive. (MMAction2 1.2.0's
    ``ColorJitter`` overflows on negative hue shifts with numpy 2.)

    Required keys: ``imgs`` (list of (H, W, 3) uint8 RGB frames, ``num_clips *
    clip_len`` of them). Modified keys: ``imgs``.

    Args:
        max_degrees (float): the angle is uniform in [-max_degrees, max_degrees],
            0 < max_degrees <= 180.
    """

    def __init__(self, max_degrees=180.0):
        if not 0 < max_degrees <= 180:
            raise ValueError(f'max_degrees must be in (0, 180], got {max_degrees!r}')
        self.max_degrees = max_degrees

    def transform(self, results):
        imgs = results['imgs']
        num_clips = results.get('num_clips', 1)
        clip_len = len(imgs) // num_clips
        rotated = []
        for start in range(0, len(imgs), clip_len):
            # OpenCV's uint8 hue is in [0, 180): one unit is two degrees.
            shift = int(round(np.random.uniform(-self.max_degrees, self.max_degrees) / 2))
            for img in imgs[start:start + clip_len]:
                hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
                hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 180).astype(np.uint8)
                rotated.append(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB))
        results['imgs'] = rotated
        return results

    def __repr__(self):
        return f'{type(self).__name__}(max_degrees={self.max_degrees})'
