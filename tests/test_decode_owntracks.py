"""OwnTracks payloads shaped as the booklet (owntracks.org/booklet/tech/json)
documents them, and as older Android apps sent them (numbers as strings)."""

from __future__ import annotations

import json

from tests.fixtures.decode_samples import decode


def _ot(topic: str, payload: dict[str, object]) -> dict[str, object]:
    return decode(topic, json.dumps(payload).encode())


def test_location_from_an_ios_phone() -> None:
    rec = _ot("owntracks/jane/iphone", {
        "_type": "location", "tid": "jn", "tst": 1702297398, "lat": 48.8584, "lon": 2.2945,
        "acc": 12, "alt": 41, "vac": 4, "vel": 0, "batt": 64, "bs": 1, "conn": "w",
        "t": "u", "m": 1, "created_at": 1702297399, "SSID": "home-net",
        "inregions": ["home"], "topic": "owntracks/jane/iphone"})
    assert rec["decoder"] == "owntracks" and "decode_error" not in rec
    assert rec["device"] == "jane/iphone" and rec["event"] == "location"
    assert rec["severity"] == "info"
    f = rec["fields"]
    assert f["lat"] == 48.8584 and f["batt"] == 64 and f["tid"] == "jn"
    assert f["user"] == "jane" and f["device_name"] == "iphone"
    assert f["tst_time"] == "2023-12-11T12:23:18Z"
    assert f["battery_status"] == "unplugged" and f["connectivity"] == "wifi"
    assert f["trigger"] == "manual" and f["inregions"] == ["home"]
    assert f["summary"] == "48.85840,2.29450 ±12m batt 64% (manual)"
    assert rec["payload"]["SSID"] == "home-net"  # the payload stays whole


def test_numbers_as_strings_and_milliseconds_from_old_android() -> None:
    rec = _ot("owntracks/bucks/nexus", {"_type": "location", "lat": "52.5163",
                                        "lon": "13.3777", "tst": "1398353271887",
                                        "acc": "20.0", "batt": "85", "t": "p"})
    f = rec["fields"]
    assert "decode_error" not in rec
    assert f["lat"] == 52.5163 and f["acc"] == 20.0 and f["batt"] == 85
    assert f["tst"] == 1398353271.887 and f["tst_time"] == "2014-04-24T15:27:51Z"
    assert f["trigger"] == "ping"


def test_transition_enter_and_leave_are_the_event() -> None:
    rec = _ot("owntracks/jane/iphone/event", {
        "_type": "transition", "wtst": 1700000000, "lat": 48.85, "lon": 2.29, "tst": 1702297398,
        "acc": 30, "tid": "jn", "event": "leave", "desc": "office", "t": "c", "rid": "a1b2"})
    assert rec["device"] == "jane/iphone" and rec["event"] == "leave"
    assert rec["fields"]["summary"] == "leave office"
    bad = _ot("owntracks/jane/iphone/event", {"_type": "transition", "lat": 1, "lon": 1,
                                               "tst": 1, "event": "wander"})
    assert bad["decode_error"].startswith("owntracks: transition")


def test_lwt_card_cmd_steps_waypoints_encrypted() -> None:
    lwt = _ot("owntracks/jane/iphone", {"_type": "lwt", "tst": 1702297000})
    assert lwt["event"] == "lwt" and lwt["severity"] == "notice"
    card = _ot("owntracks/jane/iphone/info", {"_type": "card", "name": "Jane Doe",
                                              "face": "iVBORw0KGgo=", "tid": "jn"})
    assert card["fields"]["summary"] == "card Jane Doe" and "face" not in card["fields"]
    cmd = _ot("owntracks/jane/iphone/cmd", {"_type": "cmd", "action": "reportLocation"})
    assert cmd["event"] == "cmd" and cmd["fields"]["action"] == "reportLocation"
    steps = _ot("owntracks/jane/iphone/step", {"_type": "steps", "tst": 1702297398,
                                               "steps": 4211, "from": 1702252800,
                                               "to": 1702297398})
    assert steps["fields"]["summary"] == "4211 steps"
    wps = _ot("owntracks/jane/iphone/waypoints", {"_type": "waypoints", "waypoints": [
        {"_type": "waypoint", "desc": "home", "lat": 48.8, "lon": 2.3, "rad": 50,
         "tst": 1600000000},
        {"_type": "waypoint", "desc": "office", "lat": 48.9, "lon": 2.2, "rad": 80,
         "tst": 1600000001}]})
    assert wps["fields"]["count"] == 2
    assert wps["fields"]["summary"] == "2 waypoints: home, office"
    wp = _ot("owntracks/jane/iphone/waypoint", {"_type": "waypoint", "desc": "gym",
                                                "lat": 48.7, "lon": 2.1, "rad": 40,
                                                "tst": 1600000002})
    assert wp["fields"]["summary"] == "waypoint gym r=40m"
    enc = _ot("owntracks/jane/iphone", {"_type": "encrypted", "data": "c2VjcmV0Ym94ZWQ="})
    assert enc["event"] == "encrypted" and enc["fields"]["encrypted_bytes"] == 12


def test_unknown_types_are_kept_and_bad_shapes_reported() -> None:
    status = _ot("owntracks/jane/iphone/status", {"_type": "status", "iOS": {"version": "17"}})
    assert status["decoder"] == "owntracks" and status["event"] == "status"
    nocoords = _ot("owntracks/jane/iphone", {"_type": "location", "lat": "north", "lon": 2,
                                             "tst": 1})
    assert nocoords["decode_error"] == "owntracks: \"lat\" 'north' is not a coordinate"
    assert nocoords["payload"]["lat"] == "north"  # kept whole
    text = decode("owntracks/jane/iphone", b"C2,561ebac3,v,50123456")
    assert text["decode_error"] == "owntracks: payload is not JSON"
    assert text["payload"] == "C2,561ebac3,v,50123456"


def test_recognised_by_content_on_another_base_topic() -> None:
    # the apps' base topic is configurable (owntracks/%u/%d is the default)
    rec = _ot("phones/jane", {"_type": "location", "lat": 1.5, "lon": 2.5, "tst": 1702297398,
                              "tid": "jn"})
    assert rec["decoder"] == "owntracks" and rec["device"] == "jn"
    plain = _ot("app/state", {"_type": "location", "name": "kitchen"})
    assert plain["decoder"] == "json"
