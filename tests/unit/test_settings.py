"""Settings read from the environment, and a file's options from its object metadata."""

import re

import pytest

from martech.optimove_delivery import file_options
from martech.settings import Settings, SettingsError


def test_settings_read_and_convert_the_environment():
    settings = Settings.from_env({"MONETATE_BATCH_SIZE": "250", "UNKNOWN_COLUMNS": "drop", "HTTP_READ_TIMEOUT": "2.5"})
    assert (settings.monetate_batch_size, settings.unknown_columns, settings.http_read_timeout) == (250, "drop", 2.5)


def test_csv_nulls_are_a_comma_separated_set():
    assert Settings.from_env({"CSV_NULLS": "NULL, \\N,,"}).csv_null_texts == {"NULL", "\\N"}
    assert Settings.from_env({}).csv_null_texts == frozenset()


def test_malformed_settings_are_all_named_in_one_error():
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"MONETATE_BATCH_SIZE": "many", "UNKNOWN_COLUMNS": "keep", "HTTP_MAX_ATTEMPTS": "0"})
    message = str(raised.value)
    assert "MONETATE_BATCH_SIZE='many'" in message and "UNKNOWN_COLUMNS='keep'" in message
    assert "HTTP_MAX_ATTEMPTS='0'" in message


def test_a_time_zone_is_an_iana_name_and_another_is_refused_saying_what_it_wants():
    from zoneinfo import ZoneInfo

    assert Settings.from_env({"TIME_ZONE": "America/New_York"}).time_zone == ZoneInfo("America/New_York")
    assert Settings.from_env({"TIME_ZONE": ""}).time_zone is None
    for name in ("Eastern", "GMT+2", "../etc/passwd"):
        with pytest.raises(SettingsError, match=re.escape(f"TIME_ZONE={name!r} is not a valid IANA time zone name"
                                                          " (America/New_York, Europe/Paris, UTC)")):
            Settings.from_env({"TIME_ZONE": name})


def test_require_names_the_missing_environment_variables():
    with pytest.raises(SettingsError, match="MONETATE_SECRET_NAME, INBOX_BUCKET"):
        Settings.from_env({}).require("monetate_secret_name", "inbox_bucket")


@pytest.mark.parametrize("metadata, options", [
    ({}, (3600, False)),
    ({"ttl": "60"}, (60, False)),
    ({"merge": "True"}, (3600, True)),
    ({"merge": "no", "ttl": " 86400 "}, (86400, False)),
    ({"merge": ""}, (3600, False)),
    ({"mtime": "1700000000.5", "s3cmd-attrs": "uid:0"}, (3600, False)),  # what tools add is let be
    ({"ttl": "30m"}, (1800, False)), ({"ttl": "24h"}, (86400, False)), ({"ttl": "7d"}, (604800, False)),
    ({"ttl": "90 s"}, (90, False)), ({"ttl": "2D"}, (172800, False)),
])
def test_file_options_come_from_object_metadata_over_the_setting(metadata, options):
    assert file_options(metadata, 3600) == options


@pytest.mark.parametrize("metadata, named", [({"ttl": "1 day"}, "ttl='1 day'"), ({"ttl": "-5"}, "ttl='-5'"),
                                            ({"ttl": "1w"}, "ttl='1w' is not a whole number of seconds over 0 (or of"
                                                            " minutes, hours or days: 30m, 24h, 7d)"),
                                            ({"ttl": "0d"}, "ttl='0d'"), ({"ttl": "1.5h"}, "ttl='1.5h'"),
                                            ({"ttl": "0"}, "ttl='0'"), ({"merge": "sure"}, "merge='sure'"),
                                            ({"marge": "true"}, "marge='true' is no option (did you mean merge?)"),
                                            ({"ttl-seconds": "60"}, "(did you mean ttl?)")])
def test_file_options_that_mean_nothing_are_refused_by_name(metadata, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        file_options(metadata, None)
