"""Settings: one frozen pydantic-settings model per concern, each field with exactly one
default. Sources, highest first: ``BTSBOT_*`` environment variables (nested with ``__``,
e.g. ``BTSBOT_KAFKA__BOOTSTRAP_SERVERS``), then the config file (TOML or YAML) given to
``btsbot-stream run --config``. CLI options of other commands take their defaults from
here, so a default is never written twice.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from btsbot_stream.decisions.policies import BUILTIN_POLICIES, PolicySpec
from btsbot_stream.errors import ConfigError

Device = Literal["auto", "cpu", "cuda", "tensorrt"]


class EngineSettings(BaseModel):
    """Which models, where, on what hardware, in what batches."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: tuple[str, ...] = ("btsbot-v1.0.1",)
    models_dir: Path = Path("models")
    device: Device = "auto"
    threads: int = Field(default=0, ge=0, description="ONNX Runtime intra-op threads, 0: auto")
    batch_size: int = Field(default=256, ge=1, description="largest inference batch")
    max_wait_ms: int = Field(default=50, ge=0, description="longest a partial batch waits")
    gpu_device_id: int = Field(default=0, ge=0)
    on_missing_gpu: Literal["fail", "degrade"] = Field(
        default="fail",
        description="device=cuda/tensorrt without a usable GPU: exit at start, or run on "
        "the CPU with an error log (metrics and the GpuRequestedButCpu alert show it)",
    )
    batch_buckets: tuple[int, ...] = Field(
        default=(),
        description="pad batches to these sizes (GPU: fixed shapes, e.g. [64, 256, 1024])",
    )
    warmup: bool = Field(default=True, description="run each batch shape once at start")
    cudnn_conv_algo_search: Literal["EXHAUSTIVE", "HEURISTIC", "DEFAULT"] = "EXHAUSTIVE"
    tensorrt_fp16: bool = False
    tensorrt_cache_dir: Path | None = None

    @model_validator(mode="after")
    def _buckets_valid(self) -> EngineSettings:
        if any(b < 1 for b in self.batch_buckets):
            raise ValueError("engine.batch_buckets must be positive sizes")
        if self.batch_buckets and max(self.batch_buckets) < self.batch_size:
            raise ValueError(
                f"engine.batch_buckets must include a size >= batch_size ({self.batch_size})"
            )
        return self


class KafkaSettings(BaseModel):
    """Where alerts come from and where scored alerts go."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: str = "127.0.0.1:9092"
    group_id: str = "btsbot-stream"
    input_topics: tuple[str, ...] = ()
    input_pattern: str | None = Field(
        default=None, description="regex of input topics, e.g. ^ztf_[0-9]{8}_programid1$"
    )
    output_topic: str = "ztf_btsbot_scored"
    dead_letter_topic: str = "ztf_btsbot_dead_letters"
    compact_topic: str | None = None
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    # Any librdkafka property (security.protocol, sasl.*, ssl.*...), applied to every
    # client. Values are secrets: they are never logged.
    properties: dict[str, SecretStr] = Field(default_factory=dict)
    startup_timeout_s: float = Field(
        default=300.0,
        gt=0,
        description="how long start-up waits for unreachable brokers before exiting "
        "(not ready meanwhile); credential, TLS and topic problems exit at once",
    )

    @model_validator(mode="after")
    def _has_input(self) -> KafkaSettings:
        if not self.input_topics and not self.input_pattern:
            raise ValueError("set kafka.input_topics or kafka.input_pattern")
        if self.input_pattern is not None:
            try:
                re.compile(self.input_pattern)
            except re.error as exc:
                raise ValueError(f"kafka.input_pattern is not a regex: {exc}") from exc
            if re.search(r"\\[dDwWsS]", self.input_pattern):
                # librdkafka's regex engine has no Perl classes: \d silently matches nothing.
                raise ValueError(
                    "kafka.input_pattern: librdkafka regexes have no \\d, \\w or \\s; "
                    "write [0-9], [A-Za-z0-9_] or [[:space:]] (e.g. ^ztf_[0-9]{8}_programid1$)"
                )
        return self

    def client_properties(self) -> dict[str, str]:
        return {k: v.get_secret_value() for k, v in self.properties.items()}


class DeliverySettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["at-least-once", "exactly-once"] = "at-least-once"
    max_in_flight: int = Field(default=2048, ge=1, description="alerts consumed, not committed")
    commit_interval_ms: int = Field(default=1000, ge=10)
    transactional_id: str | None = Field(
        default=None, description="exactly-once: stable per instance (default: group + host)"
    )


class RegistrySettings(BaseModel):
    """How wire-format decoding talks to the schema registry (``schema_registry``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout_s: float = Field(default=5.0, gt=0, description="one HTTP request")
    retry_backoff_max_s: float = Field(
        default=10.0, gt=0, description="registry away: longest wait between retries"
    )
    unknown_retries: int = Field(
        default=2, ge=0, description="404: asks again this often (1 s apart) before schema_unknown"
    )
    unknown_ttl_s: float = Field(
        default=60.0, ge=0, description="an id found unknown stays unknown this long (no request)"
    )


class ObservabilitySettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    metrics_port: int | None = Field(default=9108, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    log_repeat_interval_s: float = Field(
        default=30.0, ge=0, description="identical Kafka client errors: one line per interval"
    )


class DecideSettings(BaseModel):
    """The decision stage (``btsbot-stream decide``): per-object policies over the scored
    topic (``kafka.output_topic``), candidate events out. See docs/design.md."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    group_id: str = Field(default="btsbot-decide", description="its own consumer group")
    candidates_topic: str = Field(
        default="ztf_btsbot_candidates",
        description="candidate events out (JSON, key objectId); watch and web read them",
    )
    state_dir: Path = Field(default=Path("state"), description="local RocksDB state")
    retention_days: float = Field(
        default=60.0, gt=0, description="objects with no alert for this long (jd) expire"
    )
    processing_guarantee: Literal["exactly-once", "at-least-once"] = Field(
        default="exactly-once",
        description="exactly-once: each (object, policy) event once for read_committed "
        "readers; at-least-once: a crash can repeat an event",
    )
    commit_interval_s: float = Field(
        default=1.0, gt=0, description="checkpoint (transaction) interval"
    )
    policies: tuple[PolicySpec, ...] = BUILTIN_POLICIES

    @model_validator(mode="after")
    def _unique_policy_names(self) -> DecideSettings:
        names = [p.name for p in self.policies]
        if not names:
            raise ValueError("decide.policies is empty: nothing would ever fire")
        if len(set(names)) != len(names):
            raise ValueError(f"decide.policies: a name is used twice in {names}")
        return self


_MiB = 1024 * 1024


class LimitSettings(BaseModel):
    """What one input may demand, checked before anything is allocated for it.

    Defaults are far above real ZTF alerts (measured on the team's 721 real packets of
    schemas 1.8 to 4.02: largest message 90 kB, stamp 20 kB inflated, schema text 26 kB
    nested 10 deep, one record per container, 196 history points); an input beyond one is
    a dead letter (an error line in ``score``) whose reason names the limit.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_message_bytes: int = Field(
        default=4 * _MiB, ge=1, description="one input message or file (reason message_too_large)"
    )
    max_block_bytes: int = Field(
        default=16 * _MiB,
        ge=1,
        description="Avro data of one message after decompression, all blocks together "
        "(reason avro_block_too_large)",
    )
    max_records: int = Field(
        default=1000, ge=1, description="records in one message (reason avro_too_many_records)"
    )
    max_array_items: int = Field(
        default=10_000,
        ge=1,
        description="array and map items of one record, all together (reason array_too_long)",
    )
    max_stamp_bytes: int = Field(
        default=1 * _MiB,
        ge=1,
        description="one cutout's FITS after gunzip (reason cutout_too_large)",
    )
    max_schema_bytes: int = Field(
        default=1 * _MiB,
        ge=1,
        description="one writer schema's JSON text (reason schema_too_large)",
    )
    max_nesting_depth: int = Field(
        default=100,
        ge=4,
        description="nesting of a schema's JSON and of its values (records, arrays, maps; "
        "named and recursive types included) (reason avro_too_deep)",
    )
    schema_cache_size: int = Field(
        default=64, ge=1, description="distinct writer schemas kept parsed (least recent dropped)"
    )


class PreparationSettings(BaseModel):
    """Decode + stamps + features: in worker processes, or in a thread of this process
    (``btsbot-stream run``, ``score`` and ``bench`` alike). See docs/design.md."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    processes: Annotated[int, Field(ge=0)] | Literal["auto"] = Field(
        default="auto",
        description="worker processes; 0: a thread of this process; auto: 0 on one core, "
        "the cores less one with a GPU, on a CPU the cores engine.threads leaves (every "
        "core when threads is 0 or all of them: workers and inference share them)",
    )
    slots: int = Field(
        default=3,
        ge=2,
        description="batches the workers may hold at once in shared memory "
        "(each batch_size x 47.7 kB); more wait for one to free",
    )


class ServiceSettings(BaseSettings):
    """Everything ``btsbot-stream run`` needs."""

    model_config = SettingsConfigDict(
        env_prefix="BTSBOT_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    kafka: KafkaSettings
    engine: EngineSettings = EngineSettings()
    delivery: DeliverySettings = DeliverySettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    decide: DecideSettings = DecideSettings()

    limits: LimitSettings = LimitSettings()
    preparation: PreparationSettings = PreparationSettings()
    schema_dir: Path | None = None
    schema_registry: str | None = None
    registry: RegistrySettings = RegistrySettings()

    def redacted(self) -> dict[str, Any]:
        """For logs: properties shown by name only, no password in the registry URL."""
        data = self.model_dump(mode="json")
        data["kafka"]["properties"] = {k: "***" for k in self.kafka.properties}
        if self.schema_registry is not None:
            data["schema_registry"] = redact_url(self.schema_registry)
        return data


def redact_url(url: str) -> str:
    """``https://user:secret@host/x`` -> ``https://***@host/x`` (credentials never logged)."""
    return re.sub(r"(?<=://)[^/@]*@", "***@", url)


def read_file(path: Path) -> dict[str, Any]:
    """A TOML or YAML config file as a dict."""
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except Exception as exc:
        # Never the parser's own text: YAML quotes the offending line, which may hold a
        # password. Where and what kind of problem is enough to fix it.
        raise ConfigError(f"config file {path} does not parse: {_parse_problem(exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a table/mapping at the top")
    return data


def _parse_problem(exc: Exception) -> str:
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:  # yaml.MarkedYAMLError: problem + position, not the snippet
        problem = getattr(exc, "problem", None) or "syntax error"
        problem = re.sub(r"'[^']*'|\"[^\"]*\"", "'...'", problem)  # e.g. an alias name
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    if isinstance(exc, tomllib.TOMLDecodeError):
        return str(exc)  # "Expected ... (at line 3, column 9)": never the content
    return type(exc).__name__


def load(path: Path | None = None) -> ServiceSettings:
    """Settings from the environment over the file; ConfigError says what is wrong."""
    base = read_file(path) if path else {}
    try:
        return _with_file_below_env(ServiceSettings, base)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {_problems(exc)}") from exc


class _DecideOnly(BaseSettings):
    """The ``decide`` section alone (``decide --replay`` needs no Kafka settings)."""

    model_config = SettingsConfigDict(
        env_prefix="BTSBOT_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    decide: DecideSettings = DecideSettings()


def load_decide(path: Path | None = None) -> DecideSettings:
    """The decide settings from the environment over the file's [decide] section."""
    base = read_file(path) if path else {}
    try:
        return _with_file_below_env(_DecideOnly, base).decide
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {_problems(exc)}") from exc


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


_S = TypeVar("_S", bound=BaseSettings)


def _with_file_below_env(settings_cls: type[_S], file_values: dict[str, Any]) -> _S:
    # pydantic-settings gives init kwargs the highest priority; we want the environment
    # to win over the file, so the file goes in as the lowest-priority source.
    from pydantic_settings import InitSettingsSource, PydanticBaseSettingsSource

    class _Settings(settings_cls):  # type: ignore[valid-type,misc]
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (env_settings, InitSettingsSource(settings_cls, file_values))

    return _Settings()


# -- follow-up tools (btsbot-stream watch / web) ------------------------------------------
# Their CLI options read these defaults; env vars BTSBOT_WATCH__*, BTSBOT_WEB__* (the CLI
# options name them in --help). They read the scored topic (``kafka.output_topic``) and the
# decision stage's events (``decide.candidates_topic``).


class WatchSettings(BaseModel):
    """``btsbot-stream watch``: a follow-up team's subscription."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    group_id: str = "btsbot-watch"
    stream: Literal["scored", "candidates", "both"] = "scored"
    start: Literal["earliest", "latest"] = Field(
        default="latest", description="where a group with no committed offset begins"
    )
    dedup_memory: int = Field(default=100_000, ge=1, description="candids remembered")
    commit_interval_ms: int = Field(default=1000, ge=10)


class WebSettings(BaseModel):
    """``btsbot-stream web``: the scanning page and its JSON API."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(default="127.0.0.1", description="0.0.0.0 only behind a proxy/token")
    port: int = Field(default=8080, ge=1, le=65535)
    metrics_port: int = Field(
        default=9108, ge=0, le=65535, description="/metrics, /healthz, /readyz; 0: any free"
    )
    window_hours: float = Field(default=48.0, gt=0, description="keep alerts published since")
    window_alerts: int = Field(default=100_000, ge=1, description="keep at most this many")
    token: SecretStr | None = Field(default=None, description="require it (Bearer/cookie)")
    page_size: int = Field(default=50, ge=1, le=1000)
    fetch_cache: int = Field(default=256, ge=0, description="alert messages kept for pages")
