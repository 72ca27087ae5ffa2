"""Settings: one object, read once from PRS_* environment variables and passed in."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every tunable of PR-System; the environment prefix is PRS_."""

    model_config = SettingsConfigDict(env_prefix="PRS_", env_file=None, extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/prs"
    database_pool_min: int = 1
    database_pool_max: int = 10
    data_dir: Path = Path("data")

    # Auth
    jwt_secret: str = ""  # empty: generated once and kept in data_dir/jwt-secret
    access_token_minutes: int = 60
    refresh_token_days: int = 7
    signing_key_refresh_s: float = 30.0  # how often each process re-reads the JWT signing keys (rotations)

    # Account lifecycle: lockout and passwords of local accounts; see docs/access.md
    lockout_threshold: int = 10  # failed logins of one account within the window that lock it; 0: never lock
    lockout_window_minutes: int = 15
    lockout_minutes: int = 15  # the first lock; each further lock before a successful login lasts twice as long
    lockout_max_minutes: int = 1440
    lockout_directory_accounts: bool = False  # LDAP accounts: counted and audited; the directory locks them
    password_max_age_days: int = 0  # local passwords expire after this many days; 0: never
    password_history: int = 5  # a new password may not be one of the last N (the current one included)

    # LLM nodes (Ollama REST API); the embedded default is `prs llm serve` on 11434.
    llm_nodes: str = "http://127.0.0.1:11434"
    llm_model: str = "gemma3-270m"
    llm_timeout_s: float = 120.0
    llm_connect_timeout_s: float = 3.0
    llm_node_cooldown_s: float = 15.0
    llm_max_tokens: int = 256
    llm_temperature: float = 0.2
    llm_prompt_style: Literal["completion", "chat"] = "completion"
    llm_model_path: str = ""  # GGUF for `prs llm serve`; empty: the bundled gemma3 270M
    llm_threads: int = 0  # 0: all cores
    llm_context: int = 2048

    # Embeddings and vector store
    embedding_model: str = ""  # empty: the bundled all-MiniLM-L6-v2
    embedding_batch_size: int = 32
    chroma_url: str = ""  # empty: embedded PersistentClient under data_dir/chroma
    chroma_collection: str = "prs_knowledge"

    # Retrieval
    similar_limit: int = 5
    similar_min_score: float = 0.35
    suggestion_cases: int = 4
    chunk_words: int = 180
    chunk_overlap_words: int = 40

    # Suggestions
    suggestion_language: Literal["es", "en"] = "es"  # fixed mode: always; report mode: when the report gives no clue
    suggestion_language_mode: Literal["report", "fixed"] = "report"  # report: the language the report is written in
    # How a suggestion is built (docs/suggestions.md): extractive copies the retrieved cases' sentences, each cited;
    # generative lets the model write (instruction-tuned models, PRS_LLM_PROMPT_STYLE=chat), support-checked.
    suggestion_mode: Literal["extractive", "generative"] = "extractive"
    suggestion_min_score: float = 0.0  # below this retrieval score a case is not relevant enough to suggest from
    suggestion_relative_score: float = 0.9  # a second source joins the best when it scores at least this share
    suggestion_max_sources: int = 3
    suggestion_max_steps: int = 12
    suggestion_max_chars: int = 1500  # the length limit of a suggestion's text
    suggestion_retry_base_s: float = 5.0
    suggestion_retry_max_s: float = 300.0
    suggestion_max_attempts: int = 50
    suggestion_stream_max_s: float = 600.0  # an SSE stream closes with `timeout` after this; clients reconnect
    live_stream_max_s: float = 900.0  # the live incident stream (web pages) closes with `timeout`; pages reconnect
    live_keepalive_s: float = 15.0  # a `: keep-alive` comment this often on an idle live stream
    # Admission to the LLM nodes (see docs/suggestions.md): generations never exceed the nodes' slots, cluster-wide
    llm_slots_per_node: int = 0  # parallel generations per node; 0: what the node advertises, else 1
    llm_node_slots: dict[str, int] = {}  # JSON {"node URL": slots} for nodes that differ
    llm_first_token_timeout_s: float = 120.0  # from the start of a generation to its first token (prompt included)
    llm_token_timeout_s: float = 30.0  # longest pause between two tokens
    suggestion_backlog_max_age_s: float = 1800.0  # pending longer than this: skipped when of a skippable priority
    suggestion_backlog_skip_priorities: list[Literal["low", "medium", "high", "critical"]] = ["low", "medium"]
    suggestion_backlog_degraded_s: float = 600.0  # /health/ready says "degraded: backlog" past this queue age
    suggestion_watch_s: float = 20.0  # an open suggestion stream puts its suggestion first for this long, renewed
    suggestion_dispatch_poll_s: float = 0.5  # how often a worker looks for free slots and waiting work
    suggestion_lease_s: float = 60.0  # lease of a running generation and its slot, renewed while it runs

    # Worker
    embedded_worker: bool = True  # `prs serve` runs the job worker in the same process

    # HA deployment: see docs/deployment.md
    database_read_url: str = ""  # standby (or prefer-standby multi-host DSN) for lists and reports; empty: primary
    database_connect_timeout_s: float = 5.0  # one connection attempt (per host of a multi-host DSN)
    database_read_cooldown_s: float = 10.0  # after the read pool fails, reads go to the primary this long
    database_retry_after_s: int = 2  # Retry-After of the 503 answered while the database switches over
    idempotency_retention_hours: float = 24.0  # how long an Idempotency-Key and its first answer are kept (>= 24)
    shutdown_drain_s: float = 0.0  # on SIGTERM `prs serve` reports not-ready this long before it stops accepting
    shutdown_timeout_s: float = 30.0  # then waits at most this long for in-flight requests

    # Knowledge documents (text limits of incidents are fixed in the schemas and documented)
    document_max_bytes: int = 2_000_000

    # Notifications (webhooks, Slack, e-mail): see docs/notifications.md
    notify_secret_key: str = ""  # encrypts signing secrets at rest; empty: generated once into data_dir/notify-key
    notify_allowed_hosts: str = ""  # hostnames, IPs or CIDRs that may resolve to private/loopback addresses
    notify_ca_file: str = ""  # extra CA bundle trusted for https targets (an internal PKI)
    notify_connect_timeout_s: float = 5.0
    notify_timeout_s: float = 15.0  # total time of one attempt, connect included
    notify_max_attempts: int = 12
    notify_retry_base_s: float = 10.0
    notify_retry_max_s: float = 3600.0
    notify_retry_after_max_s: float = 86400.0  # the longest Retry-After honoured
    notify_disable_after_failures: int = 36  # consecutive failed attempts before an endpoint is disabled
    notify_secret_grace_s: int = 86400  # how long the old secret still signs after a rotation
    notify_lease_s: float = 60.0  # a claimed delivery returns to the queue if its worker is silent this long
    notify_poll_s: float = 1.0
    notify_batch_size: int = 16
    notify_log_retention_days: int = 30
    smtp_host: str = ""  # empty: e-mail endpoints cannot be created
    smtp_port: int = 587
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_from: str = "pr-system@localhost"
    smtp_ca_file: str = ""  # extra CA bundle trusted for the SMTP server's certificate

    # Access: LDAP / Active Directory sign-in (empty URL: local accounts only); see docs/access.md
    ldap_url: str = ""  # ldap://host:389 or ldaps://host:636
    ldap_start_tls: bool = False  # upgrade ldap:// with StartTLS before any bind
    ldap_ca_file: str = ""  # PEM bundle that verifies the directory's certificate; empty: system CAs
    ldap_tls_verify: bool = True
    ldap_bind_dn: str = ""  # service account that searches for users
    ldap_bind_password: str = ""
    ldap_user_base_dn: str = ""
    ldap_user_filter: str = "(uid={username})"  # Active Directory: (sAMAccountName={username}); value is escaped
    ldap_group_mode: Literal["memberof", "search"] = "memberof"
    ldap_group_base_dn: str = ""  # search mode only
    ldap_group_filter: str = "(&(objectClass=groupOfNames)(member={user_dn}))"  # search mode only
    ldap_group_roles: dict[str, str] = {}  # JSON {"group DN or CN": "reporter|technician|supervisor|admin|auditor"}
    # Role of people in no mapped group; empty: they are refused.
    ldap_default_role: Literal["", "reporter", "technician", "supervisor", "admin"] = ""
    ldap_display_name_attribute: str = "displayName"
    ldap_email_attribute: str = "mail"
    ldap_timeout_s: float = 5.0

    # API keys of external systems
    api_key_rotation_grace_minutes: int = 1440  # default grace period in which the old and the new key both work
    api_key_failure_rate_limit: str = "30/minute"  # rejected API-key attempts per client IP before 429

    # Rate limits (slowapi): memory:// in one process; redis://host:6379 shared by every replica
    rate_limit_storage_uri: str = "memory://"
    rate_limit_key_prefix: str = "prs"
    login_rate_limit: str = "5/minute"  # failed logins per client IP; then 429 with Retry-After

    # HTTP hardening
    trusted_proxies: str = ""  # CIDRs of reverse proxies whose X-Forwarded-For is believed; empty: none
    cors_origins: str = ""  # comma-separated origins allowed to call the API from a browser
    content_security_policy: str = "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    hsts_seconds: int = 0  # Strict-Transport-Security max-age; set it when TLS ends in front of the API
    max_request_body_bytes: int = 5_242_880  # larger bodies get 413 (must exceed document_max_bytes)
    max_request_header_bytes: int = 16_384  # larger header blocks get 431; `prs serve` drops twice that (400)

    # SLAs, escalation and maintenance: see docs/sla.md
    sla_sweep_interval_s: float = 60.0  # how often the SLA sweep runs (once per interval across all workers)
    sla_sweep_batch_size: int = 500  # incidents with a due clock handled per sweep; the rest wait for the next
    sla_first_response_on: Literal["comment_or_assignment", "comment", "assignment"] = "comment_or_assignment"
    maintenance_interval_s: float = 3600.0  # how often retention clean-up and ANALYZE run
    maintenance_tick_retention_days: int = 7  # periodic_ticks rows older than this are deleted

    # Backups to S3-compatible storage (MinIO) and audit anchors: see docs/backups.md
    backup_s3_endpoint: str = ""  # host:port; empty: no backups are scheduled and the admin endpoints answer 409
    backup_s3_access_key: str = ""
    backup_s3_secret_key: str = ""
    backup_s3_secure: bool = True  # https to the object store
    backup_s3_region: str = ""
    backup_s3_timeout_s: float = 30.0
    backup_bucket: str = "prs-backups"
    backup_prefix: str = "pr-system"
    backup_encryption_key: str = ""  # passphrase (>= 32 chars) the AES-256 keys are derived from; required
    backup_anchor_bucket: str = ""  # Object Lock bucket for audit anchors; empty: no anchors
    backup_anchor_retention_days: int = 400  # how long an anchor is locked
    backup_anchor_lock_mode: Literal["compliance", "governance"] = "compliance"
    backup_source_database_url: str = ""  # the standby pg_dump reads from; empty: PRS_DATABASE_URL
    backup_pg_bin_dir: str = ""  # folder of pg_dump/pg_restore matching the server; empty: PATH
    backup_part_size_mb: int = 16  # multipart part size (S3 minimum 5)
    backup_keep_hourly_hours: int = 24
    backup_keep_daily_days: int = 30
    backup_keep_weekly_weeks: int = 12
    backup_keep_monthly_months: int = 12
    backup_retry_attempts: int = 3  # attempts of one scheduled backup before it is recorded as failed
    backup_retry_base_s: float = 30.0  # backoff before the second attempt; doubles each time

    # Observability and Alertmanager alerts as incidents: see docs/observability.md
    metrics_port: int = 0  # `prs worker` / `prs notify worker` serve /metrics on this port; 0: no metrics server
    metrics_host: str = "0.0.0.0"  # address the worker metrics server binds
    metrics_cache_s: float = 15.0  # database gauges are read at most once per this many seconds per process
    metrics_db_timeout_s: float = 2.0  # a scrape waits at most this long for the database gauges
    llm_health_interval_s: float = 15.0  # background health check of every LLM node (prs_llm_node_up)
    alertmanager_default_area: str = "it"  # area of alert incidents no rule and no `area` label places
    alertmanager_area_label: str = "area"  # alert label whose value, when it is a known area, is the area
    # JSON {"severity value": "priority"}; unknown or missing severities get the default priority
    alertmanager_priorities: dict[str, str] = {
        "critical": "critical",
        "page": "critical",
        "error": "high",
        "warning": "medium",
        "info": "low",
    }
    alertmanager_default_priority: Literal["low", "medium", "high", "critical"] = "medium"
    # JSON list of rules, first match wins: [{"match": {"label": "value", ...}, "area": "...", "priority": "..."}]
    alertmanager_rules: list[dict[str, Any]] = []
    alertmanager_resolve_incidents: bool = False  # a `resolved` notification also resolves the incident

    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator(
        "sla_sweep_interval_s", "sla_sweep_batch_size", "maintenance_interval_s", "maintenance_tick_retention_days"
    )
    @classmethod
    def _positive_sla_numbers(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be greater than zero")
        return value

    @field_validator("idempotency_retention_hours")
    @classmethod
    def _idempotency_kept_a_day(cls, value: float) -> float:
        if value < 24:
            raise ValueError("idempotency keys must be kept at least 24 hours")
        return value

    @field_validator("alertmanager_priorities")
    @classmethod
    def _known_priorities(cls, value: dict[str, str]) -> dict[str, str]:
        wrong = sorted(v for v in value.values() if v not in ("low", "medium", "high", "critical"))
        if wrong:
            raise ValueError(f"priorities must be low, medium, high or critical, not {', '.join(wrong)}")
        return value

    @field_validator("alertmanager_rules")
    @classmethod
    def _alert_rules_shape(cls, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for number, rule in enumerate(rules):
            match = rule.get("match")
            if not isinstance(match, dict) or not match or set(rule) - {"match", "area", "priority"}:
                raise ValueError(f"rule {number}: needs a non-empty `match` object and only `area` / `priority`")
            if rule.get("priority") not in (None, "low", "medium", "high", "critical"):
                raise ValueError(f"rule {number}: priority must be low, medium, high or critical")
        return rules

    @field_validator(
        "backup_keep_hourly_hours",
        "backup_keep_daily_days",
        "backup_keep_weekly_weeks",
        "backup_keep_monthly_months",
        "backup_retry_attempts",
        "backup_anchor_retention_days",
        "backup_part_size_mb",
        "backup_s3_timeout_s",
    )
    @classmethod
    def _positive_backup_numbers(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be greater than zero")
        return value

    @property
    def llm_node_urls(self) -> list[str]:
        """The configured LLM node URLs, in failover order."""
        return [url.strip().rstrip("/") for url in self.llm_nodes.split(",") if url.strip()]

    @property
    def trusted_proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """The reverse-proxy networks whose forwarding headers are believed."""
        return [ipaddress.ip_network(n.strip(), strict=False) for n in self.trusted_proxies.split(",") if n.strip()]

    @property
    def cors_origin_list(self) -> list[str]:
        """Browser origins allowed by CORS."""
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    @property
    def chroma_path(self) -> Path:
        """Folder of the embedded Chroma store."""
        return self.data_dir / "chroma"

    def ensure_data_dir(self) -> Path:
        """Create the data folder if missing and return it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, with explicit overrides for tests and the CLI."""
    return Settings(**overrides)  # type: ignore[arg-type]
