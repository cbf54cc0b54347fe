"""Drawing boxes for people to look at: a detector's result on its image in one call
(:func:`draw_detections`), ground truth beside predictions (:func:`gt_beside_pred`).

Small images are scaled up before drawing (to at least ``min_size`` pixels on the long side, 640 by
default), so that class names and scores stay readable on a 320-px input; boxes are scaled with them.
"""
import cv2
import numpy as np

_PALETTE = [(56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207),
            (10, 249, 72), (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0),
            (168, 153, 44), (255, 194, 0), (147, 69, 52), (255, 115, 100), (236, 24, 0)]
DISPLAY_SIZE = 640  # long side, in pixels, below which images are scaled up for drawing


def scale_for_display(img: np.ndarray, min_size: int = DISPLAY_SIZE) -> tuple:
    """``(img, scale)``: BGR ``img`` [H, W, 3] enlarged (bilinear) by ``scale`` so that its long side is at
    least ``min_size``; ``scale`` is 1 (and ``img`` itself returned) when it already is, or
    ``min_size`` is 0."""
    scale = min_size / max(img.shape[:2]) if min_size else 1.0
    if scale <= 1:
        return img, 1.0
    size = (round(img.shape[1] * scale), round(img.shape[0] * scale))
    return cv2.resize(img, size, interpolation=cv2.INTER_LINEAR), scale


def draw_boxes(img: np.ndarray, bboxes, labels, classes, scores=None) -> np.ndarray:
    """A copy of BGR ``img`` [H, W, 3] with xyxy pixel ``bboxes`` [N, 4] and, on a filled tag of the box's
    colour above each, its class name and, if given, score. Line width and text grow with the image."""
    out = img.copy()
    thickness = max(1, round(max(img.shape[:2]) / 400))
    font_scale = 0.3 + 0.15 * thickness
    for i, (box, label) in enumerate(zip(np.asarray(bboxes), np.asarray(labels))):
        color = _PALETTE[int(label) % len(_PALETTE)]
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness)
        text = classes[int(label)] if int(label) < len(classes) else str(int(label))
        if scores is not None:
            text += f' {float(scores[i]):.2f}'
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        top = y1 - th - base - 2 if y1 - th - base - 2 >= 0 else y1  # inside the box at the top edge
        cv2.rectangle(out, (x1, top), (x1 + tw + 2, top + th + base + 2), color, -1)
        ink = (0, 0, 0) if sum(color) > 382 else (255, 255, 255)  # dark text on a light tag
        cv2.putText(out, text, (x1 + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, ink, 1,
                    cv2.LINE_AA)
    return out


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, 'detach') else np.asarray(x)


def draw_detections(image, result, classes=None, score_thr: float = 0.3,
                    min_size: int = DISPLAY_SIZE) -> np.ndarray:
    """The detections of ``result`` scoring at least ``score_thr`` drawn on ``image``, scaled up to
    ``min_size`` on the long side if smaller (:func:`scale_for_display`; 0 keeps the size)::

        sample = inference_detector(model, 'photo.jpg')
        cv2.imwrite('drawn.jpg', draw_detections('photo.jpg', sample))

    Args:
        image: a path or a BGR uint8 array [H, W, 3], the image the result's boxes are in.
        result: a ``DetDataSample`` (``pred_instances`` used) or an ``InstanceData`` with ``bboxes``
            [N, 4] xyxy pixels of ``image``, ``labels`` [N] and ``scores`` [N].
        classes: class names by label; default the sample's ``classes`` metainfo, which
            :func:`det.apis.inference_detector` sets.
    Returns:
        a new BGR uint8 array.
    """
    if isinstance(image, np.ndarray):
        img = image
    else:
        img = cv2.imread(str(image), cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f'cannot read image {image}')
    pred = result.pred_instances if hasattr(result, 'pred_instances') else result
    if classes is None:
        classes = result.metainfo.get('classes', ()) if hasattr(result, 'metainfo') else ()
    scores, bboxes, labels = (_numpy(pred[k]) for k in ('scores', 'bboxes', 'labels'))
    keep = scores >= score_thr
    img, scale = scale_for_display(img, min_size)
    return draw_boxes(img, bboxes[keep] * scale, labels[keep], classes, scores[keep])


def gt_beside_pred(img: np.ndarray, gt, pred, classes, score_thr: float = 0.3,
                   min_size: int = DISPLAY_SIZE) -> np.ndarray:
    """``img`` with ground truth (left) and predictions scoring >= ``score_thr`` (right), side by side,
    each scaled up to ``min_size`` on the long side if smaller. ``gt`` has ``bboxes``/``labels`` and
    ``pred`` also ``scores``, all in ``img``'s pixels."""
    keep = np.asarray(pred['scores']) >= score_thr
    img, scale = scale_for_display(img, min_size)
    left = draw_boxes(img, np.asarray(gt['bboxes']) * scale, gt['labels'], classes)
    right = draw_boxes(img, np.asarray(pred['bboxes'])[keep] * scale, np.asarray(pred['labels'])[keep],
                       classes, np.asarray(pred['scores'])[keep])
    gap = np.full((img.shape[0], 4, 3), 255, dtype=img.dtype)
    for panel, title in ((left, 'ground truth'), (right, f'predictions >= {score_thr}')):
        cv2.putText(panel, title, (4, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
        cv2.putText(panel, title, (4, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([left, gap, right], axis=1)
