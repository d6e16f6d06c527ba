import numpy as np

from edgecv.evaluate.classify import classification_metrics, topk_accuracy


def test_exact_metrics_on_a_tiny_case():
    scores = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.5, 0.1, 0.4], [0.1, 0.2, 0.7]])
    labels = np.array([0, 1, 2, 2])
    m = classification_metrics(scores, labels, ["a", "b", "c"])
    assert m["top1"] == 0.75 and m["top5"] == 1.0 and m["n"] == 4
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    assert m["per_class"]["a"] == {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "support": 1}
    assert m["per_class"]["c"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert topk_accuracy(scores, labels, 2) == 1.0
