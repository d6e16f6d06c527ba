import numpy as np

from edgecv.artifact import ArtifactMeta
from edgecv.runtime.postprocess import detect
from edgecv.runtime.postprocess.detect import best_class, detect_postprocess, nms_numpy, nms_xyxy
from edgecv.runtime.preprocess import letterbox


def test_nms_exact_values_class_aware():
    xyxy = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.95], np.float32)
    classes = np.array([0, 0, 1, 0, 0])
    # box 1 overlaps box 0 (IoU 0.68) in the same class: suppressed; box 2 overlaps box 0 but is another class
    assert nms_xyxy(xyxy, scores, classes, iou=0.5).tolist() == [4, 0, 2, 3]
    assert nms_xyxy(xyxy, scores, classes, iou=0.7).tolist() == [4, 0, 1, 2, 3]
    assert nms_xyxy(xyxy, scores, classes, iou=0.5, max_det=2).tolist() == [4, 0]
    assert nms_xyxy(np.zeros((0, 4), np.float32), np.zeros(0), np.zeros(0), 0.5).tolist() == []


def test_best_class_thresholds_per_box():
    scores = np.array([[0.1, 0.7], [0.2, 0.1], [0.5, 0.4]], np.float32)
    idx, cls, best = best_class(scores, conf=0.3)
    assert idx.tolist() == [0, 2] and cls.tolist() == [1, 0] and best.tolist() == [np.float32(0.7), np.float32(0.5)]


def test_letterbox_and_boxes_back_to_frame_pixels():
    frame = np.zeros((100, 200, 3), np.uint8)
    img, tf = letterbox(frame, (64, 64))
    assert img.shape == (64, 64, 3) and (tf.scale_x, tf.pad_x, tf.pad_y) == (0.32, 0, 16)
    assert (img[:16] == 114).all() and (img[16:48] == 0).all()
    meta = ArtifactMeta(task="detect", labels=["cat", "dog"], input_size=(64, 64), mean=(0,) * 3, std=(1,) * 3,
                        resize="letterbox")
    boxes = np.array([[[0, 16, 32, 32], [1, 17, 33, 33]]], np.float32)
    scores = np.array([[[0.1, 0.9], [0.2, 0.8]]], np.float32)
    det = detect_postprocess([boxes, scores], meta, conf=0.5, iou=0.5, transform=tf)
    assert det.labels == ("dog",) and det.xyxy.tolist() == [[0.0, 0.0, 100.0, 50.0]]


def test_onnxruntime_kernel_numpy_fallback_and_torchvision_keep_the_same_boxes():
    import torch
    import torchvision

    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 300, (12, 2))
    k = rng.integers(0, 12, 600)
    c = centres[k] + rng.normal(0, 4, (600, 2))
    xyxy = np.concatenate([c - 20, c + 20], 1).astype(np.float32)
    scores = rng.uniform(0.05, 1, 600).astype(np.float32)
    classes = rng.integers(0, 3, 600)
    ours = nms_xyxy(xyxy, scores, classes, 0.5, max_det=600)
    theirs = torchvision.ops.batched_nms(torch.from_numpy(xyxy), torch.from_numpy(scores), torch.from_numpy(classes), 0.5)
    assert ours.tolist() == theirs.tolist()  # same boxes, same (score) order
    assert nms_numpy(detect._offset_by_class(xyxy, classes), scores, 0.5, 600).tolist() == ours.tolist()


def test_shipped_nms_graph_is_what_the_script_builds():
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "make_nms_onnx.py"
    spec = importlib.util.spec_from_file_location("make_nms_onnx", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert detect._NMS_GRAPH.read_bytes() == mod.build()
