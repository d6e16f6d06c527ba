"""Multi-object tracking on the device (numpy; OpenCV for what objects look like): ids that live across frames."""

from edgecv.runtime.track.bytetrack import ByteTracker, TrackerOptions

__all__ = ["ByteTracker", "TrackerOptions"]
