"""`--events mqtt://` against a real mosquitto (Debian package) started on 127.0.0.1: events arrive; a broker
restart mid-stream loses none (the queue holds them); a wrong password is one line and one attempt; TLS with a CA;
secrets never on the console."""

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from edgecv.errors import EdgecvError
from edgecv.runtime.mqtt_sink import parse_mqtt_uri
from tests.runtime.servers import EdgecvRun, MjpegServer, free_port, requires_ffmpeg

needs_mosquitto = pytest.mark.skipif(
    shutil.which("mosquitto") is None and not os.environ.get("CI"),
    reason="mosquitto is not installed (scripts/test.sh installs it)",
)


class Mosquitto:
    def __init__(self, folder, password: tuple[str, str] | None = None, tls: bool = False):
        self.folder, self.port = folder, free_port()
        folder.mkdir(exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence true",
            f"persistence_location {folder}/",
            f"log_dest file {folder}/broker.log",
            "log_type all",
        ]
        if os.geteuid() == 0:  # as root mosquitto drops to its own user, which cannot read pytest's private folders
            lines.append("user root")
        if password:
            subprocess.run(["mosquitto_passwd", "-b", "-c", str(folder / "passwd"), *password], check=True)
            lines += ["allow_anonymous false", f"password_file {folder / 'passwd'}"]
        else:
            lines += ["allow_anonymous true"]
        if tls:
            subprocess.run(
                [
                    "openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=127.0.0.1",
                    "-addext",
                    "subjectAltName=IP:127.0.0.1",
                    "-keyout",
                    str(folder / "key.pem"),
                    "-out",
                    str(folder / "cert.pem"),
                ],
                check=True,
                capture_output=True,
            )
            lines += [f"certfile {folder / 'cert.pem'}", f"keyfile {folder / 'key.pem'}"]
        (folder / "mosquitto.conf").write_text("\n".join(lines) + "\n")
        self.proc = None

    def start(self) -> "Mosquitto":
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.folder / "mosquitto.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.time() + 10
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # saves the persistent sessions
            self.proc.wait(timeout=10)

    def log(self) -> str:
        path = self.folder / "broker.log"
        return path.read_text() if path.exists() else ""


class Subscriber:
    """A persistent-session QoS 1 subscriber: the broker keeps its messages across its own restart."""

    def __init__(self, port: int, topic: str):
        import paho.mqtt.client as mqtt

        self.messages: list[dict] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="edgecv-test-sub", clean_session=False)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        time.sleep(0.5)

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append(json.loads(message.payload))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def model_of(tiny_export):
    return str(tiny_export[0] / "model_int8.onnx")


def test_mqtt_uris_keep_secrets_out():
    t = parse_mqtt_uri("mqtts://cam1@broker.local/site/door?password_file=/run/secret&ca=/etc/ca.pem")
    assert (t.host, t.port, t.topic, t.tls, t.username) == ("broker.local", 8883, "site/door", True, "cam1")
    assert t.safe_uri == "mqtts://cam1@broker.local:8883/site/door"
    assert parse_mqtt_uri("mqtt://u@h/t").password_env == "EDGECV_MQTT_PASSWORD"
    with pytest.raises(EdgecvError, match="a password in the URI") as err:
        parse_mqtt_uri("mqtt://u:hunter2@h/t")
    assert "hunter2" not in str(err.value)
    for bad, message in (
        ("mqtt://h", "mqtt://\\[user@\\]host"),
        ("mqtt://h/t?ca=x", "use mqtts://"),
        ("mqtt://h/t?qos=2", "unknown MQTT URI options"),
    ):
        with pytest.raises(EdgecvError, match=message):
            parse_mqtt_uri(bad)


@needs_mosquitto
@requires_ffmpeg
def test_a_broker_restart_mid_stream_loses_no_event(tiny_export, shapes_video, tmp_path):
    broker = Mosquitto(tmp_path / "broker").start()
    sub = Subscriber(broker.port, "edgecv/test")
    try:
        with MjpegServer(shapes_video) as camera:  # 10 fps: the run lasts ~8 s
            run = EdgecvRun(
                model_of(tiny_export),
                "--source",
                camera.uri,
                "--max-frames",
                "80",
                "--threads",
                "1",
                "--events",
                f"mqtt://127.0.0.1:{broker.port}/edgecv/test",
                "--telemetry",
                str(tmp_path / "t.json"),
            )
            run.wait_for("events mqtt://127.0.0.1")
            time.sleep(2.5)
            broker.stop()
            time.sleep(2.0)
            broker.start()
            rc, out, _ = run.finish(timeout=60)
        assert rc == 0, run.stderr
        deadline = time.time() + 10
        while time.time() < deadline and len({m["frame"] for m in sub.messages if m["event"] == "result"}) < 80:
            time.sleep(0.1)
    finally:
        sub.close()
        broker.stop()
    frames = sorted({m["frame"] for m in sub.messages if m["event"] == "result"})
    telemetry = json.loads((tmp_path / "t.json").read_text())
    assert telemetry["frames"] == 80 and len(frames) == 80, (len(frames), run.stderr)
    assert telemetry["mqtt"]["reconnects"] >= 1 and telemetry["mqtt"]["dropped"] == 0
    assert "lost the broker" in run.stderr and "reconnected to the broker" in run.stderr


@needs_mosquitto
def test_a_wrong_password_is_one_line_and_one_attempt(tiny_export, shapes_video, tmp_path):
    broker = Mosquitto(tmp_path / "broker", password=("cam1", "s3cret-pw")).start()
    try:
        uri = f"mqtt://cam1@127.0.0.1:{broker.port}/edgecv/test"
        run = EdgecvRun(
            model_of(tiny_export),
            "--source",
            str(shapes_video),
            "--events",
            uri,
            "--threads",
            "1",
            env={"EDGECV_MQTT_PASSWORD": "wrong-pw"},
        )
        rc, _, elapsed = run.finish(timeout=60)
        errors = [line for line in run.lines if line.startswith("edgecv: error:")]
        assert rc == 2 and len(errors) == 1 and "refused the connection" in errors[0], run.stderr
        assert "$EDGECV_MQTT_PASSWORD" in errors[0] and "wrong-pw" not in run.stderr and "Traceback" not in run.stderr
        time.sleep(1.0)
        assert broker.log().count("disconnected, not authorised") == 1  # one attempt: no retry storm
        ok = EdgecvRun(
            model_of(tiny_export),
            "--source",
            str(shapes_video),
            "--events",
            uri,
            "--threads",
            "1",
            env={"EDGECV_MQTT_PASSWORD": "s3cret-pw"},
        )
        assert ok.finish(timeout=60)[0] == 0, ok.stderr
        assert "s3cret-pw" not in ok.stderr
    finally:
        broker.stop()


@needs_mosquitto
def test_mqtts_with_the_broker_ca(tiny_export, shapes_video, tmp_path):
    broker = Mosquitto(tmp_path / "broker", tls=True).start()
    try:
        import paho.mqtt.client as mqtt

        got = []
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        sub.tls_set(ca_certs=str(broker.folder / "cert.pem"))
        sub.on_connect = lambda c, u, f, rc, p: c.subscribe("edgecv/tls", qos=1)
        sub.on_message = lambda c, u, m: got.append(json.loads(m.payload))
        sub.connect("127.0.0.1", broker.port)
        sub.loop_start()
        time.sleep(0.5)
        uri = f"mqtts://127.0.0.1:{broker.port}/edgecv/tls?ca={broker.folder / 'cert.pem'}"
        run = EdgecvRun(model_of(tiny_export), "--source", str(shapes_video), "--events", uri, "--threads", "1")
        assert run.finish(timeout=60)[0] == 0, run.stderr
        deadline = time.time() + 10
        while time.time() < deadline and sum(m["event"] == "result" for m in got) < 36:
            time.sleep(0.1)
        sub.disconnect()
        sub.loop_stop()
        assert sum(m["event"] == "result" for m in got) == 36
        untrusted = EdgecvRun(
            model_of(tiny_export),
            "--source",
            str(shapes_video),
            "--threads",
            "1",
            "--events",
            f"mqtts://127.0.0.1:{broker.port}/edgecv/tls",
        )  # the system CAs do not know it
        rc, _, _ = untrusted.finish(timeout=60)
        assert rc == 2 and "TLS certificate is not trusted" in untrusted.stderr and "?ca=CA.pem" in untrusted.stderr
    finally:
        broker.stop()
