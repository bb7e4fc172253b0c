#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz harnesses into tests/fuzz/corpus/<harness>/.

Valid and invalid inputs from docs/protocol.md, docs/aggregation.md and the Prometheus
remote-write specification, encoded by the small protobuf and snappy writers below
(no third-party modules, so that the corpus can be rebuilt anywhere). Rerunning it
rewrites the same files; libFuzzer adds what it finds to its own corpus directory,
never to this one (tests/fuzz/README.md).
"""

import json
import pathlib
import shutil
import struct

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE / "corpus"


# -- protobuf wire format ------------------------------------------------------------

def varint(n):
    n &= (1 << 64) - 1  # negative int64 values take ten bytes, as protobuf writes them
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(number, value):
    return varint(number << 3) + varint(value)


def field_bytes(number, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(number << 3 | 2) + varint(len(data)) + data


def field_double(number, value):
    return varint(number << 3 | 1) + struct.pack("<d", value)


# -- tether.v1 (libactors/wire/tether.proto) -----------------------------------------

COUNTER, GAUGE, HISTOGRAM = 1, 2, 3


def label(name, value):
    return field_bytes(1, name) + field_bytes(2, value)


def sample(name, labels, kind, value, timestamp_ms=0, mode=0):
    out = field_bytes(1, name)
    for n, v in labels:
        out += field_bytes(2, label(n, v))
    out += field_varint(3, kind) + field_double(4, value)
    if timestamp_ms:
        out += field_varint(5, timestamp_ms)
    if mode:
        out += field_varint(6, mode)
    return out


def write(sequence, samples):
    return field_varint(1, sequence) + b"".join(field_bytes(2, s) for s in samples)


def client_frame(kind, body):
    numbers = {"hello": 1, "write": 2, "subscribe": 3, "query": 4, "ping": 5}
    return field_bytes(numbers[kind], body)


def binary_frames():
    ts = 1700000001000
    docs_write = write(1, [
        sample("http_requests_total", [("method", "GET"), ("code", "200"), ("path", "")],
               COUNTER, 5, ts),
        sample("room_temp_celsius", [("room", "lab")], GAUGE, 21.5, ts),
    ])
    ruled = write(7, [
        sample("http_requests_total",
               [("env", "prod"), ("pod", "a-1"), ("instance", "i"), ("code", "500")],
               COUNTER, 100, ts, mode=1),
        sample("api_latency_seconds", [("route", "/v1/x"), ("pod", "b")], HISTOGRAM,
               0.25, ts),
        sample("room_temp_hall", [("room", "hall"), ("zone", "y")], GAUGE, -3, ts),
    ])
    return {
        "hello": client_frame("hello", field_bytes(1, "edge-7") + field_varint(3, 1)),
        "hello_token": client_frame("hello", field_bytes(1, "edge-7")
                                    + field_bytes(2, "secret")),
        "write_docs": client_frame("write", docs_write),
        "write_rules": client_frame("write", ruled),
        "write_nan": client_frame("write", write(2, [
            sample("room_temp_celsius", [("room", "lab")], GAUGE, float("nan"))])),
        "write_sequence_0": client_frame("write", write(0, [
            sample("x", [], GAUGE, 1)])),
        "write_duplicate_label": client_frame("write", write(3, [
            sample("x", [("a", "1"), ("a", "2")], GAUGE, 1)])),
        "write_bad_names": client_frame("write", write(4, [
            sample("9bad", [("__reserved", "v")], GAUGE, 1)])),
        "write_negative_counter": client_frame("write", write(5, [
            sample("c_total", [], COUNTER, -1, -5)])),
        "write_unknown_kind": client_frame("write", write(6, [
            sample("x", [], 9, 1)])),
        "write_empty": client_frame("write", field_varint(1, 8)),
        "query": client_frame("query", field_varint(1, 10) + field_bytes(
            2, 'http_requests_total{ method="GET", code="200" }')),
        "query_bad": client_frame("query", field_varint(1, 12) + field_bytes(
            2, "http_requests_total{code=200}")),
        "subscribe": client_frame("subscribe", field_varint(1, 20)
                                  + field_bytes(2, 'room_temp_celsius{room="lab"}')
                                  + field_bytes(2, 'up{job="a\\"b\\\\c\\n"}')),
        "ping": client_frame("ping", field_varint(1, 42)),
        "invalid_utf8": client_frame("query", field_bytes(2, b"up{a=\"\xc3\"}")),
        "truncated": client_frame("write", docs_write)[:-7],
        "unknown_field": field_varint(9, 1),
        "empty": b"",
    }


def json_frames():
    return {
        "hello": '{"hello":{"producerId":"edge-7","protocolVersion":1}}',
        "write_docs": '{"write":{"sequence":"1","samples":[{"name":"http_requests_total",'
                      '"labels":[{"name":"method","value":"GET"},{"name":"code","value":'
                      '"200"},{"name":"path","value":""}],"kind":"COUNTER","value":5,'
                      '"timestampMs":"1700000001000"},{"name":"room_temp_celsius",'
                      '"labels":[{"name":"room","value":"lab"}],"kind":"GAUGE",'
                      '"value":21.5,"timestamp_ms":1700000001000}]}}',
        "write_rules": '{"write":{"sequence":"9","samples":[{"name":"http_requests_total",'
                       '"labels":[{"name":"env","value":"prod"},{"name":"pod","value":'
                       '"p"}],"kind":"COUNTER","counterMode":"CUMULATIVE","value":1e3},'
                       '{"name":"x_latency_seconds","labels":[{"name":"route","value":'
                       '"/"}],"kind":"HISTOGRAM","value":0.5}]}}',
        "write_nan": '{"write":{"sequence":"2","samples":[{"name":"room_temp_celsius",'
                     '"labels":[{"name":"room","value":"lab"}],"kind":"GAUGE",'
                     '"value":"NaN"}]}}',
        "write_future": '{"write":{"sequence":"4","samples":[{"name":"room_temp_celsius",'
                        '"labels":[{"name":"room","value":"lab"}],"kind":"GAUGE",'
                        '"value":30,"timestampMs":"1800000123000"}]}}',
        "query": '{"query":{"requestId":"10","key":"http_requests_total{ method=\\"GET\\",'
                 ' code=\\"200\\" }"}}',
        "query_bad": '{"query":{"requestId":"12","key":"http_requests_total{code=200}"}}',
        "subscribe": '{"subscribe":{"requestId":"20","keys":["room_temp_celsius{room='
                     '\\"lab\\"}","http_requests_total{code=\\"500\\",method=\\"GET\\"}"]}}',
        "ping": '{"ping":{"nonce":"42"}}',
        "unknown_field": '{"hello":{"producerId":"a","colour":"red"}}',
        "escapes": '{"query":{"key":"up{a=\\"\\u00e9\\\\n\\ud83d\\ude00\\"}"}}',
        "bad_escape": '{"query":{"key":"\\x"}}',
        "truncated": '{"write":{"sequence":"1","samples":[{"name":',
        "not_json": "hello",
        "empty_object": "{}",
    }


# -- Prometheus remote write (libactors/prometheus/remote.proto) ---------------------

def series(labels, samples):
    out = b"".join(field_bytes(1, label(n, v)) for n, v in labels)
    for value, ts in samples:
        out += field_bytes(2, field_double(1, value) + field_varint(2, ts))
    return out


def metadata(kind, family, help_text="", unit=""):
    out = field_varint(1, kind) + field_bytes(2, family)
    if help_text:
        out += field_bytes(4, help_text)
    if unit:
        out += field_bytes(5, unit)
    return out


def write_request(timeseries, metas=()):
    return (b"".join(field_bytes(1, s) for s in timeseries)
            + b"".join(field_bytes(3, m) for m in metas))


def snappy_literal(data):
    """Snappy block format made of literals only: every decoder reads it."""
    out = bytearray(varint(len(data)))
    for i in range(0, len(data), 65536):
        chunk = data[i:i + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        else:
            out.append(61 << 2)
            out += struct.pack("<H", n)
        out += chunk
    return bytes(out)


def snappy_repeat(unit, times):
    """`unit` (at most 64 bytes) `times` times, as a literal then back-references."""
    out = bytearray(varint(len(unit) * times))
    out.append((len(unit) - 1) << 2)
    out += unit
    left = len(unit) * (times - 1)
    while left:
        n = min(left, 64 - 64 % len(unit))
        out.append(((n - 1) << 2) | 2)  # copy with a 2-byte offset
        out += struct.pack("<H", len(unit))
        left -= n
    return bytes(out)


STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def remote_bodies():
    ts = 1700000001000
    good = write_request([
        series([("__name__", "http_requests_total"), ("code", "200"), ("job", "api")],
               [(5, ts), (7, ts + 1000)]),
        series([("__name__", "room_temp_celsius"), ("room", "lab")], [(21.5, ts)]),
        series([("__name__", "http_request_duration_seconds_bucket"), ("le", "0.1")],
               [(3, ts)]),
        series([("__name__", "gone"), ("a", "")], [(STALE, ts)]),
    ], [metadata(1, "http_requests", "Requests."), metadata(2, "room_temp_celsius",
                                                            unit="celsius")])
    return {
        "docs": snappy_literal(good),
        "rules": snappy_literal(write_request([
            series([("__name__", "http_requests_total"), ("env", "prod"), ("pod", "x")],
                   [(1, ts)]),
            series([("__name__", "api_latency_seconds"), ("route", "/")], [(0.2, ts)]),
        ])),
        "metadata_only": snappy_literal(write_request([], [metadata(5, "rpc_seconds"),
                                                           metadata(7, "state")])),
        "no_name": snappy_literal(write_request([series([("job", "a")], [(1, ts)])])),
        "duplicate_label": snappy_literal(write_request([
            series([("__name__", "x"), ("a", "1"), ("a", "2")], [(1, ts)])])),
        "invalid_utf8": snappy_literal(write_request([
            series([("__name__", "x"), ("a", b"\xff\xfe")], [(1, ts)])])),
        "native_histogram": snappy_literal(write_request([
            series([("__name__", "h")], []) + field_bytes(4, b"")])),
        "empty_series": snappy_repeat(b"\x0a\x00", 512),
        "announces_too_much": varint(1 << 30) + b"\x00a",
        "corrupt_snappy": snappy_literal(good)[:-9],
        "not_snappy": b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        "not_protobuf": snappy_literal(b"\x0f\x0f\x0f\x0f"),
    }


# -- series keys and rules -----------------------------------------------------------

def keys():
    return {
        "plain": "up",
        "docs": 'http_requests_total{ method="GET", code="200" }',
        "canonical": 'http_requests_total{code="200",method="GET"}',
        "escapes": 'up{job="a\\"b\\\\c\\nd",instance="é😀"}',
        "empty_value": 'up{a="",b="x",}',
        "empty_braces": "up{}",
        "unquoted": "http_requests_total{code=200}",
        "duplicate": 'up{a="1",a="2"}',
        "reserved": 'up{__name__="x"}',
        "bad_escape": 'up{a="\\q"}',
        "invalid_utf8": b'up{a="\xc3"}',
        "unterminated": 'up{a="x',
        "many_labels": "m{" + ",".join(f'l{i}="{i}"' for i in range(40)) + "}",
        "colon_name": 'job:rate5m{x="1"}',
    }


def rules():
    docs = {
        "max_input_series_per_node": 1000000,
        "rules": [
            {"name": "http_requests_by_service", "match": "http_requests_total",
             "where": [{"label": "env", "op": "=", "value": "prod"}],
             "without": ["pod", "instance"], "window_ms": 10000},
            {"name": "latency_by_route", "match_glob": "*_latency_seconds",
             "by": ["route"], "output": "route_latency_seconds",
             "quantiles": [0.5, 0.99]},
        ],
    }
    every_field = {"rules": [{
        "name": "all", "match_regex": "room_temp_[a-z]+",
        "where": [{"label": "room", "op": "=~", "value": "lab|hall"},
                  {"label": "zone", "op": "!~", "value": "x.*"},
                  {"label": "env", "op": "!=", "value": "dev"}],
        "by": ["room"], "output": "room_temp", "window_ms": 60000,
        "quantiles": [0.1, 0.5], "outputs": ["last", "max", "quantiles"],
        "max_input_series": 1000}]}
    # Nested quantifiers that fail at the end: a backtracking matcher takes exponential
    # time on the probes' metric names and label values (libstdc++'s std::regex ran
    # past the 10 s timeout on "http_requests_total"); RE2 takes linear time.
    backtracking = {"rules": [
        {"name": "metric", "match_regex": "([a-z_]*)*!", "by": []},
        {"name": "label", "match": "http_requests_total",
         "where": [{"label": "pod", "op": "!~", "value": "(\\w|\\w|\\w)*!"},
                   {"label": "env", "op": "=~", "value": "(p|pr|ro|o|d|\\w)*"}]}]}
    return {
        "docs": json.dumps(docs, indent=2),
        "every_field": json.dumps(every_field),
        "backtracking_regex": json.dumps(backtracking),
        "empty": '{"rules": []}',
        "bad_regex": '{"rules": [{"name": "r", "match_regex": "a("}]}',
        "by_and_without": '{"rules": [{"name": "r", "match": "x", "by": [], '
                          '"without": []}]}',
        "duplicate_names": '{"rules": [{"name": "r", "match": "x"}, '
                           '{"name": "r", "match": "y"}]}',
        "bad_window": '{"rules": [{"name": "r", "match": "x", "window_ms": 5}]}',
        "unknown_field": '{"rules": [], "colour": 1}',
        "not_json": "rules:",
    }


def main():
    sets = {
        "frame_binary": binary_frames(),
        "frame_json": json_frames(),
        "remote_write": remote_bodies(),
        "series_key": keys(),
        "rules": rules(),
    }
    for harness, inputs in sets.items():
        d = CORPUS / harness
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        for name, data in inputs.items():
            if isinstance(data, str):
                data = data.encode()
            (d / name).write_bytes(data)
    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    print(f"make_corpus: {sum(map(len, sets.values()))} inputs, {total} bytes")


if __name__ == "__main__":
    main()
