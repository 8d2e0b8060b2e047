"""The official clients, unmodified, against a running `dashscope emulator` (issue #19).

Run by hand (CI replays the same requests as raw HTTP in emulator/tests/conformance_*.rs):

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -q dashscope openai pydantic
    cargo run --release -p dashscope-cli -- emulator &      # prints DASHSCOPE_BASE_URL=…
    /tmp/venv/bin/python emulator/tests/python/official_sdks.py http://127.0.0.1:PORT

Exits non-zero when any check fails; prints one line per check.
"""

import asyncio
import sys

import dashscope
import openai
import pydantic
from dashscope import Generation, MultiModalConversation
from dashscope.aigc.image_synthesis import AioImageSynthesis
from dashscope.v2 import Client

KEY = "sk-emulator-default"
failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))
    if not ok:
        failures.append(name)


def run(name, f):
    try:
        f()
    except Exception as e:  # a check that raises is a failed check
        check(name, False, f"{type(e).__name__}: {e}")


def main(base):
    dashscope.base_http_api_url = base + "/api/v1"
    dashscope.api_key = KEY

    def generation_message():
        r = Generation.call(model="qwen-plus", result_format="message",
                            messages=[{"role": "user", "content": "hello"}])
        check("Generation.call message", r.status_code == 200
              and "hello" in r.output.choices[0].message.content, r)

    def generation_prompt():
        r = Generation.call(model="qwen-plus", prompt="hello")
        check("Generation.call prompt (text format)", r.status_code == 200
              and "hello" in r.output.text, r)

    def generation_stream():
        chunks = list(Generation.call(model="qwen-plus", prompt="hello", stream=True,
                                      incremental_output=True))
        text = "".join(c.output.text or "" for c in chunks)
        check("Generation.call stream", len(chunks) > 1 and "hello" in text
              and chunks[-1].output.finish_reason == "stop", chunks[-1])

    def image_synthesis():
        r = asyncio.run(AioImageSynthesis.call(model="wanx2.1-t2i-turbo", prompt="a cat"))
        check("AioImageSynthesis.call", r.status_code == 200
              and r.output.task_status == "SUCCEEDED" and r.output.results, r)

    def image_hw():
        r = MultiModalConversation.call(
            model="qwen-vl-plus", vl_enable_image_hw_output=True,
            messages=[{"role": "user", "content": [
                {"image": "tests/fixtures/cat.png"}, {"text": "What is this?"}]}])
        content = r.output.choices[0].message.content
        check("MultiModalConversation image_hw (local file uploaded)", r.status_code == 200
              and any("image_hw" in part for part in content), r)

    def v2_chat():
        client = Client(api_key=KEY, base_url=base + "/api/v1")
        r = client.chat.completions.create(
            model="qwen-plus", messages=[{"role": "user", "content": "hello"}])
        check("v2 Client text-only chat", "hello" in r.choices[0].message.content, r)

    def openai_parse():
        class Answer(pydantic.BaseModel):
            city: str
            population: int

        client = openai.OpenAI(api_key=KEY, base_url=base + "/compatible-mode/v1")
        r = client.chat.completions.parse(
            model="qwen-plus", response_format=Answer,
            messages=[{"role": "user", "content": "The largest city?"}])
        parsed = r.choices[0].message.parsed
        check("OpenAI chat.completions.parse (Pydantic)", isinstance(parsed, Answer), r)
        models = [m.id for m in client.models.list()]
        check("OpenAI models.list", "qwen-vl-plus" in models, models)

    for name, f in [("Generation.call message", generation_message),
                    ("Generation.call prompt", generation_prompt),
                    ("Generation.call stream", generation_stream),
                    ("AioImageSynthesis.call", image_synthesis),
                    ("MultiModalConversation image_hw", image_hw),
                    ("v2 Client chat", v2_chat),
                    ("OpenAI parse", openai_parse)]:
        run(name, f)
    print(f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1].rstrip("/")))
