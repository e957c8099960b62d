from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.loopback import LoopbackBird
from tests.integration.test_email_adapters import free_port


def weft(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "weft.entrypoints.cli", *args],
        cwd=tmp_path, env=_environment(env), capture_output=True, text=True, timeout=60,
    )


def test_simulate_sms_runs_the_keyword_flow_and_subscribers_shows_the_state(tmp_path: Path) -> None:
    joined = weft(tmp_path, "simulate-sms", "--from", "+1 (415) 555-0123", "love!")
    assert joined.returncode == 0, joined.stderr
    assert ("reply (sent): Thanks for joining Community Weft! Click here: "
            "http://127.0.0.1:8000/?phone=%2B14155550123&t=") in joined.stdout
    stopped = weft(tmp_path, "simulate-sms", "--from", "+14155550123", "STOP")
    assert "consent: opted_out" in stopped.stdout
    helped = weft(tmp_path, "simulate-sms", "--from", "+14155550123", "HELP")
    assert "reply (sent): Community Weft: you have opted out" in helped.stdout  # HELP is answered at any time
    chatted = weft(tmp_path, "simulate-sms", "--from", "+14155550123", "hello")
    assert "reply" not in chatted.stdout
    table = weft(tmp_path, "subscribers").stdout.splitlines()
    assert table[0].split() == ["PHONE", "CONSENT", "TIER", "LAST", "MESSAGE", "UPDATED"]
    assert table[1].split()[:4] == ["+14155550123", "opted_out", "Free", "hello"]
    assert (tmp_path / "weft.db").exists()


def test_the_cli_logs_mask_the_phone(tmp_path: Path) -> None:
    result = weft(tmp_path, "simulate-sms", "--from", "+14155550123", "LOVE")
    assert "+*******0123" in result.stderr
    assert "4155550123" not in result.stderr


def test_a_missing_provider_setting_fails_at_start_with_one_line_naming_it(tmp_path: Path) -> None:
    result = weft(tmp_path, "subscribers", WEFT_SMS_PROVIDER="bird", BIRD_WORKSPACE_ID="w", BIRD_CHANNEL_ID="c")
    assert result.returncode == 2
    assert result.stderr.strip() == "weft: configuration error: BIRD_API_KEY is required when WEFT_SMS_PROVIDER=bird"


def test_an_invalid_sender_is_refused_clearly(tmp_path: Path) -> None:
    result = weft(tmp_path, "simulate-sms", "--from", "12", "LOVE")
    assert result.returncode == 2
    assert "not a valid number" in result.stderr


def test_serve_answers_webhooks_its_worker_process_delivers_the_reply_and_metrics_count_both(tmp_path: Path) -> None:
    bird = LoopbackBird().start()
    port = free_port()
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {"WEFT_SMS_PROVIDER": "bird", "BIRD_API_KEY": "k", "BIRD_WORKSPACE_ID": "w", "BIRD_CHANNEL_ID": "c",
           "BIRD_API_URL": bird.url, "WEFT_ADMIN_TOKEN": "metrics-token", "TMPDIR": str(temporary)}
    server = subprocess.Popen([sys.executable, "-m", "weft.entrypoints.cli", "serve", "--port", str(port),
                               "--background", "process"],
                              cwd=tmp_path, env=_environment(env), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: _healthy(port))
        body = (Path(__file__).parent.parent / "fixtures/bird/channels_sms_inbound.json").read_bytes()
        response = httpx.post(f"http://127.0.0.1:{port}/bird-sms-webhook", content=body,
                              headers={"content-type": "application/json"})
        assert response.json() == {"status": "processed"}
        _wait(lambda: len(bird.sent()) == 1)
        assert bird.texts()[0].startswith("You have been successfully unsubscribed.")
        _kill_workers(tmp_path)
        love = body.replace(b'"STOP"', b'"LOVE"').replace(b"5d0f3a2e", b"6e1f4b3f")
        httpx.post(f"http://127.0.0.1:{port}/bird-sms-webhook", content=love,
                   headers={"content-type": "application/json"})
        _wait(lambda: len(bird.sent()) == 2)

        # The web process applied the STOP; its worker sent the confirmation and died; the restarted worker
        # applied LOVE and sent the link. The web process's /metrics counts all of it.
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics",
                            headers={"Authorization": "Bearer metrics-token"}).text
        assert _samples(scraped, "weft_inbound_texts_total") == {"opt_out": 1.0, "join": 1.0}
        assert _samples(scraped, "weft_outbound_texts_total") == {"opt_out_confirmation/sent": 1.0,
                                                                 "join_link/sent": 1.0}
        assert _samples(scraped, "weft_sms_send_seconds_count") == {"": 2.0}
    finally:
        server.terminate()
        code = server.wait(timeout=40)
        bird.stop()
    _wait(lambda: not _worker_running(tmp_path))
    assert code == 0  # a SIGTERM is a clean stop
    assert list(temporary.iterdir()) == []  # the counts' directory went with the service


def _samples(exposition: str, name: str) -> dict[str, float]:
    """The non-zero samples called `name`, by their label values joined with '/'."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and sample.value:
                found["/".join(sample.labels.values())] = sample.value
    return found


def _environment(extra: dict[str, str]) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("WEFT_", "BIRD_"))}
    return {**environment, **extra}


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    except httpx.TransportError:
        return False


def _workers(cwd: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cwd").resolve() == cwd.resolve() and b"worker" in (
                    proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _worker_running(cwd: Path) -> bool:
    return bool(_workers(cwd))


def _kill_workers(cwd: Path) -> None:
    for pid in _workers(cwd):
        os.kill(pid, signal.SIGKILL)


def _wait(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_sync_bird_applies_what_bird_holds_and_sends_the_fresh_reply(tmp_path: Path) -> None:
    from tests.integration.test_bird_sync import incoming, outgoing

    bird = LoopbackBird().start()
    bird.history = [incoming("b-1", "LOVE", 1), outgoing("b-2", "From the flow", 0.5), incoming("b-3", "hi", 0.2)]
    env = {"WEFT_SMS_PROVIDER": "bird", "BIRD_API_URL": bird.url, "BIRD_API_KEY": "k", "BIRD_WORKSPACE_ID": "ws-1",
           "BIRD_CHANNEL_ID": "ch-default"}
    try:
        result = weft(tmp_path, "sync-bird", **env)
        again = weft(tmp_path, "sync-bird", **env)
    finally:
        bird.stop()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("fetched 3 messages in 2 pages: 2 new inbound, 1 new outbound, "
                                     "1 keyword changes")
    assert bird.recipients() == ["+14155550123"]  # the LOVE link, once
    assert "0 new inbound, 0 new outbound" in again.stdout


def test_sync_bird_without_bird_settings_says_what_it_needs(tmp_path: Path) -> None:
    result = weft(tmp_path, "sync-bird")
    assert result.returncode == 2
    assert "BIRD_API_KEY, BIRD_WORKSPACE_ID and BIRD_CHANNEL_ID" in result.stderr
