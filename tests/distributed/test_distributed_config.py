"""Settings of the distributed mode: environment and flags, password handling, TLS options."""

from __future__ import annotations

import ssl

import pytest

from ebook2audio.distributed_config import (
    ENV_VARS,
    DistributedSettings,
    load_distributed_settings,
    mask_text,
    mask_url,
    redis_host_port,
    split_ssl_query,
    with_password,
)
from ebook2audio.errors import ConfigError


def test_env_vars_name_exactly_the_guide_variables() -> None:
    assert set(ENV_VARS) == {
        "DISTRIBUTED_MODE", "NUM_WORKERS", "REDIS_URL", "SHARED_STORAGE_TYPE", "SHARED_STORAGE_PATH",
        "S3_ENDPOINT_URL", "S3_BUCKET_NAME", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "CELERY_WORKER_CONCURRENCY", "CELERY_WORKER_MAX_TASKS_PER_CHILD", "REDIS_PASSWORD",
        "FLOWER_USER", "FLOWER_PASSWORD",
    }  # fmt: skip
    assert len(ENV_VARS) == len(set(ENV_VARS))


def test_defaults() -> None:
    ds = load_distributed_settings({}, {})
    assert ds == DistributedSettings()
    assert ds.redis_url == "redis://localhost:6379/0"
    assert ds.storage_type == "local" and ds.storage_path == "/mnt/shared"
    assert ds.worker_concurrency == 1
    assert ds.visibility_timeout > ds.time_limit > ds.soft_time_limit
    assert ds.session_lock_ttl == 20.0
    assert load_distributed_settings({}, {"EBOOK2AUDIO_SESSION_LOCK_TTL": "4"}).session_lock_ttl == 4.0


def test_environment_then_flags_override() -> None:
    env = {
        "DISTRIBUTED_MODE": "true",
        "NUM_WORKERS": "4",
        "REDIS_URL": "redis://redis:6379/1",
        "SHARED_STORAGE_TYPE": "s3",
        "SHARED_STORAGE_PATH": "jobs",
        "S3_ENDPOINT_URL": "http://minio:9000",
        "S3_BUCKET_NAME": "books",
        "AWS_ACCESS_KEY_ID": "AKIA",
        "AWS_SECRET_ACCESS_KEY": "topsecret",
        "AWS_REGION": "eu-west-1",
        "CELERY_WORKER_CONCURRENCY": "2",
        "CELERY_WORKER_MAX_TASKS_PER_CHILD": "50",
        "FLOWER_USER": "admin",
        "FLOWER_PASSWORD": "flowerpw",
    }
    ds = load_distributed_settings({}, env)
    assert ds.enabled and ds.num_workers == 4 and ds.redis_url == "redis://redis:6379/1"
    assert (ds.storage_type, ds.storage_path, ds.s3_bucket, ds.s3_endpoint_url) == (
        "s3",
        "jobs",
        "books",
        "http://minio:9000",
    )
    assert (ds.aws_access_key_id, ds.aws_secret_access_key, ds.aws_region) == (
        "AKIA",
        "topsecret",
        "eu-west-1",
    )
    assert (ds.worker_concurrency, ds.max_tasks_per_child) == (2, 50)
    assert (ds.flower_user, ds.flower_password) == ("admin", "flowerpw")
    assert "topsecret" in ds.secrets and "flowerpw" in ds.secrets

    flags = {"num_workers": 2, "redis_url": "redis://other:6380/0", "storage_type": "local",
             "storage_path": "/srv/shared", "concurrency": 3, "distributed": False, "format": "mp3"}  # fmt: skip
    ds = load_distributed_settings(flags, env)
    assert (ds.num_workers, ds.redis_url, ds.storage_type, ds.storage_path) == (
        2,
        "redis://other:6380/0",
        "local",
        "/srv/shared",
    )
    assert ds.worker_concurrency == 3 and not ds.enabled


def test_redis_password_is_inserted_unless_the_url_has_one() -> None:
    ds = load_distributed_settings({}, {"REDIS_URL": "redis://redis:6379/0", "REDIS_PASSWORD": "p@ss/w:rd"})
    assert ds.redis_url == "redis://:p%40ss%2Fw%3Ard@redis:6379/0"
    assert "p@ss/w:rd" in ds.secrets
    ds = load_distributed_settings({}, {"REDIS_URL": "redis://:inurl@redis:6379/0", "REDIS_PASSWORD": "env"})
    assert ds.redis_url == "redis://:inurl@redis:6379/0"
    assert (
        with_password("rediss://user@h:1/0?ssl_cert_reqs=none", "pw")
        == "rediss://user:pw@h:1/0?ssl_cert_reqs=none"
    )
    assert with_password("redis://h", "") == "redis://h"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://user:pw@h:6379/0", "redis://user:***@h:6379/0"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("rediss://:p%40w@h/0?ssl_cert_reqs=none", "rediss://:***@h/0?ssl_cert_reqs=none"),
        ("redis://h/0?password=x", "redis://h/0?password=***"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_settings_display_masks_and_mask_text() -> None:
    ds = load_distributed_settings({"redis_url": "redis://:hunter2@cache:7000/2"}, {})
    assert ds.redis_display == "redis://:***@cache:7000/2"
    assert ds.redis_endpoint == "cache:7000"
    assert mask_text("AUTH hunter2 failed", ds.secrets) == "AUTH *** failed"
    assert redis_host_port("redis://localhost/0") == ("localhost", 6379)


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        ({"redis_url": "http://x"}, {}, "redis://"),
        ({"storage_type": "ftp"}, {}, "unknown shared storage"),
        ({"storage_type": "s3"}, {}, "bucket"),
        ({"num_workers": 0}, {}, "--num-workers"),
        ({"concurrency": 0}, {}, "--concurrency"),
        ({}, {"NUM_WORKERS": "two"}, "NUM_WORKERS"),
        ({}, {"EBOOK2AUDIO_TASK_TIME_LIMIT": "100", "EBOOK2AUDIO_TASK_SOFT_TIME_LIMIT": "200"}, "soft limit"),
        ({}, {"EBOOK2AUDIO_VISIBILITY_TIMEOUT": "60"}, "visibility timeout"),
        ({}, {"DISTRIBUTED_MODE": "maybe"}, "DISTRIBUTED_MODE"),
        ({}, {"EBOOK2AUDIO_SESSION_LOCK_TTL": "0.5"}, "EBOOK2AUDIO_SESSION_LOCK_TTL"),
    ],
)
def test_bad_settings_are_config_errors(flags: dict, env: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_distributed_settings(flags, env)


def test_password_never_in_config_errors() -> None:
    with pytest.raises(ConfigError) as info:
        load_distributed_settings({"redis_url": "http://:hunter2@h:1/0"}, {})
    assert "hunter2" not in str(info.value)


def test_tls_options_from_the_url_query() -> None:
    url, opts = split_ssl_query("rediss://:pw@h:6380/0?ssl_cert_reqs=CERT_NONE")
    assert url == "rediss://:pw@h:6380/0" and opts == {"ssl_cert_reqs": ssl.CERT_NONE}
    url, opts = split_ssl_query("rediss://h:6380/0?ssl_cert_reqs=required&ssl_ca_certs=/ca.pem")
    assert opts == {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": "/ca.pem"}
    assert split_ssl_query("rediss://h/0")[1] == {"ssl_cert_reqs": ssl.CERT_REQUIRED}  # verify by default
    assert split_ssl_query("redis://h/0") == ("redis://h/0", None)
    with pytest.raises(ConfigError, match="rediss://"):
        split_ssl_query("redis://h/0?ssl_cert_reqs=none")
    with pytest.raises(ConfigError, match="ssl_cert_reqs"):
        split_ssl_query("rediss://h/0?ssl_cert_reqs=sometimes")
