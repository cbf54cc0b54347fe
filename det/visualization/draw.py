"""Drawing boxes for inspection: ground truth beside predictions, one image per sample."""
import cv2
import numpy as np

_PALETTE = [(56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207),
            (10, 249, 72), (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0),
            (168, 153, 44), (255, 194, 0), (147, 69, 52), (255, 115, 100), (236, 24, 0)]


def draw_boxes(img: np.ndarray, bboxes, labels, classes, scores=None) -> np.ndarray:
    """A copy of BGR ``img`` [H, W, 3] with xyxy pixel ``bboxes`` [N, 4], their class names and,
    if given, scores."""
    out = img.copy()
    thickness = max(1, round(min(img.shape[:2]) / 400))
    for i, (box, label) in enumerate(zip(np.asarray(bboxes), np.asarray(labels))):
        color = _PALETTE[int(label) % len(_PALETTE)]
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness)
        text = classes[int(label)] if int(label) < len(classes) else str(int(label))
        if scores is not None:
            text += f' {float(scores[i]):.2f}'
        cv2.putText(out, text, (x1, max(0, y1 - 2)), cv2.FONT_HERSHEY_SIMPLEX, 0.35 * thickness, color,
                    thickness, cv2.LINE_AA)
    return out


def gt_beside_pred(img: np.ndarray, gt, pred, classes, score_thr: float = 0.3) -> np.ndarray:
    """``img`` with ground truth (left) and predictions scoring >= ``score_thr`` (right), side by side.
    ``gt`` has ``bboxes``/``labels`` and ``pred`` also ``scores``, all in ``img``'s pixels."""
    keep = np.asarray(pred['scores']) >= score_thr
    left = draw_boxes(img, gt['bboxes'], gt['labels'], classes)
    right = draw_boxes(img, np.asarray(pred['bboxes'])[keep], np.asarray(pred['labels'])[keep], classes,
                       np.asarray(pred['scores'])[keep])
    gap = np.full((img.shape[0], 4, 3), 255, dtype=img.dtype)
    for panel, title in ((left, 'ground truth'), (right, f'predictions >= {score_thr}')):
        cv2.putText(panel, title, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([left, gap, right], axis=1)
