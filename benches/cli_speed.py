#!/usr/bin/env python3
# Start-up and one-file upload times of the dashscope binary, against its own emulator.
# `cargo build --release -p dashscope-cli && python3 benches/cli_speed.py [BINARY]`
import subprocess, time, statistics, os, sys
B = sys.argv[1] if len(sys.argv) > 1 else "target/release/dashscope"
def run(args, n):
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run([B] + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1000
# emulator in the background
p = subprocess.Popen([B, "emulator", "--model", "qwen-vl-plus=2048"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
base = p.stdout.readline().strip().split("=", 1)[1]
os.makedirs("/tmp/clibench", exist_ok=True)
with open("/tmp/clibench/f100.bin", "wb") as f:
    f.write(os.urandom(1024 * 1024) * 100)
# --no-cache: every run uploads (a cache hit would measure a stat, not an upload).
env_args = ["--base-url", base, "--api-key", "sk-emulator-default", "-q", "--no-cache"]
print(f"--help: median {run(['--help'], 50):.1f} ms over 50 runs")
print(f"--version: median {run(['--version'], 50):.1f} ms over 50 runs")
print(f"oss.upload of a 367 B image: median {run(['oss.upload', '-m', 'qwen-vl-plus', '-f', 'tests/fixtures/cat.png'] + env_args, 20):.1f} ms over 20 runs")
print(f"oss.upload of a 100 MiB file: median {run(['oss.upload', '-m', 'qwen-vl-plus', '-f', '/tmp/clibench/f100.bin'] + env_args, 7):.1f} ms over 7 runs")
p.terminate(); p.wait()
