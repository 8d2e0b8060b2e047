#!/usr/bin/env python3
"""OpenAI's Python SDK, unmodified, against `dashscope gateway --emulator --files DIR`.

It asks about a local image (by path and as a file:// URI) and a 12 MiB data: image, and
transcribes a local WAV with `audio.transcriptions.create`; then it reads the built-in
emulator's counters to check that it saw the uploads and the OSS header.

Not run by CI (it needs the `openai` package from PyPI); `cli/tests/gateway.rs` sends the
same requests as raw HTTP on every run. To run it:

    python3 -m venv /tmp/pyvenv-gw && /tmp/pyvenv-gw/bin/pip install -q openai
    cargo build -p dashscope-cli
    /tmp/pyvenv-gw/bin/python cli/tests/python/openai_gateway.py [path/to/dashscope]

Exit code 0 when every check passed, 1 otherwise (each check is printed).
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.request

import openai

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures")


def start(binary, files):
    proc = subprocess.Popen(
        [binary, "--emulator", "gateway", "--files", files],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("DASHSCOPE_")},
    )
    first = proc.stdout.readline().strip()
    if not first.startswith("OPENAI_BASE_URL="):
        proc.kill()
        sys.exit(f"the gateway did not start: {first!r} {proc.stderr.read()}")
    emulator = None
    # The built-in emulator names itself on stderr before the URL line.
    while emulator is None:
        line = proc.stderr.readline()
        if not line:
            break
        if "built-in emulator at " in line:
            emulator = line.split("built-in emulator at ")[1].split()[0]
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    return proc, first.split("=", 1)[1], emulator


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        HERE, "..", "..", "..", "target", "debug", "dashscope")
    files = tempfile.mkdtemp(prefix="gw-py-")
    cat = os.path.join(files, "cat.png")
    wav = os.path.join(files, "hello.wav")
    shutil.copy(os.path.join(FIXTURES, "cat.png"), cat)
    shutil.copy(os.path.join(FIXTURES, "hello.wav"), wav)
    proc, base_url, emulator = start(binary, files)
    client = openai.OpenAI(base_url=base_url, api_key="unused-with-the-emulator", max_retries=0)
    results = []

    def check(name, fn):
        try:
            detail = fn()
            results.append((name, True, detail))
        except Exception as e:  # noqa: BLE001 - every failure is reported, none hidden
            results.append((name, False, f"{type(e).__name__}: {e}"))

    def ask(url):
        answer = client.chat.completions.create(
            model="qwen-vl-plus",
            messages=[{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": url}},
                {"type": "text", "text": "What is in this picture?"},
            ]}],
        )
        text = answer.choices[0].message.content
        assert "image/png" in text and "oss://" in text, text
        return text[:100] + "…"

    png = open(cat, "rb").read()
    big = png + b"\0" * (12 * 1024 * 1024 - len(png))
    data_uri = "data:image/png;base64," + base64.b64encode(big).decode()
    check("chat, a local path", lambda: ask(cat))
    check("chat, a file:// URI", lambda: ask("file://" + cat))
    check("chat, a 12 MiB data: URI", lambda: ask(data_uri))

    def stream():
        chunks = client.chat.completions.create(
            model="qwen-vl-plus", stream=True,
            messages=[{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": cat}},
                {"type": "text", "text": "And now?"}]}])
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert "image/png" in text, text
        return text[:60] + "…"

    check("chat, streamed", stream)

    def transcribe(fmt):
        def run():
            with open(wav, "rb") as f:
                t = client.audio.transcriptions.create(
                    model="paraformer-v2", file=f, response_format=fmt)
            text = t if isinstance(t, str) else t.text
            assert "audio/wav" in text, text
            if fmt == "verbose_json":
                assert t.segments and t.segments[0].end == 1.0, t
            return text[:80] + "…"
        return run

    for fmt in ["json", "text", "verbose_json"]:
        check(f"audio.transcriptions.create, {fmt}", transcribe(fmt))

    def refused():
        try:
            ask("/etc/passwd")
        except openai.BadRequestError as e:
            assert e.code == "invalid_file", e
            return str(e)[:100]
        raise AssertionError("a file outside --files was read")

    check("a path outside --files is refused", refused)

    def counters():
        stats = json.load(urllib.request.urlopen(emulator + "/emulator/v1/stats"))
        seen = {k: stats[k] for k in ["uploads_ok", "chat_requests",
                                      "chat_requests_with_resolve_header", "tasks_submitted"]}
        assert stats["uploads_ok"] >= 2, seen
        assert stats["chat_requests_with_resolve_header"] >= 3, seen
        assert stats["tasks_submitted"] == 3, seen
        return seen

    check("the emulator saw the uploads and the header", counters)
    proc.terminate()
    proc.wait()
    shutil.rmtree(files, ignore_errors=True)
    print(f"openai {openai.__version__}, {base_url}")
    for name, ok, detail in results:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    sys.exit(0 if all(ok for _, ok, _ in results) else 1)


if __name__ == "__main__":
    main()
