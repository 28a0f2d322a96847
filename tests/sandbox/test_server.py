"""The shared sandbox machinery: routing, fault injection and the inspection API."""

import collections

import pytest
import requests

from sandbox.faults import Faults, FaultInjector
from sandbox.server import Response, SandboxApp, SandboxServer


class EchoApp(SandboxApp):
    vendor = "echo"

    def __init__(self, faults=None):
        super().__init__(faults)
        self.writes = 0
        self.vendor_routes.add("GET", "/things/{name}", lambda r: Response(200, {"name": r.params["name"]}))
        self.vendor_routes.add("POST", "/things", self._write)

    def _write(self, request):
        self.writes += 1
        return Response(201, {"writes": self.writes})

    def error_body(self, status, message):
        return {"vendor_error": message, "status": status}


@pytest.fixture
def echo():
    with SandboxServer(EchoApp()) as server:
        yield server


def set_faults(server, **changes):
    answer = requests.put(f"{server.url}/_sandbox/faults", json=changes)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_routes_match_path_parameters(echo):
    assert requests.get(f"{echo.url}/things/lamp").json() == {"name": "lamp"}


def test_unknown_path_is_404_and_wrong_method_405_in_the_vendor_shape(echo):
    missing = requests.get(f"{echo.url}/nothing")
    assert missing.status_code == 404 and missing.json()["status"] == 404
    assert requests.delete(f"{echo.url}/things/lamp").status_code == 405


def test_scripted_faults_answer_the_next_requests_in_order(echo):
    set_faults(echo, script=["500", "503", "429", "429-bare"])
    answers = [requests.get(f"{echo.url}/things/x") for _ in range(5)]
    assert [a.status_code for a in answers] == [500, 503, 429, 429, 200]
    assert answers[2].headers["Retry-After"] == "1"
    assert "Retry-After" not in answers[3].headers
    assert answers[0].json()["vendor_error"]  # the vendor's error shape, not a generic one


def test_a_scripted_pass_answers_that_request_normally(echo):
    set_faults(echo, script=["pass", "pass", "503"])
    assert [requests.get(f"{echo.url}/things/x").status_code for _ in range(4)] == [200, 200, 503, 200]


def test_retry_after_is_rounded_up_to_whole_seconds(echo):
    set_faults(echo, script=["429"], retry_after=2.5)
    assert requests.get(f"{echo.url}/things/x").headers["Retry-After"] == "3"


def test_injected_errors_do_not_reach_the_handler(echo):
    set_faults(echo, script=["500", "429"])
    requests.post(f"{echo.url}/things")
    requests.post(f"{echo.url}/things")
    assert requests.post(f"{echo.url}/things").json() == {"writes": 1}


def test_drop_closes_the_connection_without_processing(echo):
    set_faults(echo, script=["drop"])
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{echo.url}/things")
    assert echo.app.writes == 0


def test_drop_after_processes_then_closes_so_the_client_cannot_know(echo):
    set_faults(echo, script=["drop-after"])
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{echo.url}/things")
    assert echo.app.writes == 1


def test_rates_inject_roughly_the_asked_fractions():
    injector = FaultInjector(Faults(rate_500=0.2, rate_429=0.1, seed=3))
    drawn = collections.Counter(injector.draw() for _ in range(20_000))
    assert 0.18 < drawn["500"] / 20_000 < 0.22
    assert 0.08 < drawn["429"] / 20_000 < 0.12


def test_faults_can_be_limited_to_matching_paths(echo):
    set_faults(echo, rate_500=1.0, paths="^/things/broken")
    assert requests.get(f"{echo.url}/things/fine").status_code == 200
    assert requests.get(f"{echo.url}/things/broken").status_code == 500


def test_inspection_paths_never_get_faults(echo):
    set_faults(echo, rate_500=1.0)
    assert requests.get(f"{echo.url}/_sandbox/stats").status_code == 200


def test_bad_fault_settings_are_refused_with_the_reason(echo):
    answer = requests.put(f"{echo.url}/_sandbox/faults", json={"rate_500": 2})
    assert answer.status_code == 400 and "rate_500" in answer.text
    assert requests.put(f"{echo.url}/_sandbox/faults", json={"nonsense": 1}).status_code == 400


def test_latency_is_added_to_answers(echo):
    set_faults(echo, latency=0.3)
    answer = requests.get(f"{echo.url}/things/x")
    assert answer.elapsed.total_seconds() >= 0.3


def test_requests_and_stats_record_what_was_received(echo):
    set_faults(echo, script=["500"])
    requests.post(f"{echo.url}/things", json={"a": 1})
    requests.post(f"{echo.url}/things", json={"a": 2})
    log = requests.get(f"{echo.url}/_sandbox/requests").json()
    assert [(e["status"], e["body"]) for e in log] == [(500, {"a": 1}), (201, {"a": 2})]
    stats = requests.get(f"{echo.url}/_sandbox/stats").json()
    assert stats["by_status"] == {"500": 1, "201": 1}
    assert stats["by_route"] == {"POST /things": 1}


def test_reset_clears_log_counters_faults_and_clock(echo):
    set_faults(echo, rate_500=1.0)
    requests.get(f"{echo.url}/things/x")
    requests.post(f"{echo.url}/_sandbox/clock", json={"advance": 100})
    assert requests.post(f"{echo.url}/_sandbox/reset").status_code == 200
    assert requests.get(f"{echo.url}/_sandbox/requests").json() == []
    assert requests.get(f"{echo.url}/_sandbox/stats").json()["total"] == 0
    assert requests.get(f"{echo.url}/_sandbox/faults").json()["rate_500"] == 0
    assert requests.get(f"{echo.url}/_sandbox/clock").json()["offset"] == 0


def test_clock_moves_forward_only(echo):
    before = requests.get(f"{echo.url}/_sandbox/clock").json()["now"]
    after = requests.post(f"{echo.url}/_sandbox/clock", json={"advance": 3600}).json()["now"]
    assert after - before >= 3600
    assert requests.post(f"{echo.url}/_sandbox/clock", json={"advance": -1}).status_code == 400


def test_keep_alive_serves_many_requests_on_one_connection(echo):
    with requests.Session() as session:
        for _ in range(20):
            assert session.get(f"{echo.url}/things/x").status_code == 200
