"""`python -m training download` against a local server that speaks ballchasing.com's API (no network).

The server checks the Authorization header, pages `GET /replays` through `next`, serves real replay bytes from
../shared/replays/good (tests that need them skip without it) and can answer 429, 503 or a corrupt body.
"""

import hashlib
import json
import struct
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from training.cli import parse_config
from training.download import Config, TokenBucket, check_replay, main, query_params, retry_after_seconds

GOOD = Path(__file__).resolve().parents[1].parent / "shared" / "replays" / "good"
TOKEN_ENV = "RLRPT_TEST_BALLCHASING_TOKEN"
TOKEN = "test-token-123"
needs_replays = pytest.mark.skipif(not GOOD.is_dir(), reason="replay corpus ../shared/replays/good not present")


def _corrupt(data: bytes) -> bytes:
    """One flipped byte near the end: the body CRC no longer matches."""
    out = bytearray(data)
    out[-3] ^= 0xFF
    return bytes(out)


class FakeBallchasing:
    """Just enough of https://ballchasing.com/api: GET /replays (filters, count, after/next) and /replays/{id}/file."""

    def __init__(self, blobs: list[bytes], page_size: int = 3):
        self.ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(len(blobs))]
        self.blobs = dict(zip(self.ids, blobs))
        self.page_size = page_size
        self.corrupt_once: set[str] = set()
        self.corrupt_always: set[str] = set()
        self.throttle_once: set[str] = set()  # 429 + Retry-After: 1 on the first request for these ids
        self.unavailable_once = False  # 503 on the next listing call
        self.log: list[dict] = []  # every request: time, path, query, auth, status
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def item(self, i: int, replay_id: str) -> dict:
        return {"id": replay_id, "link": f"{self.url}/replays/{replay_id}", "playlist_id": "ranked-duels",
                "season": 12, "season_type": "free2play", "date": f"2024-03-{i + 1:02d}T20:00:00+00:00",
                "min_rank": {"id": "grand-champion-1", "tier": 19, "division": 1, "name": "Grand Champion I"},
                "max_rank": {"id": "grand-champion-2", "tier": 20, "division": 2, "name": "Grand Champion II"}}

    def calls(self, kind: str) -> list[dict]:
        return [r for r in self.log if r["path"].endswith("/file") == (kind == "file")]

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def send(self, status: int, body: bytes, ctype: str = "application/json", headers: dict | None = None):
                with server.lock:
                    server.log[-1]["status"] = status
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802 - http.server's name
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                with server.lock:
                    server.log.append({"t": time.monotonic(), "path": parts.path, "query": query,
                                       "auth": self.headers.get("Authorization")})
                if self.headers.get("Authorization") != TOKEN:
                    return self.send(401, b'{"error": "Unauthorized"}')
                if parts.path == "/api/replays":
                    if server.unavailable_once:
                        server.unavailable_once = False
                        return self.send(503, b'{"error": "ballchasing.com fault"}')
                    start = int(query.get("after", 0))
                    size = min(int(query.get("count", 150)), 200, server.page_size)
                    ids = server.ids[start:start + size]
                    page = {"count": len(server.ids), "list": [server.item(start + i, r) for i, r in enumerate(ids)]}
                    if start + size < len(server.ids):
                        page["next"] = f"{server.url}/replays?" + urlencode({**query, "after": start + size})
                    return self.send(200, json.dumps(page).encode())
                replay_id = parts.path.removeprefix("/api/replays/").removesuffix("/file")
                if not parts.path.endswith("/file") or replay_id not in server.blobs:
                    return self.send(404, b'{"error": "not found"}')
                if replay_id in server.throttle_once:
                    server.throttle_once.discard(replay_id)
                    return self.send(429, b"", headers={"Retry-After": "1"})
                data = server.blobs[replay_id]
                if replay_id in server.corrupt_once or replay_id in server.corrupt_always:
                    server.corrupt_once.discard(replay_id)
                    data = _corrupt(data)
                self.send(200, data, ctype="application/octet-stream")

        return Handler

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def blobs() -> list[bytes]:
    """The 8 smallest real replays: different bytes per id, fast to serve."""
    if not GOOD.is_dir():
        pytest.skip("replay corpus ../shared/replays/good not present")
    return [p.read_bytes() for p in sorted(GOOD.glob("*.replay"), key=lambda p: p.stat().st_size)[:8]]


@pytest.fixture
def server(blobs):
    srv = FakeBallchasing(blobs)
    yield srv
    srv.close()


@pytest.fixture
def cfg(server, tmp_path, monkeypatch) -> Config:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return Config(out=tmp_path / "raw", api=server.url, token_env=TOKEN_ENV, playlist="ranked-duels", count=5,
                  rate=500.0, files_per_hour=0, backoff=0.01, timeout=10.0, progress=False)


def _on_disk(out: Path) -> set[str]:
    return {p.stem for p in out.glob("*.replay")}


# ---------------------------------------------------------------- verification and helpers

@needs_replays
def test_check_replay_accepts_every_good_replay_and_rejects_damage():
    paths = sorted(GOOD.glob("*.replay"))
    assert len(paths) > 10
    for p in paths:
        assert check_replay(p.read_bytes()) is None, p.name
    data = min((p.read_bytes() for p in paths), key=len)
    assert "body CRC" in check_replay(_corrupt(data))
    assert "runs past the end" in check_replay(data[:40])
    assert "body size" in check_replay(data[:-1])
    assert "body size" in check_replay(data + b"\0")
    header = bytearray(data)
    header[60] ^= 0x01  # inside the header, after the class name
    assert "header CRC" in check_replay(bytes(header))
    assert "runs past the end" in check_replay(b"<html>" + b"\0" * 200)  # an error page, say
    assert "not a Rocket League replay" in check_replay(struct.pack("<II", 100, 0) + b"x" * 108)
    assert "too short" in check_replay(b"")


def test_token_bucket_spaces_calls_after_its_capacity():
    bucket = TokenBucket(rate=20.0, capacity=3)
    t0 = time.monotonic()
    stamps = []
    for _ in range(6):
        bucket.take()
        stamps.append(time.monotonic() - t0)
    assert stamps[2] < 0.03  # the saved-up three go at once
    assert stamps[5] >= 3 / 20 - 0.01  # then one every 50 ms


def test_retry_after_parses_seconds_and_http_dates():
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    in_a_minute = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    assert 55 <= retry_after_seconds(in_a_minute) <= 61


def test_stage_is_registered_and_flags_parse():
    from training.__main__ import STAGES
    assert STAGES["download"] == "training.download"
    cfg = parse_config(Config, ["--out", "x", "--playlist", "ranked-standard", "--min-rank", "grand-champion",
                                "--season", "f12", "--after", "2024-01-01", "--count", "3"], "download", "")
    assert cfg.out == Path("x") and cfg.count == 3
    assert query_params(cfg) == {"playlist": "ranked-standard", "min-rank": "grand-champion", "season": "f12",
                                 "replay-date-after": "2024-01-01T00:00:00Z", "sort-by": "replay-date",
                                 "sort-dir": "desc"}


# ---------------------------------------------------------------- the stage against the fake API

@needs_replays
def test_downloads_count_replays_across_pages_with_filters(server, cfg, capsys):
    cfg = replace(cfg, min_rank="grand-champion", season="f12", after="2024-01-01", before="2024-06-01T00:00:00Z")
    manifest = main(cfg)

    wanted = server.ids[:5]
    assert _on_disk(cfg.out) == set(wanted)
    assert not list(cfg.out.glob("*.part-*"))
    for replay_id in wanted:
        data = (cfg.out / f"{replay_id}.replay").read_bytes()
        assert data == server.blobs[replay_id]
        entry = manifest["files"][replay_id]
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)
        assert entry["playlist_id"] == "ranked-duels" and entry["min_rank"]["id"] == "grand-champion-1"
        assert entry["date"].startswith("2024-03-")
    assert manifest["counts"] == {"listed": 5, "downloaded": 5, "skipped": 0, "failed": 0}
    assert json.loads((cfg.out / "manifest.json").read_text())["files"] == manifest["files"]

    lists = server.calls("list")
    assert len(lists) == 2  # 3 + 2 replays; no third page once --count is reached
    assert lists[0]["query"] == {"playlist": "ranked-duels", "min-rank": "grand-champion", "season": "f12",
                                 "replay-date-after": "2024-01-01T00:00:00Z",
                                 "replay-date-before": "2024-06-01T00:00:00Z", "sort-by": "replay-date",
                                 "sort-dir": "desc", "count": "5"}
    assert lists[1]["query"]["after"] == "3" and lists[1]["query"]["min-rank"] == "grand-champion"  # via `next`
    assert manifest["query"]["min-rank"] == "grand-champion"
    assert all(r["auth"] == TOKEN for r in server.log)
    assert len(server.calls("file")) == 5
    assert "python -m training replays --out data/replays" in capsys.readouterr().out


@needs_replays
def test_second_run_resumes_and_downloads_nothing(server, cfg):
    first = main(cfg)
    assert first["counts"]["downloaded"] == 5
    files_before = len(server.calls("file"))

    second = main(cfg)
    assert second["counts"] == {"listed": 5, "downloaded": 0, "skipped": 5, "failed": 0}
    assert len(server.calls("file")) == files_before  # not one file request
    assert second["files"] == first["files"]

    damaged = cfg.out / f"{server.ids[1]}.replay"  # a bad file on disk is fetched again
    damaged.write_bytes(damaged.read_bytes()[:100])
    third = main(cfg)
    assert third["counts"] == {"listed": 5, "downloaded": 1, "skipped": 4, "failed": 0}
    assert damaged.read_bytes() == server.blobs[server.ids[1]]


def test_missing_token_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    cfg = Config(out=tmp_path / "raw", api="http://127.0.0.1:9/api", token_env=TOKEN_ENV, progress=False)
    with pytest.raises(SystemExit, match=f"{TOKEN_ENV} is not set.*ballchasing.com/upload"):
        main(cfg)
    assert not (tmp_path / "raw").exists()


@needs_replays
def test_rejected_token_is_a_clear_error(server, cfg, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "not-the-token")
    with pytest.raises(SystemExit, match=r"refused the token in \$" + TOKEN_ENV + r" \(HTTP 401"):
        main(cfg)
    assert len(server.log) == 1 and not _on_disk(cfg.out)


@needs_replays
def test_rate_limit_is_respected(server, cfg):
    rate = 12.0
    manifest = main(replace(cfg, rate=rate, count=6))
    assert manifest["counts"]["downloaded"] == 6
    stamps = [r["t"] for r in server.log]
    assert len(stamps) == 8  # 2 listing calls + 6 files
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert min(gaps) >= 0.8 / rate, gaps
    assert (len(stamps) - 1) / (stamps[-1] - stamps[0]) <= rate * 1.05


@needs_replays
def test_429_waits_for_retry_after_and_503_is_retried(server, cfg):
    server.throttle_once = {server.ids[0]}
    server.unavailable_once = True
    manifest = main(replace(cfg, count=2))
    assert manifest["counts"]["downloaded"] == 2 and manifest["rate_limited_responses"] == 1
    statuses = [r["status"] for r in server.log]
    assert statuses == [503, 200, 429, 200, 200]
    assert server.log[3]["t"] - server.log[2]["t"] >= 0.95  # Retry-After: 1, not the 0.01 s backoff


@needs_replays
def test_corrupt_file_is_retried_then_reported_and_not_kept(server, cfg, capsys):
    flaky, broken = server.ids[1], server.ids[2]
    server.corrupt_once = {flaky}
    server.corrupt_always = {broken}
    manifest = main(replace(cfg, count=4))

    assert manifest["counts"] == {"listed": 5, "downloaded": 4, "skipped": 0, "failed": 1}
    assert _on_disk(cfg.out) == {server.ids[i] for i in (0, 1, 3, 4)}  # the next listed replay fills the gap
    assert (cfg.out / f"{flaky}.replay").read_bytes() == server.blobs[flaky]
    assert "body CRC mismatch" in manifest["failed"][broken] and broken not in manifest["files"]
    assert not list(cfg.out.glob("*.part-*"))
    file_calls = [r["path"] for r in server.calls("file")]
    assert file_calls.count(f"/api/replays/{flaky}/file") == 2
    assert file_calls.count(f"/api/replays/{broken}/file") == 2
    assert f"failed {broken}: body CRC mismatch" in capsys.readouterr().out
