"""Faces on the device: detection (BlazeFace / Haar / YuNet / an edgecv detector), crops and alignment, the SQLite
gallery and vectorised matching. numpy + OpenCV (+ the runtime's LiteRT for BlazeFace) only."""

# what `--face-detector` is when not given (`benchmarks/faces.py`: all 96 face frames of the demo found where Haar
# finds 90, in a third of Haar's time; its model file ships inside edgecv)
DEFAULT_DETECTOR = "blazeface-back"
