"""How the settings explain themselves: each problem names the variable or the place in the EDGE_CONFIG file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.configuration import did_you_mean, load_settings, unknown_environment_variables
from edge.settings import ConfigFileError, read_config_file
from tests.support.tokens import JWT_SECRET_JSON

SECRET = "a-real-secret-never-shown"
REQUIRED = {
    "EDGE_HASURA_URL": "http://hasura:8080",
    "EDGE_HASURA_ADMIN_SECRET": SECRET,
    "EDGE_JWT_SECRET": JWT_SECRET_JSON,
}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch):
    """An environment with no EDGE_* variables but those a test sets; returns a setter."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("EDGE_"):
            monkeypatch.delenv(name)

    def set_variables(**variables: str) -> dict[str, str]:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        return {name: value for name, value in os.environ.items() if name.startswith("EDGE_")}

    return set_variables


def config_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "edge.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_valid_configuration_loads_with_its_sources_recorded(tmp_path: Path, environment):
    path = config_file(
        tmp_path, "hasura_url: http://from-file:8080\nplans: {free: {}}\njwt_plan: free\nanonymous_plan: free\n"
    )
    environment(EDGE_CONFIG=path, EDGE_HASURA_ADMIN_SECRET=SECRET, EDGE_UNAUTHORIZED_ROLE="anonymous")
    loaded = load_settings()
    assert loaded.problems == []
    assert loaded.settings is not None
    assert loaded.settings.jwt_plan == "free"
    assert loaded.from_file == {"hasura_url", "plans", "jwt_plan", "anonymous_plan"}
    assert loaded.from_environment == {"hasura_admin_secret", "unauthorized_role"}
    assert loaded.name_of("plans") == f"{path}: plans"
    assert loaded.name_of("hasura_admin_secret") == "EDGE_HASURA_ADMIN_SECRET"


def test_an_environment_value_is_named_by_its_variable(environment):
    environment(**REQUIRED, EDGE_PORT="70000", EDGE_UPSTREAM_CLIENT="fast")
    loaded = load_settings()
    assert loaded.settings is None
    assert "EDGE_PORT: Input should be less than or equal to 65535" in loaded.problems
    assert any(line.startswith("EDGE_UPSTREAM_CLIENT: Input should be ") for line in loaded.problems)
    assert len(loaded.problems) == 2


def test_a_value_in_the_file_is_named_by_its_yaml_path(tmp_path: Path, environment):
    path = config_file(
        tmp_path,
        "plans:\n  free:\n    rate: {requests_per_second: 0, burst: 5}\n"
        "cache_rules:\n  - {operation_name: X, ttl: 9999}\n",
    )
    environment(**REQUIRED, EDGE_CONFIG=path)
    problems = load_settings().problems
    assert f"{path}: plans.free.rate.requests_per_second: Input should be greater than 0" in problems
    assert f"{path}: cache_rules[0].ttl: Input should be less than or equal to 300" in problems


def test_the_environment_wins_over_the_file_and_is_the_one_named(tmp_path: Path, environment):
    path = config_file(tmp_path, "port: 8080\n")
    environment(**REQUIRED, EDGE_CONFIG=path, EDGE_PORT="0")
    assert load_settings().problems == ["EDGE_PORT: Input should be greater than or equal to 1"]


def test_a_required_setting_names_its_variable(environment):
    environment(EDGE_HASURA_URL="http://hasura:8080", EDGE_UNAUTHORIZED_ROLE="anonymous")
    assert load_settings().problems == [
        "EDGE_HASURA_ADMIN_SECRET: required (in the environment, or as hasura_admin_secret in the EDGE_CONFIG file)"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("trusted_proxy: [10.0.0.0/8]\n", "trusted_proxy: unknown setting (did you mean trusted_proxies?)"),
        ("TRUSTED_PROXY: [10.0.0.0/8]\n", "trusted_proxy: unknown setting (did you mean trusted_proxies?)"),
        (
            "plans:\n  free:\n    rate: {requests_per_second: 5, burts: 5}\n",
            "plans.free.rate.burts: unknown key (did you mean burst?)",
        ),
        (
            "plans:\n  free:\n    graphql: {max_dept: 3}\n",
            "plans.free.graphql.max_dept: unknown key (did you mean max_depth?)",
        ),
        ("plans:\n  free:\n    quotas: {limit: 5}\n", "plans.free.quotas: unknown key (did you mean quota?)"),
        ("cache_rules:\n  - {operation_name: X, tll: 3}\n", "cache_rules[0].tll: unknown key (did you mean ttl?)"),
        ("completely_unrelated: 1\n", "completely_unrelated: unknown setting"),
    ],
)
def test_unknown_keys_at_any_level_are_refused_with_a_suggestion(tmp_path: Path, environment, text: str, expected: str):
    path = config_file(tmp_path, text)
    environment(**REQUIRED, EDGE_CONFIG=path)
    loaded = load_settings()
    assert loaded.settings is None
    assert f"{path}: {expected}" in loaded.problems
    # Besides: what the misspelt key should have given, when it is required.
    others = [problem for problem in loaded.problems if problem != f"{path}: {expected}"]
    assert all(problem.endswith(": Field required") for problem in others)


def test_a_list_or_mapping_variable_that_is_not_json_names_the_variable(environment):
    environment(**REQUIRED, EDGE_PLANS="{free: {}")
    assert load_settings().problems == ["EDGE_PLANS: not valid JSON (a list or mapping is expected)"]


def test_a_nested_value_in_a_json_variable_names_the_variable_and_the_path(environment):
    environment(**REQUIRED, EDGE_PLANS=json.dumps({"default": {"rate": {"requests_per_second": 5, "brust": 1}}}))
    assert sorted(load_settings().problems) == [
        "EDGE_PLANS: default.rate.brust: unknown key (did you mean burst?)",
        "EDGE_PLANS: default.rate.burst: Field required",
    ]


def test_an_unknown_warn_only_limit_is_named_with_the_limits_that_can_warn(tmp_path: Path, environment):
    path = config_file(tmp_path, "plans:\n  default: {graphql: {warn_only: [max_depth, max_dept, max_tokens]}}\n")
    environment(**REQUIRED, EDGE_CONFIG=path)
    assert load_settings().problems == [
        f"{path}: plans.default.graphql.warn_only: unknown limit(s) max_dept, max_tokens; warn_only"
        " takes introspection, max_aliases, max_batch_size, max_cost, max_depth, max_directives, max_root_fields"
    ]


def test_every_limit_that_can_warn_is_one_the_policy_reports() -> None:
    from edge.graphql.analysis import Analyser
    from edge.graphql.policy import check, check_batch
    from edge.plans import WARN_ONLY_LIMITS, GraphQLLimits

    tight = GraphQLLimits(max_depth=1, max_aliases=0, max_root_fields=1, max_directives=0, max_cost=1, max_batch_size=1)
    over_all = "{ __schema { queryType { name } } a: users @include(if: true) { orders { id } } b: users { id } }"
    reported = {violation.limit for violation in check(Analyser()(over_all, None, max_tokens=1000), 2, tight)}
    reported |= {violation.limit for violation in check_batch(2, tight)}
    assert reported == WARN_ONLY_LIMITS


def test_an_unknown_plan_is_named_where_it_was_set(tmp_path: Path, environment):
    path = config_file(tmp_path, "plans: {free: {}, partner: {}}\njwt_plan: fre\n")
    environment(**REQUIRED, EDGE_CONFIG=path, EDGE_ANONYMOUS_PLAN="guest")
    assert load_settings().problems == [
        f"{path}: jwt_plan: names the unknown plan 'fre' (configured plans: free, partner)",
        "EDGE_ANONYMOUS_PLAN: names the unknown plan 'guest' (configured plans: free, partner)",
    ]


def test_the_default_plan_missing_from_the_configured_plans_is_named(tmp_path: Path, environment):
    path = config_file(tmp_path, "plans: {free: {}}\njwt_plan: free\n")
    environment(**REQUIRED, EDGE_CONFIG=path)
    assert load_settings().problems == [
        "EDGE_ANONYMOUS_PLAN: names the unknown plan 'default' (configured plans: free)"
    ]


def test_a_misspelt_jwt_config_field_gets_a_suggestion(environment):
    config = json.loads(JWT_SECRET_JSON) | {"issuers": "https://idp.example"}
    environment(**REQUIRED | {"EDGE_JWT_SECRET": json.dumps(config)})
    assert load_settings().problems == ["EDGE_JWT_SECRET: unknown field(s): issuers (did you mean issuer?)"]


def test_no_problem_repeats_a_secret(tmp_path: Path, environment):
    path = config_file(tmp_path, f"hasura_admin_secret: {SECRET}\nredis_url: 42\nport: {SECRET}\n")
    environment(
        EDGE_CONFIG=path,
        EDGE_HASURA_URL=f"not a url {SECRET}",
        EDGE_JWT_SECRET=json.dumps({"type": "HS256", "key": "short-" + SECRET[:5]}),
        EDGE_METRICS_TOKEN=SECRET,
        EDGE_ALLOWED_ORIGINS=f"[{SECRET}",
    )
    loaded = load_settings()
    assert len(loaded.problems) >= 4
    text = "\n".join(loaded.problems)
    assert SECRET not in text
    assert "short-" not in text


def test_unknown_edge_variables_are_warnings_with_a_suggestion(environment):
    variables = environment(**REQUIRED, EDGE_TRUSTED_PROXY="10.0.0.0/8", EDGE_SOMETHING_ELSE="1", edge_port="8001")
    assert unknown_environment_variables(variables) == [
        "EDGE_SOMETHING_ELSE is not a setting and is ignored",
        "EDGE_TRUSTED_PROXY is not a setting and is ignored (did you mean EDGE_TRUSTED_PROXIES?)",
    ]
    loaded = load_settings()
    assert loaded.problems == []  # warnings only: the environment holds unrelated variables
    assert len(loaded.warnings) == 2


def test_did_you_mean_suggests_only_close_names():
    assert did_you_mean("trusted_proxy", ["trusted_proxies", "port"]) == " (did you mean trusted_proxies?)"
    assert did_you_mean("zzz", ["trusted_proxies", "port"]) == ""


class TestTheConfigFile:
    def test_a_syntax_error_gives_the_line_and_column_without_the_text(self, tmp_path: Path):
        path = config_file(tmp_path, f"hasura_admin_secret: {SECRET}\nport: 8000\n  host: [oops\n")
        with pytest.raises(ConfigFileError) as raised:
            read_config_file(path)
        message = str(raised.value)
        assert message.startswith(f"EDGE_CONFIG: {path}: line 3, column 7: invalid YAML: ")
        assert SECRET not in message

    def test_a_file_that_is_not_a_mapping_is_refused(self, tmp_path: Path):
        path = config_file(tmp_path, "- hasura_url: http://hasura:8080\n")
        with pytest.raises(ConfigFileError, match="must be a YAML mapping of setting names to values, not a list"):
            read_config_file(path)

    def test_a_missing_file_is_named(self, tmp_path: Path):
        with pytest.raises(ConfigFileError) as raised:
            read_config_file(str(tmp_path / "absent.yaml"))
        assert (
            str(raised.value) == f"EDGE_CONFIG: {tmp_path / 'absent.yaml'}: cannot be read (No such file or directory)"
        )

    def test_an_unreadable_file_is_named(self, tmp_path: Path):
        # A directory: unreadable as a file even for root, who reads files whatever their mode.
        with pytest.raises(ConfigFileError) as raised:
            read_config_file(str(tmp_path))
        assert str(raised.value) == f"EDGE_CONFIG: {tmp_path}: cannot be read (Is a directory)"

    def test_a_file_that_is_not_utf8_is_named(self, tmp_path: Path):
        path = tmp_path / "edge.yaml"
        path.write_bytes(b"port: 8000\nhost: \xff\n")
        with pytest.raises(ConfigFileError, match=r": not UTF-8 text \(byte 17\)"):
            read_config_file(str(path))

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("port: 1\nhost: x\nport: 2\n", "line 3, column 1: invalid YAML: the key 'port' is given twice"),
            ("plans:\n  free: {}\n  free: {}\n", "line 3, column 3: invalid YAML: the key 'free' is given twice"),
            ("port: 1\nPORT: 2\n", "port is given twice (names are case-insensitive)"),
        ],
    )
    def test_a_key_given_twice_is_refused(self, tmp_path: Path, text: str, message: str):
        path = config_file(tmp_path, text)
        with pytest.raises(ConfigFileError) as raised:
            read_config_file(path)
        assert str(raised.value) == f"EDGE_CONFIG: {path}: {message}"

    def test_an_empty_file_configures_nothing(self, tmp_path: Path):
        assert read_config_file(config_file(tmp_path, "# nothing yet\n")) == {}

    def test_merge_keys_may_override_what_they_merge(self, tmp_path: Path):
        text = "base: &base {burst: 5, requests_per_second: 1}\nrate: {<<: *base, burst: 10}\n"
        assert read_config_file(config_file(tmp_path, text))["rate"] == {"burst": 10, "requests_per_second": 1}

    def test_load_settings_reports_the_file_problem_alone(self, tmp_path: Path, environment):
        path = config_file(tmp_path, "[1, 2]\n")
        environment(**REQUIRED, EDGE_CONFIG=path)
        loaded = load_settings()
        assert loaded.settings is None
        assert loaded.problems == [
            f"EDGE_CONFIG: {path}: must be a YAML mapping of setting names to values, not a list"
        ]
