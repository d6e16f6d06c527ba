import numpy as np

from edgecv.artifact import ArtifactMeta, ClassifyDecoder, ClassifyThresholds
from edgecv.export.calibration import files_hash, load_calibration, stratified_sample


def test_stratified_sample_is_proportional_seeded_and_covers_every_class():
    labels = [0] * 80 + [1] * 15 + [2] * 5
    a = stratified_sample(labels, 20, seed=3)
    assert len(a) == 20 and a == stratified_sample(labels, 20, seed=3) and a != stratified_sample(labels, 20, seed=4)
    counts = np.bincount(np.asarray(labels)[a], minlength=3)
    assert counts.tolist() == [16, 3, 1]
    assert stratified_sample(labels, 500, seed=0) == list(range(100))


def test_calibration_skips_and_counts_unreadable_images_and_hashes_its_file_list(shapes_dir, tmp_path):
    files = sorted(str(p.relative_to(shapes_dir)) for p in shapes_dir.rglob("*.jpg"))[:6]
    root = tmp_path / "d"
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes((shapes_dir / rel).read_bytes())
    (root / files[0]).write_bytes(b"not an image")
    cal = load_calibration(root, files, [0, 0, 0, 1, 1, 1], 6, (32, 48))
    assert cal.skipped == 1 and len(cal) == 5 and cal.images.shape == (5, 32, 48, 3)
    assert cal.hash == files_hash(files[1:]) != files_hash(files)
    meta = ArtifactMeta(
        task="classify",
        decoder=ClassifyDecoder("logits", ("output",)),
        thresholds=ClassifyThresholds(),
        labels=["a", "b"],
        input_size=(32, 48),
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
        layout="NHWC",
        precision="int8",
        input_quant={"scale": 0.1, "zero_point": 0},
    )
    batches = list(cal.inputs(meta, batch=2))
    # calibration feeds the float graph: NHWC float, never the int8-quantized input
    assert [b.shape for b in batches] == [(2, 32, 48, 3), (2, 32, 48, 3), (1, 32, 48, 3)]
    assert batches[0].dtype == np.float32 and batches[0].min() >= -1 and batches[0].max() <= 1
