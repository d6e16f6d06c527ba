"""Faces on the device: detection (Haar / YuNet / an edgecv detector), crops and alignment, the SQLite gallery and
vectorised matching. numpy + OpenCV only."""
