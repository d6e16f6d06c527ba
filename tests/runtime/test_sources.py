import threading
import time

import cv2
import numpy as np
import pytest

from edgecv.errors import EdgecvError
from edgecv.runtime import sources
from edgecv.runtime.sources import LiveSource, open_source


class FakeCapture:
    """A camera that delivers ``n`` frames, then fails (unplugged); ``opened=False`` fails to open."""

    def __init__(self, n: int, opened: bool = True, value: int = 0):
        self.n, self.opened, self.value = n, opened, value

    def isOpened(self):  # noqa: N802
        return self.opened

    def read(self):
        time.sleep(0.002)
        if self.n <= 0:
            return False, None
        self.n -= 1
        return True, np.full((8, 8, 3), self.value, np.uint8)

    def release(self):
        pass


def test_a_lost_camera_reconnects_with_backoff_and_an_event():
    opens = iter([FakeCapture(5, value=1), FakeCapture(0, opened=False), FakeCapture(5, value=2)])
    src = LiveSource("fake://cam", lambda: next(opens, None), backoff=(0.01, 0.02), give_up_after=0.5)
    values = []
    with pytest.raises(EdgecvError, match="no frames for 0 s; giving up"):
        for frame in src:
            values.append(int(frame.bgr[0, 0, 0]))
            time.sleep(0.003)
    src.close()
    assert 1 in values and 2 in values  # frames before and after the reconnect
    kinds = [e["event"] for e in src.stats.events]
    assert kinds[:2] == ["source_lost", "reconnected"] and src.stats.reconnects == 1
    assert src.stats.read == 10 and src.stats.dropped + len(values) == 10


def test_live_source_keeps_only_the_newest_frame():
    src = LiveSource("fake://fast", iter([FakeCapture(200)]).__next__, give_up_after=0.2)
    got = []
    with pytest.raises(EdgecvError):
        for frame in src:
            got.append(frame.index)
            time.sleep(0.02)  # a slow model
    src.close()
    assert src.stats.dropped > 0 and got == sorted(got) and len(got) + src.stats.dropped == 200


def test_folder_and_glob_sources_skip_and_count_unreadable_images(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((4, 4, 3), i, np.uint8))
    (tmp_path / "3.png").write_bytes(b"broken")
    for uri in (str(tmp_path), str(tmp_path / "*.png")):
        src = open_source(uri)
        names = [f.name for f in src]
        assert names == ["0.png", "1.png", "2.png"] and src.stats.corrupt == 1


def test_a_glob_over_folders_names_each_image_by_its_path_below_the_wildcards(tmp_path):
    for kind in ("circle", "star"):
        (tmp_path / "data" / kind).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "data" / kind / "0000.jpg"), np.zeros((4, 4, 3), np.uint8))
    names = [f.name for f in open_source(str(tmp_path / "data" / "*" / "*.jpg"))]
    assert names == ["circle/0000.jpg", "star/0000.jpg"]


def test_video_file_yields_every_frame_in_order(shapes_video):
    src = open_source(str(shapes_video))
    assert [f.index for f in src] == list(range(36))


def test_csi_without_gstreamer_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(sources, "_has_gstreamer", lambda: False)
    with pytest.raises(EdgecvError, match="this OpenCV has no GStreamer"):
        open_source("csi://0")
    assert "nvarguscamerasrc sensor-id=1" in sources.csi_pipeline(1)


def test_unknown_source_is_an_error(tmp_path):
    with pytest.raises(EdgecvError, match="no such file, folder or camera URI"):
        open_source(str(tmp_path / "missing.mp4"))


def test_a_camera_that_never_opens_fails_at_the_open_timeout_naming_what_to_check():
    t0 = time.monotonic()
    src = LiveSource("3", lambda: FakeCapture(0, opened=False), backoff=(0.05, 1.0), open_timeout=0.4)
    with pytest.raises(EdgecvError, match=r"3: could not open it within 0.4 s; check that /dev/video3 exists"):
        list(src)
    assert time.monotonic() - t0 < 1.0  # the backoff is cut at the deadline, not past it
    src.close()


def test_the_stop_event_ends_iteration_while_the_source_backs_off():
    stop = threading.Event()
    src = LiveSource("rtsp://nowhere", lambda: FakeCapture(0, opened=False), backoff=(5.0, 5.0), open_timeout=None, stop=stop)
    threading.Timer(0.3, stop.set).start()
    t0 = time.monotonic()
    assert list(src) == []  # ends, no error: the run was stopped
    src.close()
    assert time.monotonic() - t0 < 0.6 and not src._thread.is_alive()
