"""The production configuration: a YAML file, the environment over it (or instead of it), secrets from
variables, every problem named with its place and no secret ever echoed."""
from __future__ import annotations

import json
import re
from datetime import timedelta
from http.client import HTTPException
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from proxy.settings import EXAMPLE, ConfigError, load_settings
from service_kit.http import Route, tunnel_problem

FORM = "1bc5f9f0-2607-49eb-94f0-6af955bbd79a"


def write(tmp_path: Path, data, name="eprox.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if name.endswith(".yaml") else json.dumps(data))
    return path


def minimal(**extra) -> dict:
    data = {"eprom": {"url": "https://eprom.example", "apiKey": "eprom-secret"}, "database": "db/eprox.sqlite3",
            "registries": [{"name": "reg-a", "apiKey": "a-secret", "callbackBaseUrl": "https://a.example/cb",
                            "allowedForms": [FORM.upper()]},
                           {"name": "reg-b", "apiKeyEnv": "REG_B_KEY", "callbackBaseUrl": "http://b.example"}]}
    data.update(extra)
    return data


def test_a_file_with_defaults_and_a_key_from_the_environment(tmp_path):
    config = load_settings(write(tmp_path, minimal()), env={"REG_B_KEY": "b-secret"})
    assert config.eprom_url == "https://eprom.example" and config.eprom_api_key == "eprom-secret"
    assert config.database_path == tmp_path / "db" / "eprox.sqlite3", "relative to the file"
    assert config.lifetime == timedelta(days=365) and config.delivery_timeout == 15 and config.lane_width == 4
    a, b = config.registries
    assert (a.name, a.api_key, a.api_base_url, a.allowed_forms) == ("reg-a", "a-secret", "https://a.example/cb",
                                                                   frozenset({FORM}))
    assert (b.api_key, b.allowed_forms) == ("b-secret", None)


def test_the_environment_overrides_the_file(tmp_path):
    env = {"REG_B_KEY": "b", "EPROX_DATABASE": "/var/lib/eprox/x.sqlite3", "EPROX_EPROM_URL": "https://other",
           "EPROX_EPROM_API_KEY": "from-env", "EPROX_LIFETIME_DAYS": "30", "EPROX_LOG_LEVEL": "debug",
           "EPROX_DELIVERY_TIMEOUT": "5", "EPROX_DELIVERY_PER_REGISTRY": "2", "EPROX_SQLITE_SYNCHRONOUS": "full"}
    config = load_settings(write(tmp_path, minimal()), env=env)
    assert config.database_path == Path("/var/lib/eprox/x.sqlite3")
    assert (config.eprom_url, config.eprom_api_key) == ("https://other", "from-env")
    assert config.lifetime == timedelta(days=30) and config.log_level == "DEBUG"
    assert (config.delivery_timeout, config.lane_width, config.synchronous) == (5.0, 2, "FULL")


def test_environment_only_through_eprox_config_or_without_a_file(tmp_path):
    path = write(tmp_path, minimal(), name="eprox.json")
    assert load_settings(env={"EPROX_CONFIG": str(path), "REG_B_KEY": "b"}).registries[1].api_key == "b"
    env = {"EPROX_DATABASE": str(tmp_path / "e.sqlite3"), "EPROX_EPROM_URL": "https://e", "EPROX_EPROM_API_KEY": "k",
           "EPROX_REGISTRIES": json.dumps([{"name": "r", "apiKey": "rk", "callbackBaseUrl": "https://r"}])}
    config = load_settings(env=env)
    assert [r.name for r in config.registries] == ["r"] and config.eprom_api_key == "k"


def test_every_problem_is_named_and_no_secret_is_echoed(tmp_path):
    data = minimal(lifetimeDays=0, delivery={"perRegistry": 0}, colour="blue")
    data["registries"][0]["callbackBaseUrl"] = "ftp://a-secret-host"
    data["registries"][0]["apiKey"] = 12345678901
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, data), env={})
    text = str(caught.value)
    assert "lifetimeDays: must be greater than 0" in text
    assert "delivery.perRegistry: must be at least 1" in text
    assert "registries.0.callbackBaseUrl: is not an http:// or https:// URL" in text
    assert "registries.0.apiKey: must be of type string" in text
    assert "'colour' is not a setting" in text
    assert "a-secret" not in text and "12345678901" not in text


@pytest.mark.parametrize("days", [36501, 1e8])
def test_a_lifetime_beyond_a_century_is_refused_where_dates_would_overflow(tmp_path, days):
    """Before, 10^8 days was taken, and every order was then a 500 (now minus the lifetime is no date)."""
    with pytest.raises(ConfigError, match="lifetimeDays: must be at most 36500"):
        load_settings(write(tmp_path, minimal(lifetimeDays=days)), env={})
    assert load_settings(write(tmp_path, minimal(lifetimeDays=36500)), env={"REG_B_KEY": "b"}).lifetime.days == 36500


@pytest.mark.parametrize("setting", [{"lifetimeDays": float("nan")}, {"lifetimeDays": float("inf")},
                                     {"delivery": {"timeoutSeconds": float("nan")}},
                                     {"delivery": {"leaseSeconds": float("nan")}},
                                     {"delivery": {"leaseSeconds": float("inf")}}], ids=str)
def test_yaml_nan_and_inf_are_not_numbers(tmp_path, setting):
    """YAML has .nan and .inf; NaN passes every bound a JSON Schema sets, so a NaN timeout or lease was taken
    (and a NaN lifetime was a crash: "cannot convert float NaN to integer")."""
    path = tmp_path / "eprox.yaml"
    path.write_text(yaml.safe_dump(minimal(**setting)))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={"REG_B_KEY": "b"})
    (name,) = [f"{k}.{next(iter(v))}" if isinstance(v, dict) else k for k, v in setting.items()]
    assert f"{name}: must be of type number" in str(caught.value)


def test_a_lease_must_outlast_a_delivery_and_the_message_uses_the_settings_names(tmp_path):
    with pytest.raises(ConfigError, match=r"delivery.leaseSeconds: must be longer than a delivery's timeout "
                                          r"\(delivery.timeoutSeconds, 60 s\)"):
        load_settings(write(tmp_path, minimal(delivery={"leaseSeconds": 10, "timeoutSeconds": 60})),
                      env={"REG_B_KEY": "b"})


def test_keys_must_differ_and_variables_must_be_set(tmp_path):
    with pytest.raises(ConfigError, match="REG_B_KEY, which is not set"):
        load_settings(write(tmp_path, minimal()), env={})
    same = minimal()
    same["registries"][1] = {"name": "reg-b", "apiKey": "a-secret", "callbackBaseUrl": "http://b"}
    with pytest.raises(ConfigError, match="its own apiKey"):
        load_settings(write(tmp_path, same), env={})
    both = minimal()
    both["eprom"]["apiKeyEnv"] = "X"
    with pytest.raises(ConfigError, match="not both"):
        load_settings(write(tmp_path, both), env={"REG_B_KEY": "b", "X": "x"})
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(tmp_path / "missing.yaml", env={})
    (tmp_path / "bad.yaml").write_text("eprom: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(tmp_path / "bad.yaml", env={})
    with pytest.raises(ConfigError, match="EPROX_LIFETIME_DAYS: must be a number"):
        load_settings(write(tmp_path, minimal()), env={"REG_B_KEY": "b", "EPROX_LIFETIME_DAYS": "a year"})


def test_the_example_configuration_loads(tmp_path):
    path = tmp_path / "example.yaml"
    path.write_text(EXAMPLE)
    config = load_settings(path, env={"EPROX_EPROM_API_KEY": "e", "REGISTRY_A_KEY": "a", "REGISTRY_B_KEY": "b"})
    assert [r.name for r in config.registries] == ["registry-a", "registry-b"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "http://host:abc", "http://host:0", "http://[::1",
                                 "http://:80", "https://registry.example/skøjema", "http://registry.example/a\x7fb"])
@pytest.mark.parametrize("place", ["eprom.url", "registries.0.callbackBaseUrl"])
def test_a_url_the_http_client_cannot_call_is_refused(tmp_path, url, place):
    """They passed the pattern, and then every call to them failed (or was a 500 with a traceback)."""
    data = minimal()
    if place == "eprom.url":
        data["eprom"]["url"] = url
    else:
        data["registries"][0]["callbackBaseUrl"] = url
    with pytest.raises(ConfigError, match=rf"eprox.yaml: {place}: (has|holds) ") as caught:
        load_settings(write(tmp_path, data), env={"REG_B_KEY": "b"})
    assert len(caught.value.problems) == 1
    ok = minimal()
    ok["registries"][0]["callbackBaseUrl"] = "http://[::1]:8080/sk%C3%B8jema"
    assert load_settings(write(tmp_path, ok), env={"REG_B_KEY": "b"}).registries[0].api_base_url.endswith("%C3%B8jema")


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "https_proxy", "ALL_PROXY"])
def test_an_unusable_http_proxy_in_the_environment_is_named_without_its_url(tmp_path, variable):
    env = {"REG_B_KEY": "b", variable: "http://user:proxy-password@proxy:abc"}
    with pytest.raises(ConfigError, match=f"{variable} \\(the HTTP proxy for outbound calls\\): has a port") as caught:
        load_settings(write(tmp_path, minimal()), env=env)
    assert "proxy-password" not in str(caught.value)
    assert load_settings(write(tmp_path, minimal()), env={**env, variable: "proxy.example:3128"}).registries
    # ALL_PROXY is never used when both schemes have their own
    env = {"REG_B_KEY": "b", "HTTP_PROXY": "http://p:1", "HTTPS_PROXY": "http://p:2", "ALL_PROXY": "socks5://p"}
    assert load_settings(write(tmp_path, minimal()), env=env).registries


@pytest.mark.parametrize("key", ["a-key\n", "a key", " a-key", "a-key\x00", "a-key\u200b", "ключ", "nøkkel"])
def test_a_key_that_cannot_travel_in_a_header_is_refused_and_not_shown(tmp_path, key):
    """Before, a key with a secret file's trailing newline (or non-Latin-1 text) was taken, and every order was
    then a 500 whose traceback printed ePROX's key at ePROM."""
    literal = minimal()
    literal["registries"][0]["apiKey"] = key
    literal_path, path = write(tmp_path, literal, name="literal.yaml"), write(tmp_path, minimal())
    cases = [(literal_path, {"REG_B_KEY": "b"}, f"{literal_path}: registries.0 (reg-a): apiKey: "),
             (path, {"REG_B_KEY": key}, f"{path}: registries.1 (reg-b): apiKey (from REG_B_KEY): "),
             (path, {"REG_B_KEY": "b", "EPROX_EPROM_API_KEY": key}, "EPROX_EPROM_API_KEY: ")]  # not the file's
    for path, env, where in cases:
        with pytest.raises(ConfigError) as caught:
            load_settings(path, env=env)
        (problem,) = caught.value.problems
        assert problem.startswith(f"{where}contain"), problem
        assert key.strip() not in problem and "a-key" not in problem


def test_a_setting_given_twice_is_refused_not_the_last_one_taken(tmp_path):
    path = tmp_path / "eprox.yaml"
    text = yaml.safe_dump(minimal())
    path.write_text(text + "database: other.sqlite3\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={"REG_B_KEY": "b"})
    line = len(text.splitlines()) + 1
    assert caught.value.problems == [f"{path}: line {line}: `database` is given twice (only one may be)"]
    json_path = tmp_path / "eprox.json"
    json_path.write_text(json.dumps(minimal())[:-1] + ', "database": "other.sqlite3"}')
    with pytest.raises(ConfigError, match="eprox.json: `database` is given twice"):
        load_settings(json_path, env={"REG_B_KEY": "b"})
    registries = '[{"name": "r", "apiKey": "k", "callbackBaseUrl": "https://r", "apiKey": "k2"}]'
    with pytest.raises(ConfigError, match="EPROX_REGISTRIES: line 1: `apiKey` is given twice"):
        load_settings(write(tmp_path, minimal()), env={"REG_B_KEY": "b", "EPROX_REGISTRIES": registries})


def test_a_yaml_error_names_the_line_but_never_quotes_it(tmp_path):
    """The line may hold a key: PyYAML's own message quotes it."""
    path = tmp_path / "eprox.yaml"
    path.write_text('eprom:\n  apiKey: "the-secret-key\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}: not valid YAML: line ") and "the-secret-key" not in problem


def test_an_empty_allowed_forms_list_and_an_undocumented_synchronous_mode_are_refused(tmp_path):
    data = minimal(sqliteSynchronous="EXTRA")
    data["registries"][0]["allowedForms"] = []
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, data), env={"REG_B_KEY": "b"})
    text = str(caught.value)
    assert "registries.0.allowedForms: empty; leave it out to allow every form" in text
    assert "sqliteSynchronous: must be one of NORMAL, FULL" in text


def test_an_unquoted_date_is_text_and_a_tag_json_lacks_is_refused_by_its_line(tmp_path):
    """`database: 2024-01-01` (or a key written like a date) was a date object: check-config, serve and
    gunicorn ended in a traceback ("Object of type date is not JSON serializable")."""
    path = tmp_path / "eprox.yaml"
    text = yaml.safe_dump(minimal()).replace("db/eprox.sqlite3", "2024-01-01").replace("eprom-secret", "2024-01-02")
    path.write_text(text)
    config = load_settings(path, env={"REG_B_KEY": "b"})
    assert (config.database_path, config.eprom_api_key) == (tmp_path / "2024-01-01", "2024-01-02")
    path.write_text(text.replace("2024-01-02", "!!binary c2VjcmV0LWtleQ=="))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={"REG_B_KEY": "b"})
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}: not valid YAML: line ") and "the tag !!binary is not allowed here" in problem
    assert "c2Vj" not in problem


@pytest.mark.parametrize("eprom, said", [
    ("{url: https://e.example, apiKey: *Sup3rSecretKey}", "not valid YAML: line 1 column 41: found undefined alias"),
    ("{url: https://e.example, apiKey: !Sup3rSecretKey x}", "line 1 column 41: could not determine a constructor"),
    ("{url: https://e.example, apiKey Sup3rSecretKey}",
     "eprom: an unknown setting whose name is not shown, as it may be a key (a ':' missing after a setting's name?)"),
    ("{url: https://e.example, apiKey Sup3rSecretKey, colour: blue}",
     "eprom: 'colour' is not a setting; an unknown setting whose name is not shown"),
    ("{url: https://e.example, apiKeyEnv: Sup3rSecretKey}",
     "eprom: apiKeyEnv does not look like a variable's name (capital letters, digits, '_') and names no variable "
     "that is set: is it the key itself?"),
], ids=["alias", "tag", "colon missing", "colon missing and a wrong name", "key as the variable"])
def test_a_key_written_where_yaml_or_a_name_is_expected_is_never_shown(tmp_path, eprom, said):
    """PyYAML's message quoted an alias's or a tag's name, the schema's an unknown setting's, and apiKeyEnv's
    problem the variable's name: an unquoted key (or one put in apiKeyEnv) was printed by check-config."""
    path = tmp_path / "eprox.yaml"
    path.write_text(f"eprom: {eprom}\ndatabase: x.sqlite3\n"
                    "registries: [{name: r, apiKey: rk, callbackBaseUrl: 'https://r.example'}]\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    (problem,) = caught.value.problems
    assert said in problem and "Sup3rSecretKey" not in problem


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"])
def test_an_https_url_for_the_proxy_of_https_calls_is_refused_by_the_http_clients_rule(tmp_path, variable):
    """check-config passed it, and every https call then failed: the client tunnels https through http://
    proxies only. An https:// proxy for plain http calls is fine."""
    env = {"REG_B_KEY": "b", variable: "https://user:proxy-password@proxy.example:3128"}
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, minimal()), env=env)
    (problem,) = caught.value.problems
    assert problem == f"{variable} (the HTTP proxy for outbound calls): {tunnel_problem('https')}"
    assert "proxy-password" not in problem and "user" not in problem
    with pytest.raises(HTTPException, match=re.escape(tunnel_problem("https"))):
        Route(urlsplit(env[variable])).connection(urlsplit("https://registry.example"), timeout=1)
    env = {"REG_B_KEY": "b", "HTTP_PROXY": "https://proxy.example:3128", "HTTPS_PROXY": "http://proxy.example:3128"}
    assert load_settings(write(tmp_path, minimal()), env=env).registries


def test_an_https_proxy_url_is_only_refused_when_an_https_call_would_go_through_it(tmp_path):
    """A machine-wide https:// HTTPS_PROXY stopped check-config and serve even with no https call to make
    (found by the regression hunt): only an https host the proxy is used for matters, not loopback, not one
    NO_PROXY exempts."""
    proxy = {"REG_B_KEY": "b", "HTTPS_PROXY": "https://proxy.example:3128"}
    plain = minimal(eprom={"url": "http://eprom.example", "apiKey": "eprom-secret"})
    plain["registries"][0]["callbackBaseUrl"] = "http://a.example/cb"
    assert load_settings(write(tmp_path, plain), env=proxy).registries
    local = minimal(eprom={"url": "https://127.0.0.1:8443", "apiKey": "eprom-secret"})
    local["registries"][0]["callbackBaseUrl"] = "https://localhost:9443/cb"
    assert load_settings(write(tmp_path, local), env=proxy).registries
    exempt = {**proxy, "NO_PROXY": "eprom.example,a.example"}
    assert load_settings(write(tmp_path, minimal()), env=exempt).registries
    with pytest.raises(ConfigError) as caught:  # a.example still goes through it
        load_settings(write(tmp_path, minimal()), env={**proxy, "no_proxy": "eprom.example"})
    assert caught.value.problems == [f"HTTPS_PROXY (the HTTP proxy for outbound calls): {tunnel_problem('https')}"]


@pytest.mark.parametrize("setting, env, said", [
    ({"lifetimeDays": 1e-300}, {}, "eprox.yaml: lifetimeDays: must be at least a second"),
    ({"lifetimeDays": 1e-6}, {}, "eprox.yaml: lifetimeDays: must be at least a second"),
    ({}, {"EPROX_LIFETIME_DAYS": "1e-300"}, "EPROX_LIFETIME_DAYS: must be at least a second"),
    ({"delivery": {"timeoutSeconds": 1e-300}}, {}, "eprox.yaml: delivery.timeoutSeconds: must be at least 1"),
    ({}, {"EPROX_DELIVERY_TIMEOUT": "0.001"}, "EPROX_DELIVERY_TIMEOUT: must be at least 1"),
], ids=str)
def test_a_duration_that_is_no_time_once_converted_is_refused(tmp_path, setting, env, said):
    """1e-300 days passed `greater than 0` and became timedelta(0): check-config said "lifetime: 0 days", and a
    live run purged every order at once. A timeout of 1e-300 s failed every call."""
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, minimal(**setting)), env={"REG_B_KEY": "b", **env})
    (problem,) = caught.value.problems
    assert said in problem
    config = load_settings(write(tmp_path, minimal(lifetimeDays=2 / 86400, delivery={"timeoutSeconds": 1})),
                           env={"REG_B_KEY": "b"})
    assert config.lifetime == timedelta(seconds=2) and config.delivery_timeout == 1


def test_a_problem_in_a_value_from_the_environment_names_the_variable_not_the_file(tmp_path):
    """Before, `EPROX_LOG_LEVEL=warn` was told as the file's `logLevel: must be one of ...`, though the file said
    INFO."""
    path = write(tmp_path, minimal(logLevel="INFO"))
    registries = json.dumps([{"name": "r", "apiKey": "r-secret", "callbackBaseUrl": "https://r.example:0"}])
    cases = [({"EPROX_LOG_LEVEL": "warn"}, "EPROX_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR"),
             ({"EPROX_DELIVERY_TIMEOUT": "nan"}, "EPROX_DELIVERY_TIMEOUT: must be a number"),
             ({"EPROX_EPROM_URL": "ftp://e.example"}, "EPROX_EPROM_URL: is not an http:// or https:// URL"),
             ({"EPROX_REGISTRIES": registries},
              "EPROX_REGISTRIES: registries.0.callbackBaseUrl: has a port that is not a number from 1 to 65535")]
    for env, said in cases:
        with pytest.raises(ConfigError) as caught:
            load_settings(path, env={"REG_B_KEY": "b", **env})
        assert caught.value.problems == [said]
    env = {"REG_B_KEY": "b", "EPROX_DELIVERY_TIMEOUT": "60"}
    with pytest.raises(ConfigError) as caught:  # the file's own mistake is the file's
        load_settings(write(tmp_path, minimal(logLevel="LOUD")), env=env)
    assert caught.value.problems == [f"{path}: logLevel: must be one of DEBUG, INFO, WARNING, ERROR"]
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, minimal(delivery={"leaseSeconds": 10})), env=env)
    assert caught.value.problems == [f"{path}: delivery.leaseSeconds: must be longer than a delivery's timeout "
                                     "(EPROX_DELIVERY_TIMEOUT, 60 s): another worker could send it again meanwhile"]


def test_without_a_file_a_missing_setting_names_the_variable_that_would_give_it(tmp_path):
    """Before: "the environment: (top level): eprom is required"."""
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"EPROX_DATABASE": str(tmp_path / "x.sqlite3")})
    assert caught.value.problems == ["no configuration file, and EPROX_EPROM_URL is not set: eprom.url is required",
                                     "no configuration file, and EPROX_REGISTRIES is not set: registries is required"]
