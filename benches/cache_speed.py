#!/usr/bin/env python3
# What the upload cache costs, side by side in one run, against the loopback fake of the
# credential request and the OSS form POST (../shared/bench/fakeoss, which discards what it
# receives and counts it), each run a `dashscope` process of its own:
#
# 1. 10,000 and 100,000 files of 1 KB in one `oss upload --from-file` call, a fresh cache
#    (first run), cache on against --no-cache, alternating.
# 2. 1,000 files of 100 KB, the same, and the same with the release before (BEFORE) if given.
# 3. One 1 GiB file, alternating with curl doing the same two steps (the credential, then
#    `curl -F ... -F file=@big.bin`): medians and ratio, and the client's peak RSS.
# 4. One small upload (367 B), start to exit: --no-cache, and a cache miss (a fresh cache).
#
#   cargo build --release -p dashscope-cli
#   (cd ../shared/bench/fakeoss && CARGO_TARGET_DIR=/tmp/fakeoss-target cargo build --release)
#   python3 benches/cache_speed.py target/release/dashscope /tmp/fakeoss-target/release/fakeoss [BEFORE]
#
# Env: BENCH_DIR (default /tmp/dashscope-cache-bench: the files are made there once and
# kept), ROUNDS_SMALL (3), ROUNDS_100K (1), ROUNDS_K100 (7), ROUNDS_BIG (7), ROUNDS_ONE (20),
# SKIP (comma-separated parts to skip: 10k,100k,k100,big,one).
import os, resource, shutil, statistics, subprocess, sys, tempfile, time, json, urllib.request

B = os.path.abspath(sys.argv[1])
FAKE = sys.argv[2]
BEFORE = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 else None
D = os.environ.get("BENCH_DIR", "/tmp/dashscope-cache-bench")
SKIP = set(filter(None, os.environ.get("SKIP", "").split(",")))
R = lambda name, default: int(os.environ.get(name, default))
API, OSS = 18191, 18192
BASE = f"http://127.0.0.1:{API}"
KEY = "sk-bench"
MODEL = "qwen-vl-plus"
os.makedirs(D, exist_ok=True)


def files(name, n, size):
    """n files of `size` bytes, each of its own content, and the list naming them (made once)."""
    folder = os.path.join(D, name)
    listing = os.path.join(D, name + ".txt")
    if not os.path.exists(listing):
        os.makedirs(folder, exist_ok=True)
        paths = []
        block = bytes((i * 7) % 251 for i in range(size))
        for i in range(n):
            p = os.path.join(folder, f"f{i:06d}.png")
            tag = f"{i:012d}".encode()
            with open(p, "wb") as f:
                f.write(tag + block[len(tag):])
            paths.append(p)
        with open(listing + ".part", "w") as f:
            f.write("\n".join(paths) + "\n")
        os.rename(listing + ".part", listing)
    return listing


def stats():
    with urllib.request.urlopen(BASE + "/stats") as r:
        return json.load(r)


def run(binary, args, cache):
    """Seconds and peak RSS (KiB) of one dashscope process; a fresh cache dir when `cache`."""
    home = tempfile.mkdtemp(prefix="dscache-", dir=D)
    env = dict(os.environ, XDG_CACHE_HOME=home, DASHSCOPE_BASE_URL=BASE, DASHSCOPE_API_KEY=KEY)
    env.pop("RUST_LOG", None)
    flags = ["-q"] + ([] if cache else ["--no-cache"])
    before = stats()["uploads_ok"]
    # Peak RSS from GNU time's child: a child forked from this (large) Python process would
    # count the fork's pages in its own high-water mark (Linux keeps it across exec).
    rss_file = os.path.join(home, "rss")
    t = time.perf_counter()
    p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss_file, binary] + flags + args,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, _ = os.wait4(p.pid, 0)
    secs = time.perf_counter() - t
    with open(rss_file) as f:
        rss_kib = int(f.read().split()[-1])
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    shutil.rmtree(home, ignore_errors=True)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{binary} {args} failed: {err[-2000:]}")
    return secs, rss_kib, stats()["uploads_ok"] - before


def batch(label, listing, n, rounds, binaries):
    print(f"\n{label}: one `oss upload --from-file` call, first run, {rounds} round(s) alternating")
    times = {}
    for _ in range(rounds):
        for name, binary in binaries:
            for cache in (True, False):
                secs, _, sent = run(binary, ["oss", "upload", "-m", MODEL, "--from-file", listing], cache)
                assert sent == n, (name, cache, sent)
                times.setdefault((name, cache), []).append(secs)
    for name, _ in binaries:
        on, off = times[(name, True)], times[(name, False)]
        med_on, med_off = statistics.median(on), statistics.median(off)
        print(f"  {name}: cache on {med_on:.3f} s ({', '.join(f'{s:.3f}' for s in on)}), "
              f"--no-cache {med_off:.3f} s ({', '.join(f'{s:.3f}' for s in off)}), on/off {med_on / med_off:.2f}")


def curl_upload(path):
    t = time.perf_counter()
    out = subprocess.run(["curl", "-sS", "--fail", "-H", f"Authorization: Bearer {KEY}",
                          f"{BASE}/api/v1/uploads?action=getPolicy&model={MODEL}"],
                         capture_output=True, check=True).stdout
    d = json.loads(out)["data"]
    subprocess.run(["curl", "-sS", "--fail", "-o", "/dev/null",
                    "-F", f"OSSAccessKeyId={d['oss_access_key_id']}", "-F", f"Signature={d['signature']}",
                    "-F", f"policy={d['policy']}", "-F", f"key={d['upload_dir']}/curl-big.bin",
                    "-F", f"x-oss-object-acl={d['x_oss_object_acl']}",
                    "-F", f"x-oss-forbid-overwrite={d['x_oss_forbid_overwrite']}",
                    "-F", "success_action_status=200", "-F", f"file=@{path}", d["upload_host"]], check=True)
    return time.perf_counter() - t


def main():
    fake = subprocess.Popen([FAKE, str(API), str(OSS)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                stats()
                break
            except OSError:
                time.sleep(0.05)
        binaries = [("this build", B)] + ([("the release before", BEFORE)] if BEFORE else [])
        print(f"dashscope-oss upload cache benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores")
        if "10k" not in SKIP:
            batch("10,000 files of 1 KB", files("small-10k", 10_000, 1024), 10_000, R("ROUNDS_SMALL", 3), [binaries[0]])
        if "100k" not in SKIP:
            batch("100,000 files of 1 KB", files("small-100k", 100_000, 1024), 100_000, R("ROUNDS_100K", 1), [binaries[0]])
        if "k100" not in SKIP:
            batch("1,000 files of 100 KB", files("k100", 1000, 100_000), 1000, R("ROUNDS_K100", 7), binaries)
        if "big" not in SKIP:
            big = os.path.join(D, "big.bin")
            if not os.path.exists(big):
                block = bytes((i * 7) % 251 for i in range(1 << 20))
                with open(big + ".part", "wb") as f:
                    for _ in range(1024):
                        f.write(block)
                os.rename(big + ".part", big)
            rounds = R("ROUNDS_BIG", 7)
            print(f"\n1 GiB file, alternating with curl, {rounds} pairs (--no-cache: the transfer alone, as curl does it)")
            ours, theirs, rss = [], [], []
            for i in range(rounds):
                secs, hwm, sent = run(B, ["oss", "upload", "-m", MODEL, "-f", big], False)
                assert sent == 1
                c = curl_upload(big)
                print(f"  pair {i + 1}: dashscope {secs:.3f} s (peak RSS {hwm / 1024:.1f} MiB), curl {c:.3f} s")
                ours.append(secs), theirs.append(c), rss.append(hwm / 1024)
            a, b = statistics.median(ours), statistics.median(theirs)
            print(f"  median: dashscope {a:.3f} s, curl {b:.3f} s, ratio {a / b:.3f}; peak RSS median {statistics.median(rss):.1f} MiB, max {max(rss):.1f} MiB")
            secs, hwm, _ = run(B, ["oss", "upload", "-m", MODEL, "-f", big], True)
            print(f"  with the cache on (a miss: hashed as it is sent): {secs:.3f} s, peak RSS {hwm / 1024:.1f} MiB")
        if "one" not in SKIP:
            cat = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "cat.png")
            rounds = R("ROUNDS_ONE", 20)
            print(f"\none upload of a 367 B image, start to exit, median of {rounds}, alternating")
            res = {}
            for _ in range(rounds):
                for name, binary in binaries:
                    for cache in (False, True):
                        res.setdefault((name, cache), []).append(run(binary, ["oss", "upload", "-m", MODEL, "-f", cat], cache)[0])
            for name, _ in binaries:
                print(f"  {name}: --no-cache {statistics.median(res[(name, False)]) * 1000:.1f} ms, "
                      f"cache on (a miss, fresh cache) {statistics.median(res[(name, True)]) * 1000:.1f} ms")
    finally:
        fake.terminate()
        fake.wait()


main()
