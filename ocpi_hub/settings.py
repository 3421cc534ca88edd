"""Every knob of the platform, read once from the environment.

Each setting is an environment variable ``OCPI_HUB_<NAME>`` with a safe local
default. ``make up`` writes the addresses of the services it started to
``data/run/services.env``; that file is read too, and real environment
variables win over it.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OCPI_HUB_",
        env_file="data/run/services.env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    # --- services -----------------------------------------------------------
    kafka_bootstrap: str = "127.0.0.1:9092"
    mongo_url: str = "mongodb://127.0.0.1:27017"
    mongo_db: str = "ocpi_hub"
    # The async client of view reads (API, gateway, push, CDR builder): how
    # long an operation waits for a server to be selected, and the most any
    # one read may take in all (pymongo's timeoutMS), queueing included, so a
    # stalled MongoDB fails a request (OCPI 3000, retry) instead of holding it
    # (ocpi_hub/bootstrap.py: async_mongo_client, docs/adr/0026). Generous:
    # on the local store, 32 pages of 500 in flight already wait 10-20 s.
    mongo_server_selection_timeout_s: float = Field(default=3.0, gt=0)
    mongo_operation_timeout_s: float = Field(default=30.0, gt=0)
    mysql_url: str = "mysql+pymysql://ocpi:ocpi@127.0.0.1:3306/ocpi_hub"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Connections per process; a command finding them all busy waits up to
    # redis_pool_timeout_s for one (ocpi_hub/bootstrap.py: redis_client).
    redis_max_connections: int = Field(default=100, ge=1)
    redis_pool_timeout_s: float = Field(default=5.0, gt=0)

    # --- topics -------------------------------------------------------------
    # Prepended to every topic, consumer group and Faust app id, so that
    # several isolated platforms (tests, staging) can share one cluster.
    topic_prefix: str = ""
    topic_replication_factor: int = Field(default=1, ge=1)

    # --- HTTP API -----------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # The URL partners reach us at; OCPI endpoints are published under it.
    public_url: str = ""
    # A partner request waits at most this long for Kafka's acknowledgement.
    produce_timeout_s: float = Field(default=10.0, gt=0)
    # The largest event we append, in bytes, and so the largest request body
    # (HTTP 413 beyond it; docs/adr/0027). It is the producer's
    # max_request_size and must not exceed the topics' max.message.bytes
    # (Kafka's default, 1,048,588, which make up and compose keep).
    max_message_bytes: int = Field(default=1_048_576, ge=1024)
    # How far ahead of our clock a last_updated may be (docs/adr/0027): later
    # stamps would make every real update of the object "stale". Five
    # minutes, the skew Kerberos tolerates, covers unsynchronised clocks.
    max_clock_skew_s: float = Field(default=300.0, ge=0)
    # The most objects one page of a Sender list holds (announced in X-Limit).
    page_limit: int = Field(default=500, ge=1, le=5000)
    # How long a read of one object waits for the view to show the object's
    # last acknowledged write before answering "retry" (docs/adr/0022).
    read_own_writes_timeout_s: float = Field(default=5.0, gt=0)
    # The write path (docs/adr/0022). A write waits at most write_hold_timeout_s
    # for its object while another writer holds it; a holder that never comes
    # back loses it after write_hold_ttl_s (keep it above produce_timeout_s);
    # after an append with no answer from Kafka, the object stays held
    # write_fate_window_s before the next writer reads the log back.
    write_hold_timeout_s: float = Field(default=5.0, gt=0)
    write_hold_ttl_s: float = Field(default=30.0, gt=0)
    # The producer stops retrying a batch produce_timeout_s after it was
    # made, and the append gives up then; a request sent just before that
    # can still be answered for up to produce_timeout_s. So the window is at
    # least produce_timeout_s (10 s), with a margin.
    write_fate_window_s: float = Field(default=12.0, ge=0)
    # A write that changes how a partner is found (a registration, a token
    # rotation) waits at most this long for every API process to confirm it
    # dropped its cached lookups (docs/adr/0024).
    write_settle_timeout_s: float = Field(default=1.0, gt=0)
    # Each API process caches the partner behind each token. It uses the
    # cache only while it has heard from Redis within partner_cache_lease_s,
    # so a rotated or unregistered token is never accepted from a cache
    # later than this after the change, even by a frozen process.
    partner_cache_lease_s: float = Field(default=1.0, gt=0)
    partner_cache_size: int = Field(default=10_000, ge=1)
    # Public QR discovery (``/public/evses/{evse_id}``, no authentication):
    # each client IP may make this many requests per fixed window.
    public_rate_limit_requests: int = Field(default=60, ge=1)
    public_rate_limit_window_s: int = Field(default=60, ge=1)
    # Reverse proxies in front of the API (addresses or networks, JSON list
    # in the environment): from these, ``X-Forwarded-For`` names the client.
    public_trusted_proxies: list[IPv4Network | IPv6Network] = Field(default_factory=list)
    # API processes behind the one port (`ocpi-hub api --workers`): uvicorn's
    # supervisor binds it and restarts a worker that dies; each worker opens
    # its own Kafka, MongoDB, MySQL and Redis clients (docs/scale-out.md).
    api_workers: int = Field(default=1, ge=1, le=64)

    # --- the admin dashboard (/admin, api/admin/, docs/adr/0033) -------------
    # A browser session ends after admin_session_idle_s without a request,
    # and admin_session_absolute_s after sign-in whatever happens.
    admin_session_idle_s: int = Field(default=1800, ge=60)
    admin_session_absolute_s: int = Field(default=43_200, ge=60)
    # The session cookie's Secure flag: "auto" sets it when the request came
    # over TLS (behind a proxy: uvicorn's --forwarded-allow-ips makes the
    # scheme the proxy's); "always" when TLS ends at a proxy we do not trust
    # for headers; "never" only for local tests over plain HTTP.
    admin_cookie_secure: Literal["auto", "always", "never"] = "auto"
    # Sign-in attempts per window, counted in Redis before the password is
    # checked: per login (slows guessing one account's password) and per
    # client address (slows spraying many accounts from one place).
    admin_login_attempts_per_login: int = Field(default=5, ge=1)
    admin_login_attempts_per_client: int = Field(default=20, ge=1)
    admin_login_window_s: int = Field(default=900, ge=1)
    # The status board holds at most this many EVSEs (filters narrow it);
    # beyond, it says how many it leaves out.
    admin_board_max_evses: int = Field(default=5000, ge=1)
    # Status changes each API process keeps to hand a (re)connecting board
    # what it missed; older gaps make the board load afresh.
    admin_live_buffer: int = Field(default=10_000, ge=100)
    # The board's status feed stops this long after the last board left
    # (api/admin/live.py, OnDemandFeed); the next board starts it again.
    admin_live_idle_s: float = Field(default=300.0, gt=0)
    # The locations map (docs/adr/0034): Leaflet as `make up` fetched it
    # (deploy/local/infra.py), and map tiles only where a tile server is
    # reachable: "https://tile.example/{z}/{x}/{y}.png" in production; empty,
    # markers on a plain background.
    admin_map_assets_dir: str = "data/cache/leaflet-1.9.4"
    admin_map_tile_url: str = Field(default="", pattern=r"^(https://[^\s\"'<>]+)?$")
    admin_map_tile_attribution: str = Field(default="", max_length=200)
    # The charts' sample of the platform: one per interval for the whole
    # deployment (api/admin/charts.py), a day of them kept.
    admin_chart_sample_s: float = Field(default=60.0, ge=1)

    # --- who we are (credentials.asciidoc, CredentialsRole) -----------------
    party_country_code: str = Field(default="ZZ", pattern=r"^[A-Z]{2}$")
    party_id: str = Field(default="HUB", pattern=r"^[A-Z0-9]{3}$")
    business_name: str = "ocpi-hub (local)"
    # The OCPI versions we offer partners, comma-separated (docs/adr/0045):
    # /ocpi/versions lists them, registration picks the highest one both
    # sides speak, routes of a version not offered answer 3002. "2.1.1"
    # (or "2.3.0") alone pins the platform to it (the e2e tier's partners).
    ocpi_versions: str = Field(default="2.1.1,2.2.1,2.3.0", pattern=r"^\d+(\.\d+)+(,\d+(\.\d+)+)*$")
    # Fernet key for the partner tokens we store; empty: a key file made on
    # first use under data/ (never leaves the machine).
    secret_key: str = ""
    secret_key_file: str = "data/secret.key"  # noqa: S105 - a path, not a secret
    # How long a call to a partner's OCPI API may take.
    outbound_timeout_s: float = Field(default=10.0, gt=0)
    # Partner-supplied URLs (versions, endpoints, response_url) must resolve
    # to public addresses only (producers/url_policy.py, docs/adr/0039);
    # true lets us call loopback and private addresses too: local
    # development and the tests, where every party runs on 127.0.0.1.
    url_policy_allow_private: bool = False

    # --- billing (issue 14, docs/adr/0035) ------------------------------------
    # How long a member's activation link works.
    billing_invitation_valid_s: float = Field(default=72 * 3600.0, gt=0)
    # The billing worker closes the previous month (its invoices) on this day
    # of the month (UTC) or later when it is not closed yet; 0 (the default):
    # only `ocpi-hub billing close-month` and the ops route close (docs/adr/0036).
    billing_close_day: int = Field(default=0, ge=0, le=28)
    # How often the worker looks whether a month is due.
    billing_close_check_s: float = Field(default=300.0, gt=0)
    # Four eyes on refunds (docs/adr/0041): a credit note is approved by
    # another operator than the one who requested it. Off only where one
    # person does the billing alone.
    billing_credit_note_four_eyes: bool = True
    # The SMTP server the mailer hands e-mails to: locally the one `make up`
    # starts (deploy/local/infra.py), in production any (STARTTLS and a
    # login when set).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    mail_from: str = "ocpi-hub billing <billing@ocpi-hub.invalid>"
    # An e-mail the server refused or never took is tried again after
    # mail_retry_initial_s, doubling up to mail_retry_max_s, at most
    # mail_max_attempts times in all.
    mail_retry_initial_s: float = Field(default=1.0, gt=0)
    mail_retry_max_s: float = Field(default=60.0, gt=0)
    mail_max_attempts: int = Field(default=8, ge=1)
    # The seller on our invoices and credit notes (producers/invoice_documents.py,
    # docs/adr/0037): who we are and where we are paid. The local defaults are
    # placeholders that pass the formats' checks (a Dutch VAT id and IBAN
    # with valid check digits); production sets every one of them.
    billing_seller_legal_name: str = Field(default="ocpi-hub B.V. (local)", min_length=1)
    billing_seller_street: str = Field(default="Stationsplein 1", min_length=1)
    billing_seller_postal_code: str = Field(default="1012 AB", min_length=1)
    billing_seller_city: str = Field(default="Amsterdam", min_length=1)
    billing_seller_country: str = Field(default="NL", pattern=r"^[A-Z]{2}$")
    billing_seller_vat_id: str = Field(default="NL000099998B57", min_length=3)
    billing_seller_registration_id: str = Field(default="12345678", min_length=1)
    billing_seller_email: str = Field(default="billing@ocpi-hub.invalid", min_length=3)
    billing_seller_iban: str = Field(default="NL91ABNA0417164300", min_length=15)
    billing_seller_bic: str = Field(default="ABNANL2A", min_length=8, max_length=11)
    # The TrueType fonts the invoice PDF embeds (a PDF/A document embeds its
    # fonts; these have the euro sign). Debian's fonts-dejavu-core, which
    # `make up` and the image install; the bytes of a PDF depend on them.
    billing_pdf_font_regular: str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    billing_pdf_font_bold: str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"

    # --- processors (Faust) -------------------------------------------------
    faust_store: str = "memory://"
    # Faust's local state (one folder per app id), kept out of the work tree.
    faust_datadir: str = "data/faust/{conf.name}"
    faust_session_timeout_s: float = 6.0
    faust_heartbeat_interval_s: float = 1.0
    faust_web_port: int = 6066
    # Sessions at our chargers (processors/session_lifecycle.py, ADR 0015):
    # the meter register wraps to 0 after this many Wh (0: it never wraps; a
    # lower reading is a meter reset), and the currency of our sessions.
    session_meter_rollover_wh: int = Field(default=0, ge=0)
    session_currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")

    # --- projections --------------------------------------------------------
    projection_batch_size: int = Field(default=1000, ge=1)
    projection_poll_ms: int = Field(default=200, ge=1)
    # Once a poll returns events, what else arrives within this many ms
    # joins the same batch (projections/runner.py, _gathered; 0: none).
    projection_linger_ms: int = Field(default=100, ge=0)
    # Events per batch of `ocpi-hub replay`: a bigger batch coalesces more
    # events of one document into one write (docs/adr/0025); two batches are
    # in memory, about 3.3 KB per decoded event.
    projection_replay_batch_size: int = Field(default=50_000, ge=1)
    # Location documents the view's writer keeps in memory to stand in for
    # the read before its next write (about 20 KB each; 0: always read).
    projection_document_cache: int = Field(default=10_000, ge=0)
    # A view store that is away (connection lost, failover, deadlock) is
    # retried after initial, 2x, 4x, ... capped at max seconds, for as long
    # as it takes; its events are never quarantined for it (docs/adr/0028).
    projection_retry_initial_s: float = Field(default=0.5, gt=0)
    projection_retry_max_s: float = Field(default=30.0, gt=0)

    # --- push to partners (`ocpi-hub push`, docs/adr/0008) -------------------
    # How often the registered partners are read again (new, changed, gone).
    push_refresh_s: float = Field(default=10.0, gt=0)
    # A failed delivery is retried after initial, 2x, 4x, ... capped at max.
    push_retry_initial_s: float = Field(default=1.0, gt=0)
    push_retry_max_s: float = Field(default=300.0, gt=0)
    # Give up on one change after retrying it this long and move on (the
    # partner re-syncs with GET); 0 keeps retrying while the partner is
    # registered, so nothing is skipped.
    push_give_up_after_s: float = Field(default=0.0, ge=0)
    push_poll_ms: int = Field(default=500, ge=1)
    # A new partner's lane starts at its registration's record time less
    # this margin (clocks of several machines disagree a little); never
    # more than backfill_max before now (a lane added for an old partner).
    push_start_margin_s: float = Field(default=5.0, ge=0)
    push_backfill_max_s: float = Field(default=3600.0, ge=0)
    # A PATCH the partner refuses as unknown is followed by a PUT of the whole
    # object, read from its view once the view has applied that PATCH's event
    # (docs/adr/0042); how long the lane waits for the view to get there.
    push_repair_view_wait_s: float = Field(default=30.0, gt=0)

    # --- AFIR national access point feed (docs/afir.md, docs/adr/0048) -------
    # Who publishes (publicationCreator: our country and this identifier, by
    # default "<country>-<party>") and the language of the texts.
    afir_national_identifier: str = ""
    afir_lang: str = Field(default="en", pattern=r"^[a-z]{2}$")
    afir_table_id: str = "ocpi-hub-energy-infrastructure"
    # The access point's credential for GET /afir/v3/*: a bearer token, or
    # HTTP basic user and password; none set answers every request 401.
    # SecretStr: never printed, logged or shown in a repr; empty is unset.
    afir_pull_token: SecretStr = SecretStr("")
    afir_pull_user: str = ""
    afir_pull_password: SecretStr = SecretStr("")
    # Where deltas are pushed (POST, JSON), checked by our URL policy
    # (producers/url_policy.py) at every send; empty: no push. Our client
    # credential there: a bearer token or basic user and password.
    afir_push_url: str = ""
    afir_push_token: SecretStr = SecretStr("")
    afir_push_user: str = ""
    afir_push_password: SecretStr = SecretStr("")
    # A failed delivery is retried after initial, 2x, 4x, ... capped at max,
    # until it is delivered (at least once; the next one waits).
    afir_push_retry_initial_s: float = Field(default=0.5, gt=0)
    afir_push_retry_max_s: float = Field(default=60.0, gt=0)
    afir_push_timeout_s: float = Field(default=10.0, gt=0)
    # A delta is read from the AFIR view once the view has applied its
    # event; how long the pusher waits for that before it tries again.
    afir_push_view_wait_s: float = Field(default=30.0, gt=0)
    afir_push_poll_ms: int = Field(default=200, ge=1)

    # --- pull sync (`ocpi-hub partners sync-<module>`, producers/pull_sync.py)
    # Sessions and CDRs are asked for from this many days ago when no
    # --since is given: a month of billing and a day of slack (docs/adr/0042).
    pull_sync_default_days: float = Field(default=31.0, gt=0)

    # --- tokens: real-time authorization (producers/authorization.py) --------
    # How long an eMSP's real-time answer is reused for the same token and
    # location before the eMSP is asked again.
    authorization_cache_ttl_s: float = Field(default=30.0, gt=0)
    # A real-time authorization call to an eMSP waits at most this long;
    # then the whitelist type decides as if the eMSP were offline.
    authorization_timeout_s: float = Field(default=3.0, gt=0)

    # --- CDRs (producers/cdrs.py, docs/adr/0016) ------------------------------
    # A received CDR whose total_cost (excl. VAT) differs from our own price
    # of it by more than this, in its currency, is flagged as a discrepancy.
    cdr_reconciliation_tolerance: Decimal = Field(default=Decimal("0.01"), ge=0)
    # The CDR builder waits this long for the location of a completed
    # session to be in the view before it gives up on that session (logged).
    cdr_location_wait_s: float = Field(default=60.0, gt=0)

    # --- commands as CPO (docs/adr/0017) --------------------------------------
    # The timeout we announce in CommandResponse and enforce: a command the
    # charger has not answered this long after acceptance is a TIMEOUT.
    command_timeout_s: int = Field(default=30, ge=1)
    # How often the results processor looks for commands past their deadline.
    command_deadline_scan_s: float = Field(default=1.0, gt=0)
    # The callback sender retries a CommandResult POST (transport errors,
    # HTTP 5xx) with the push backoff for this long, then gives up (logged).
    command_callback_give_up_s: float = Field(default=600.0, gt=0)
    # --- charging profiles as CPO (docs/adr/0043) -----------------------------
    # The timeout we announce in ChargingProfileResponse and enforce (a
    # request the charger has not answered by then is UNKNOWN); its deadline
    # scan is the commands' (command_deadline_scan_s).
    charging_profile_timeout_s: int = Field(default=30, ge=1)
    # A second request of one session and action within this many seconds
    # is answered TOO_OFTEN (0: no bound).
    charging_profile_min_interval_s: float = Field(default=0.0, ge=0)
    # The OCPP stackLevel of the TxProfiles we set for partners.
    charging_profile_stack_level: int = Field(default=1, ge=0)
    # How far ahead the ActiveChargingProfile we PUT after a change reaches
    # (mod_charging_profiles advises 5 to 60 minutes).
    charging_profile_active_duration_s: int = Field(default=3600, ge=60)
    # --- reservations of our chargers (docs/adr/0021) --------------------------
    # How often the reservation-expiry processor looks for reservations past
    # their expiry, and how long after the expiry it states it (the gateway
    # honours a reservation until the expiry by its own clock; the grace lets
    # a StartTransaction recorded at the last moment come first).
    reservation_expiry_scan_s: float = Field(default=1.0, gt=0)
    reservation_expiry_grace_s: float = Field(default=5.0, ge=0)
    # --- OCPP 1.6J gateway (`ocpi-hub gateway`, docs/adr/0018) ---------------
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8180
    # Names this gateway process: its presence in Redis and its consumer
    # group of command events (one per process: every gateway sees every
    # command and only the holder of the charger's connection acts).
    gateway_id: str = Field(default="gateway-1", min_length=1, max_length=100)
    # The Heartbeat interval we tell chargers at boot; presence lasts 3x this.
    ocpp_heartbeat_interval_s: int = Field(default=60, ge=1)
    # Connections one gateway process takes; beyond, HTTP 503 before any
    # work. bench.chargers held 4,000 at a 10 s heartbeat on 2 cores and
    # collapsed near 5,000 (bench/README.md); the load is per heartbeat, so
    # a longer interval allows more.
    gateway_max_connections: int = Field(default=4000, ge=1)
    # The dashboard's recent OCPP messages (docs/adr/0038): about this many
    # are kept per charger in Redis, and at most this many wait in a
    # gateway's memory for Redis (beyond, new ones are dropped and counted,
    # so a slow Redis never holds up a charger).
    ocpp_message_log_length: int = Field(default=50, ge=1, le=10_000)
    ocpp_message_log_queue: int = Field(default=10_000, ge=1)

    # --- the process ---------------------------------------------------------
    # Allocations between two young collections of Python's cyclic garbage
    # collector (Python's default: 700; 0 leaves the defaults alone). Each
    # process also freezes what it holds after its start (docs/adr/0050).
    gc_young_threshold: int = Field(default=10_000, ge=0)

    # --- logging ------------------------------------------------------------
    log_format: Literal["json", "console"] = "json"
    log_level: str = "INFO"

    # --- timeouts of every external call (issue 12; ocpi_hub/bootstrap.py) ----
    # A dependency that stalls fails the call that waits on it (an OCPI 3000
    # "retry" in the API, a retry with backoff in the projections) instead of
    # holding a worker for ever. Redis: a command's reply and a connection;
    # above 1 s, the longest BLPOP the write path issues (decision_store.py).
    redis_socket_timeout_s: float = Field(default=3.0, gt=1.0)
    redis_connect_timeout_s: float = Field(default=3.0, gt=0)
    # MariaDB (pymysql): the connection, and each read or write on its
    # socket: for requests (the ops lists and session rows are paged and
    # indexed), and for the view writers (projections, replay: a batch of
    # up to 50,000 events is one transaction).
    mysql_connect_timeout_s: int = Field(default=5, ge=1)
    mysql_read_timeout_s: int = Field(default=10, ge=1)
    mysql_write_timeout_s: int = Field(default=10, ge=1)
    mysql_view_writer_timeout_s: int = Field(default=120, ge=1)
    # MongoDB: a connection, on both clients; and a socket read of the sync
    # client (projections, replay, CLI), whose operations have no overall
    # bound (a replay batch of 50,000 events is written in large bulks).
    mongo_connect_timeout_s: float = Field(default=5.0, gt=0)
    mongo_socket_timeout_s: float = Field(default=120.0, gt=0)
    # A long-running part of a process (the projections' loop, the push
    # pushers, the gateway's command consumer) that fails on a lost Kafka,
    # MongoDB or Redis starts again after initial, 2x, 4x, ... capped at
    # max seconds, instead of ending the process (ocpi_hub/retrying.py).
    restart_initial_s: float = Field(default=0.5, gt=0)
    restart_max_s: float = Field(default=30.0, gt=0)

    # --- /readyz (api/health.py, docs/adr/0030) ------------------------------
    # Each check is awaited at most readyz_check_timeout_s per poll; a check
    # still running is not started again (one in flight per kind), and an
    # answer is reused for readyz_cache_s, the log's groups and lag for
    # readyz_kafka_cache_s: polls every second cost the dependencies nothing.
    readyz_check_timeout_s: float = Field(default=3.0, gt=0)
    readyz_cache_s: float = Field(default=1.0, ge=0)
    readyz_kafka_cache_s: float = Field(default=5.0, ge=0)
    # A failed append to a partition makes the API unready for this long
    # unless an append there succeeds again.
    readyz_append_failure_window_s: float = Field(default=60.0, gt=0)

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.api_host}:{self.api_port}"

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    @field_validator("ocpi_versions")
    @classmethod
    def _versions_we_speak(cls, value: str) -> str:
        from schemas.ocpi.adapters import WIRES  # the settings load before anything else

        unknown = [v for v in value.split(",") if v.strip() not in WIRES]
        if unknown:
            raise ValueError(f"OCPI versions we cannot speak: {unknown}; we can: {sorted(WIRES)}")
        return value

    @property
    def afir_publisher_id(self) -> str:
        return self.afir_national_identifier or f"{self.party_country_code}-{self.party_id}"

    @property
    def offered_versions(self) -> tuple[str, ...]:
        """``ocpi_versions`` as a tuple, in the order given."""
        return tuple(v.strip() for v in self.ocpi_versions.split(",") if v.strip())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
