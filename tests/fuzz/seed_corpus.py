#!/usr/bin/env python3
"""Seed tests/fuzz/corpus/<target>/ from the string literals of the C tests.

Each test file is run through the preprocessor (so macros such as P_OK
expand), adjacent string literals are joined and decoded, and each literal is
filed by what it looks like: a config (has "providers"), an SSE stream (has
"data:"), a request (has "messages"), a response (has "choices" or "error").
Requests also seed fuzz_chat (with a leading 0 or 1 byte: chat or stream).
Files are named by content hash and kept under 4 KiB; rerunning only adds.

    tests/fuzz/seed_corpus.py            # from the repository root
"""
import ast
import hashlib
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
SOURCES = ["tests/test_config.c", "tests/test_request.c", "tests/test_openai.c",
           "tests/test_sse.c", "tests/test_json.c", "tests/test_gateway.c",
           "tests/test_oom.c", "tests/test_threads.c"]
MAX_BYTES = 4096
LITERAL = re.compile(r'"(?:[^"\\\n]|\\.)*"')
RUN = re.compile(r'(?:"(?:[^"\\\n]|\\.)*"\s*)+')


def decode(run):
    out = b""
    for lit in LITERAL.findall(run):
        # C escapes are a superset of what these tests use; Python's bytes
        # literal syntax decodes the same escapes (\n \r \t \" \\ \xNN \NNN)
        out += ast.literal_eval("b" + lit)
    return out


def literals(path):
    pre = subprocess.run(["cc", "-E", "-P", "-I" + ROOT + "/lib", "-I" + ROOT + "/include",
                          "-D_POSIX_C_SOURCE=200809L", path],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    for run in RUN.findall(pre):
        try:
            yield decode(run)
        except (ValueError, SyntaxError):
            continue


def classify(b):
    if b"\"providers\"" in b:
        return ["fuzz_config"]
    if b"data:" in b:
        return ["fuzz_stream"]
    if b"\"messages\"" in b:
        return ["fuzz_request", "fuzz_chat"]
    if b"\"choices\"" in b or b"\"error\"" in b:
        return ["fuzz_response"]
    return []


def save(target, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    path = os.path.join(d, name)
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)
        return 1
    return 0


def main():
    added = 0
    for src in SOURCES:
        for b in literals(os.path.join(ROOT, src)):
            if not b or len(b) > MAX_BYTES:
                continue
            for target in classify(b):
                if target == "fuzz_chat":
                    added += save(target, b"\x00" + b) + save(target, b"\x01" + b)
                else:
                    added += save(target, b)
    print("added", added, "seed files under", os.path.relpath(CORPUS, ROOT))


if __name__ == "__main__":
    sys.exit(main())
