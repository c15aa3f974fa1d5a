"""Quick checks of the tests' own webhook receiver (receiver.py); no daemon needed."""
import threading
import time

import requests

from conftest import wait_until

from receiver import Request, verify

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _req(msg_id, ts, body, signature):
    return Request("/hook", "POST", {"webhook-id": msg_id, "webhook-timestamp": ts,
                                     "webhook-signature": signature}, body, time.time())


def test_verify_reference_vectors():
    body1 = b'{"test": 2432232314}'
    good1 = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    bad1 = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="
    assert verify(_req("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body1, good1), SECRET,
                  tolerance=None)
    assert not verify(_req("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body1, bad1), SECRET,
                      tolerance=None)
    # the vector's timestamp is years old: with the 5-minute check it must fail
    assert not verify(_req("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body1, good1), SECRET)
    # unknown versions and bogus entries are skipped; one valid v1 entry is enough
    mixed = f"v2,abc v1,bm90IGl0 {bad1} garbage {good1}"
    assert verify(_req("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body1, mixed), SECRET,
                  tolerance=None)

    body2 = (b'{"type":"contact.created","timestamp":"2022-11-03T20:26:10.344522Z",'
             b'"data":{"id":"1f81eb52-5198-4599-803e-771906343485"}}')
    good2 = "v1,ARw42xaAApl/nxRo+iPGYwSaMQaOwMo2eyH5JBRA+bQ="
    assert verify(_req("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "1674087231", body2, good2), SECRET,
                  tolerance=None)
    assert not verify(_req("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "1674087231", body2 + b" ", good2),
                      SECRET, tolerance=None)


def test_script_of_statuses_is_followed(receiver):
    rx = receiver()
    rx.behave("/hook", {"status": 500}, {"status": 429, "headers": {"Retry-After": "2"}},
              {"status": 410, "body": b"gone"})
    rx.default("/hook", status=200, body=b"ok")
    s = requests.Session()
    s.trust_env = False
    got = []
    for i in range(5):
        r = s.post(rx.url("/hook"), data=b'{"n": %d}' % i,
                   headers={"webhook-id": f"msg_{i}"}, timeout=5)
        got.append((r.status_code, r.headers.get("Retry-After"), r.content))
    assert got == [(500, None, b""), (429, "2", b""), (410, None, b"gone"),
                   (200, None, b"ok"), (200, None, b"ok")]
    reqs = rx.wait_for(5, "/hook", timeout=1)
    assert [r.msg_id for r in reqs] == [f"msg_{i}" for i in range(5)]
    assert reqs[2].json() == {"n": 2}
    assert rx.requests("/other") == []
    # another path still gets the initial default: 204 at once
    assert s.post(rx.url("/other"), data=b"x", timeout=5).status_code == 204


def test_max_concurrent_counts_two_slow_requests(receiver):
    rx = receiver()
    rx.default("/slow", status=204, delay=0.5)
    codes = []

    def post():
        codes.append(requests.post(rx.url("/slow"), data=b"{}", timeout=5).status_code)
    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert codes == [204, 204]
    assert rx.max_concurrent("/slow") == 2
    assert rx.max_concurrent() == 2
    # A handler counts itself out just after its answer is sent, which the
    # client may have read already.
    wait_until(lambda: rx.in_flight("/slow") == 0, 2, "the handlers to finish")
    rx.reset_counts()
    assert rx.max_concurrent("/slow") == 0
