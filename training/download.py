"""Download .replay files from ballchasing.com's public API, rate limited, resumable and verified.

    export BALLCHASING_TOKEN=...   # from https://ballchasing.com/upload (log in with Steam)
    python -m training download --out data/raw_replays --playlist ranked-duels --min-rank grand-champion --count 500

Lists replays with `GET /replays` (filters as query parameters, pages followed through `next`) and fetches each
with `GET /replays/{id}/file` into `<out>/<id>.replay`: streamed to a temporary name, checked, then renamed, so a
file in `<out>` is always complete. A replay already on disk that passes the check is skipped, so a killed run
resumes. The check is Rocket League's own framing: header size + CRC, body size + CRC, nothing after it.
`<out>/manifest.json` records the query, the counts and every file's sha256, size and API metadata.
Only the standard library speaks HTTP here, so the training dependencies do not grow. docs/download.md.
"""

import email.utils
import hashlib
import http.client
import json
import os
import re
import struct
import sys
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urljoin, urlsplit
from urllib.request import Request, urlopen

from tqdm import tqdm

from training.cli import arg
from training.storage import read_json, sha256_file, write_json

USER_AGENT = "rl-rpt-download/1 (python-urllib)"
TOKEN_PAGE = "https://ballchasing.com/upload"
PAGE_MAX = 200  # the API returns at most 200 replays per `GET /replays` call
META_KEYS = ("playlist_id", "playlist_name", "season", "season_type", "date", "duration", "map_code",
             "min_rank", "max_rank", "link")  # copied from the listing into the manifest
NETWORK_ERRORS = (URLError, TimeoutError, ConnectionError, http.client.HTTPException)
REPLAY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,127}$")  # ids become file names: nothing path-like


@dataclass(frozen=True)
class Config:
    out: Path = arg(Path("data/raw_replays"), "folder for <replay id>.replay files and manifest.json")
    playlist: str = arg("ranked-doubles", "ballchasing playlist, e.g. ranked-duels, ranked-doubles, ranked-standard")
    min_rank: str | None = arg(None, "lowest rank of the players, e.g. champion-1, grand-champion")
    max_rank: str | None = arg(None, "highest rank of the players")
    season: str | None = arg(None, "season: 1..14 for the old ones, f1, f2, ... since free to play")
    after: str | None = arg(None, "only games played after this date (RFC 3339, or YYYY-MM-DD = midnight UTC)")
    before: str | None = arg(None, "only games played before this date; fix it to make a query repeatable")
    count: int = arg(100, "replays wanted in --out for this query (already present ones count), across pages")
    sort_by: str = arg("replay-date", "replay-date or upload-date")
    sort_dir: str = arg("desc", "asc or desc")
    token_env: str = arg("BALLCHASING_TOKEN", "environment variable that holds the API token")
    api: str = arg("https://ballchasing.com/api", "API base URL (tests point it at a local server)")
    rate: float = arg(1.0, "API calls per second at most (regular users: 1/s for files, 2/s for listing)")
    files_per_hour: int = arg(200, "file downloads per hour at most (regular 200, gold 400, diamond 1000, "
                                    "champion 2000; 0 = no cap)")
    retries: int = arg(8, "retries of a call after 429, 5xx or a network error (exponential backoff)")
    backoff: float = arg(2.0, "first backoff in seconds when the server gives no Retry-After (doubles, max 300)")
    timeout: float = arg(60.0, "seconds before a silent connection counts as failed")
    progress: bool = arg(True, "show a progress bar")


class ApiError(RuntimeError):
    """A call that failed for good (after retries, or a status that retrying cannot fix)."""


# ---------------------------------------------------------------- verification

_REV8 = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _rev32(x: int) -> int:
    return int(f"{x:032b}"[::-1], 2)


def replay_crc(data: bytes) -> int:
    """Rocket League's CRC-32: polynomial 0x04C11DB7 MSB-first, init 0x10340DFE, final xor 0xFFFFFFFF.

    zlib computes the bit-reflected variant, so feed it bit-reversed bytes and reverse the result; as fast as zlib.
    """
    return _rev32(zlib.crc32(data.translate(_REV8), ~_rev32(0x10340DFE) & 0xFFFFFFFF))


def check_replay(data: bytes) -> str | None:
    """None when `data` is a whole, uncorrupted .replay; otherwise why not.

    Layout: u32 header size, u32 header CRC, header (starts with versions, then the class name
    "TAGame.Replay_..."), u32 body size, u32 body CRC, body, and nothing else.
    """
    if len(data) < 16:
        return f"too short ({len(data)} bytes)"
    header_size, header_crc = struct.unpack_from("<II", data, 0)
    if 16 + header_size > len(data):
        return f"header size {header_size} runs past the end ({len(data)} bytes)"
    header = data[8:8 + header_size]
    if b"TAGame.Replay_" not in header[:64]:
        return "no TAGame.Replay_ class name at the start: not a Rocket League replay"
    if replay_crc(header) != header_crc:
        return "header CRC mismatch"
    body_size, body_crc = struct.unpack_from("<II", data, 8 + header_size)
    end = 16 + header_size + body_size
    if end != len(data):
        return f"body size says {end} bytes in all, file has {len(data)}"
    if replay_crc(data[16 + header_size:end]) != body_crc:
        return "body CRC mismatch"
    return None


# ---------------------------------------------------------------- rate limiting and HTTP

class TokenBucket:
    """`rate` tokens a second, at most `capacity` saved up; take() sleeps until one is there."""

    def __init__(self, rate: float, capacity: float = 1.0):
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.rate, self.capacity = rate, capacity
        self.tokens, self.stamp = capacity, time.monotonic()

    def take(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return
            time.sleep((1.0 - self.tokens) / self.rate)


def retry_after_seconds(value: str | None) -> float | None:
    """The Retry-After header as seconds: either a number or an HTTP date (RFC 9110); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Client:
    """GETs against the API with the token, a calls/second bucket, an optional file/hour bucket and retries."""

    def __init__(self, cfg: Config, token: str, log=print):
        self.cfg, self.token, self.log = cfg, token, log
        self.api = cfg.api.rstrip("/") + "/"
        self.calls = TokenBucket(cfg.rate, 1.0)  # no burst: the documented limits are per second
        self.files = TokenBucket(cfg.files_per_hour / 3600.0, cfg.files_per_hour) if cfg.files_per_hour > 0 else None
        self.rate_limited = 0  # 429s seen, for the manifest

    def same_origin(self, url: str) -> bool:
        a, b = urlsplit(url), urlsplit(self.api)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    def open(self, url: str, is_file: bool = False):
        """An open 2xx response; 429/5xx/network errors are retried, Retry-After honoured; 401/403 stop the run."""
        if not self.same_origin(url):
            raise ApiError(f"refusing to send the token to another host: {url}")
        for attempt in range(self.cfg.retries + 1):
            if is_file and self.files is not None:
                self.files.take()
            self.calls.take()
            request = Request(url, headers={"Authorization": self.token, "User-Agent": USER_AGENT,
                                            "Accept": "application/json, application/octet-stream"})
            try:
                return urlopen(request, timeout=self.cfg.timeout)  # noqa: S310 - https/http API URL, checked above
            except HTTPError as e:
                body = e.read(500).decode("utf-8", "replace")
                e.close()
                if e.code in (401, 403):
                    raise SystemExit(f"download: ballchasing.com refused the token in ${self.cfg.token_env} "
                                     f"(HTTP {e.code}: {body.strip() or e.reason}); get a valid one at "
                                     f"{TOKEN_PAGE}") from None
                if e.code != 429 and e.code < 500:
                    raise ApiError(f"HTTP {e.code} for {url}: {body.strip() or e.reason}") from None
                self.rate_limited += int(e.code == 429)
                wait = retry_after_seconds(e.headers.get("Retry-After"))
                reason = f"HTTP {e.code}"
            except NETWORK_ERRORS as e:
                wait, reason = None, f"{type(e).__name__}: {getattr(e, 'reason', e)}"
            if attempt == self.cfg.retries:
                raise ApiError(f"{reason} for {url}, gave up after {attempt + 1} tries")
            if wait is None:
                wait = min(self.cfg.backoff * 2 ** attempt, 300.0)
            wait = min(wait, 3600.0)  # the longest documented window is an hour
            self.log(f"download: {reason}, waiting {wait:.1f} s before retry {attempt + 1}/{self.cfg.retries}")
            time.sleep(wait)
        raise AssertionError("unreachable")

    def get_json(self, url: str) -> dict:
        with self.open(url) as response:
            return json.loads(response.read().decode("utf-8"))

    def fetch_file(self, replay_id: str, dest: Path) -> tuple[str | None, int, str]:
        """Stream one replay to a temporary name, check it, rename it into place when good.

        Returns (problem or None, bytes, sha256). A bad file is fetched once more (a transfer can break);
        a second bad copy is deleted and reported.
        """
        url = urljoin(self.api, f"replays/{replay_id}/file")
        tmp = dest.with_name(f"{dest.name}.part-{os.getpid()}")
        problem = "not fetched"
        try:
            for _ in range(2):
                sha = hashlib.sha256()
                try:
                    with self.open(url, is_file=True) as response, open(tmp, "wb") as fh:
                        while block := response.read(1 << 16):
                            fh.write(block)
                            sha.update(block)
                except NETWORK_ERRORS as e:  # broke mid-body: counts as a bad copy
                    problem = f"transfer broke: {e}"
                    continue
                data = tmp.read_bytes()
                problem = check_replay(data)
                if problem is None:
                    os.replace(tmp, dest)
                    return None, len(data), sha.hexdigest()
            return problem, 0, ""
        finally:
            tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------- the stage

def _rfc3339(text: str | None) -> str | None:
    """Plain dates become midnight UTC (the API wants RFC 3339); anything else is passed through as given."""
    if text and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return f"{text}T00:00:00Z"
    return text


def query_params(cfg: Config) -> dict[str, str]:
    """The `GET /replays` filters for a config, by the API's parameter names."""
    params = {"playlist": cfg.playlist, "min-rank": cfg.min_rank, "max-rank": cfg.max_rank, "season": cfg.season,
              "replay-date-after": _rfc3339(cfg.after), "replay-date-before": _rfc3339(cfg.before),
              "sort-by": cfg.sort_by, "sort-dir": cfg.sort_dir}
    return {k: v for k, v in params.items() if v not in (None, "")}


def _validate(cfg: Config) -> None:
    if cfg.count < 1:
        raise SystemExit(f"download: --count must be >= 1, got {cfg.count}")
    if cfg.rate <= 0:
        raise SystemExit(f"download: --rate must be > 0 calls/s, got {cfg.rate}")
    if cfg.retries < 0 or cfg.files_per_hour < 0:
        raise SystemExit("download: --retries and --files-per-hour must be >= 0")
    if urlsplit(cfg.api).scheme not in ("http", "https"):
        raise SystemExit(f"download: --api must be an http(s) URL, got {cfg.api!r}")


def main(cfg: Config) -> dict:
    _validate(cfg)
    token = os.environ.get(cfg.token_env, "").strip()
    if not token:
        raise SystemExit(f"download: the environment variable {cfg.token_env} is not set. Create an API token at "
                         f"{TOKEN_PAGE} (log in with Steam) and run `export {cfg.token_env}=<token>`.")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    old = read_json(manifest_path) if manifest_path.is_file() else {}
    # earlier runs' files stay listed while they are on disk
    files: dict[str, dict] = {k: v for k, v in old.get("files", {}).items() if (out / f"{k}.replay").is_file()}
    failed: dict[str, str] = {}
    counts = {"listed": 0, "downloaded": 0, "skipped": 0, "failed": 0}
    params = query_params(cfg)
    bar = tqdm(total=cfg.count, desc="download", unit="replay", disable=not cfg.progress)
    client = Client(cfg, token, log=tqdm.write if cfg.progress else (lambda m: print(m, file=sys.stderr)))

    def save() -> dict:
        manifest = {"api": cfg.api, "query": params, "config": asdict(cfg),
                    "counts": dict(counts), "rate_limited_responses": client.rate_limited,
                    "verification": "header and body sizes + CRCs (Rocket League's CRC-32)",
                    "files": files, "failed": failed}
        write_json(manifest_path, manifest)
        return manifest

    url: str | None = urljoin(client.api, "replays") + "?" + urlencode({**params, "count": min(cfg.count, PAGE_MAX)})
    have = 0  # replays of this query that are on disk: the --count target
    try:
        while url and have < cfg.count:
            try:
                page = client.get_json(url)
            except (ApiError, ValueError) as e:  # ValueError: not JSON
                raise SystemExit(f"download: listing replays failed: {e}") from None
            items = page.get("list") or []
            nxt = page.get("next")
            url = urljoin(client.api, nxt) if nxt and items else None  # an empty page ends the listing too
            for item in items:
                if have >= cfg.count:
                    break
                replay_id = str(item.get("id", ""))
                if not REPLAY_ID.match(replay_id):
                    failed[replay_id or "?"] = "id is not a plain replay id"
                    counts["failed"] += 1
                    continue
                counts["listed"] += 1
                dest = out / f"{replay_id}.replay"
                meta = {k: item[k] for k in META_KEYS if k in item}
                if dest.is_file() and check_replay(dest.read_bytes()) is None:
                    files[replay_id] = {**files.get(replay_id, {}), **meta, "file": dest.name,
                                        "bytes": dest.stat().st_size, "sha256": sha256_file(dest)}
                    counts["skipped"] += 1
                else:
                    dest.unlink(missing_ok=True)  # a bad leftover (e.g. copied in by hand) is fetched again
                    try:
                        problem, size, sha = client.fetch_file(replay_id, dest)
                    except ApiError as e:
                        problem = str(e)
                    if problem is not None:
                        failed[replay_id] = problem
                        files.pop(replay_id, None)
                        counts["failed"] += 1
                        bar.set_postfix(counts, refresh=False)
                        continue
                    files[replay_id] = {**meta, "file": dest.name, "bytes": size, "sha256": sha}
                    counts["downloaded"] += 1
                have += 1
                bar.update(1)
                bar.set_postfix(counts, refresh=False)
                if counts["downloaded"] and counts["downloaded"] % 25 == 0:
                    save()  # a killed run keeps most of its record
    finally:
        bar.close()
        manifest = save()
    short = "" if have >= cfg.count else f" (the listing ran out before --count {cfg.count})"
    print(f"download: {counts['downloaded']} downloaded, {counts['skipped']} already there, "
          f"{counts['failed']} failed{short} -> {out}")
    for replay_id, problem in list(failed.items())[:10]:
        print(f"  failed {replay_id}: {problem}")
    print(f"next: python -m training replays --out data/replays {out}")
    return manifest
