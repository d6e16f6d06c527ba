"""The device side: numpy + OpenCV + one inference runtime. Never imports torch or tensorflow."""
