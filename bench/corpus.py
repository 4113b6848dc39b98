"""A deterministic generator of natural-ish memory sentences, for embedding benchmarks.

`corpus(n, seed)` returns n distinct sentences of the kind an agent might store: people and their
roles, projects, hosts and ports, environment variables, error codes and their fixes, tickets,
versions, preferences, meetings and decisions. About one in seven is Chinese (mixed with the
identifiers Chinese teams write in Latin letters). Filling ~140 templates from vocabularies of
tens to thousands of values gives far more than 10**12 combinations, so a million distinct
sentences come out of the stream with almost no duplicates to skip.

Determinism matters more than beauty here: embeddings of the corpus are cached on disk keyed by
the seed and `digest(seed)`, a hash of the first sentences the generator produces, so any edit to
the vocabularies, templates or sampling invalidates old caches instead of silently mixing two
corpora (while edits to comments and formatting do not). `corpus(n)` is a prefix of
`corpus(m)` for n < m (same seed), which lets a cache built for 1M serve 10k and 100k.
"""

# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Callable, Iterator
from random import Random

SEED = 20240611

ZH_SHARE = 0.14  # fraction of Chinese sentences

# --- vocabularies ----------------------------------------------------------------------------------

FIRST_NAMES = (
    "Alice", "Bob", "Carmen", "Dmitri", "Esther", "Farid", "Grace", "Hiro", "Ingrid", "Jamal", "Keiko", "Lars",
    "Maya", "Nikolai", "Olga", "Priya", "Quentin", "Rosa", "Sanjay", "Tomás", "Uma", "Viktor", "Wen", "Ximena",
    "Yusuf", "Zoe", "Aaron", "Beatriz", "Chloe", "Diego", "Elena", "Felix", "Gabriel", "Hannah", "Ivan", "Julia",
    "Kwame", "Leila", "Marco", "Nadia", "Oscar", "Paula", "Rahul", "Sofia", "Theo", "Valentina", "William", "Yara",
    "Amir", "Bianca", "Connor", "Daria", "Emeka", "Fatima", "Gustavo", "Hana", "Isaac", "Jun", "Kenji", "Lucia",
    "Mateo", "Noor", "Omar", "Petra", "Ravi", "Sven", "Tariq", "Ursula", "Vera", "Wei", "Xavier", "Yuki",
)  # fmt: skip
LAST_NAMES = (
    "Nguyen", "Smith", "Garcia", "Müller", "Rossi", "Kowalski", "Tanaka", "Okafor", "Ivanova", "Haddad",
    "Johansson", "Silva", "Chen", "Patel", "Kim", "Dubois", "O'Brien", "Novak", "Andersen", "Yilmaz", "Schmidt",
    "Fernandez", "Lindqvist", "Moreau", "Ahmed", "Kaur", "Petrov", "Costa", "Wright", "Sato", "Mendes", "Bauer",
    "Horvat", "Cohen", "Reyes", "Lambert", "Walsh", "Nakamura", "Osei", "Popescu", "Virtanen", "Zhang", "Park",
    "Hughes", "Jensen", "Eriksson", "Romero", "Suzuki", "Ward", "Vargas",
)  # fmt: skip
ZH_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
ZH_GIVEN = (
    "伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "霞", "平", "刚",
    "桂英", "晓东", "丽华", "建国", "子涵", "浩然", "思远", "雨桐", "一鸣", "佳怡", "欣怡", "梓轩", "宇航", "嘉欣",
)  # fmt: skip
ROLES = (
    "backend engineer", "frontend engineer", "tech lead", "product manager", "site reliability engineer",
    "data scientist", "designer", "QA engineer", "engineering manager", "security engineer", "database admin",
    "intern", "CTO", "support lead", "data engineer", "mobile developer", "solutions architect", "release manager",
    "on-call engineer", "platform engineer", "technical writer", "scrum master", "ML engineer", "team lead",
)  # fmt: skip
ZH_ROLES = (
    "后端工程师", "前端工程师", "技术负责人", "产品经理", "运维工程师", "数据科学家", "设计师", "测试工程师",
    "研发经理", "安全工程师", "数据库管理员", "实习生", "架构师", "项目经理", "算法工程师", "客服主管",
)  # fmt: skip
TEAMS = (
    "platform", "payments", "growth", "infra", "mobile", "data", "security", "support", "search", "identity",
    "billing", "observability", "developer experience", "checkout", "risk", "ML platform", "core API", "frontend",
)  # fmt: skip
ZH_TEAMS = ("平台组", "支付组", "增长组", "基础架构组", "移动端组", "数据组", "安全组", "客服组", "搜索组", "风控组")
PROJECTS = (
    "Atlas", "Borealis", "Cobalt", "Dynamo", "Ember", "Falcon", "Gemini", "Helix", "Iris", "Juniper", "Kestrel",
    "Lumen", "Meridian", "Nimbus", "Orion", "Pegasus", "Quasar", "Raven", "Sequoia", "Tundra", "Umbra", "Vortex",
    "Willow", "Xenon", "Yonder", "Zephyr", "Aurora", "Beacon", "Cascade", "Delta", "Echo", "Fjord", "Granite",
    "Harbor", "Indigo", "Jasper", "Keystone", "Lighthouse", "Monsoon", "Nova", "Onyx", "Prism", "Quartz", "Ridge",
    "Summit", "Tempest", "Unity", "Vanguard", "Wavelength", "Yellowstone", "Zenith", "Apollo", "Bramble", "Comet",
)  # fmt: skip
SERVICE_PREFIXES = (
    "auth", "billing", "search", "notification", "payment", "inventory", "user", "order", "report", "media",
    "gateway", "scheduler", "ledger", "catalog", "analytics", "invoice", "email", "session", "export", "import",
    "pricing", "shipping", "audit", "feature-flag", "recommendation", "chat", "upload", "thumbnail", "webhook",
    "metrics",
)  # fmt: skip
SERVICE_SUFFIXES = ("service", "api", "worker", "gateway", "indexer", "proxy", "cron", "store", "sync", "daemon")
ENVS = ("prod", "staging", "dev", "qa", "canary", "sandbox", "eu-prod", "us-east", "ap-south", "preprod", "perf")
DOMAINS = (
    "internal.example.com", "corp.acme.io", "svc.cluster.local", "lan", "prod.internal", "infra.example.net",
    "eu.acme.cloud", "intra.globex.org",
)  # fmt: skip
TECH = (
    "PostgreSQL", "Redis", "Kafka", "Nginx", "Elasticsearch", "RabbitMQ", "MySQL", "MongoDB", "Kubernetes",
    "Terraform", "Celery", "Django", "React", "gRPC", "ClickHouse", "Prometheus", "Grafana", "Vault", "Consul",
    "Airflow", "Spark", "Flink", "SQLite", "Memcached", "HAProxy", "Envoy", "Istio", "Jenkins", "GitLab CI",
    "GitHub Actions", "Sentry", "Datadog", "OpenSearch", "Cassandra", "DynamoDB", "S3", "MinIO", "Traefik",
    "FastAPI", "Next.js", "Vue", "Svelte", "Rust", "Go", "Java", "Kotlin", "Swift", "TypeScript", "Python",
)  # fmt: skip
ERROR_DESCRIPTIONS = (
    "connection refused", "a timeout while reading from the upstream", "disk quota exceeded",
    "an expired TLS certificate", "too many open files", "a deadlock in the database", "the process running out of memory",
    "permission denied on the data directory", "a malformed JSON payload", "a DNS lookup failure",
    "a missing environment variable", "a schema migration that never finished", "a stale lock file",
    "clock skew between nodes", "an exhausted connection pool", "a full inode table", "a broken symlink in the release",
    "a rate limit from the upstream provider", "an invalid signature on the webhook", "a unicode decoding error",
    "a null pointer in the serializer", "the message queue filling up", "a segfault in the native extension",
    "a checksum mismatch", "duplicate keys on insert", "an unreachable metadata server", "a leaked file descriptor",
)  # fmt: skip
ZH_ERROR_DESCRIPTIONS = (
    "连接被拒绝", "读取上游超时", "磁盘配额用完", "TLS 证书过期", "打开文件过多", "数据库死锁", "内存不足",
    "数据目录权限不足", "JSON 格式错误", "DNS 解析失败", "缺少环境变量", "数据库迁移没有完成", "锁文件残留",
    "节点之间时钟不同步", "连接池耗尽", "消息队列堆积", "校验和不一致", "插入时主键重复",
)  # fmt: skip
FIXES = (
    "raising the connection pool size", "rotating the TLS certificate", "increasing ulimit -n",
    "restarting the worker", "adding an index on created_at", "clearing the local cache",
    "setting the missing variable in the deployment manifest", "rerunning the migration by hand",
    "deleting the stale lock file", "enabling NTP on every node", "bumping the memory limit to 4 GiB",
    "retrying with exponential backoff", "switching to the internal DNS resolver", "pinning the client library",
    "moving the job off the shared queue", "fixing the encoding to UTF-8", "rebuilding the container image",
    "rolling back the last release", "lowering the batch size", "draining the node before the upgrade",
    "regenerating the webhook secret", "vacuuming the table", "adding a health check to the load balancer",
)  # fmt: skip
ZH_FIXES = (
    "调大连接池", "更换 TLS 证书", "提高 ulimit 上限", "重启 worker", "给 created_at 加索引", "清理本地缓存",
    "在部署清单里补上变量", "手动重跑迁移", "删除残留的锁文件", "所有节点开启 NTP", "把内存上限调到 4 GiB",
    "加上指数退避重试", "回滚上一个版本", "减小批量大小", "重新构建镜像",
)  # fmt: skip
EXCEPTIONS = (
    "ConnectionResetError", "TimeoutError", "OutOfMemoryError", "NullPointerException", "KeyError",
    "IntegrityError", "OperationalError", "SSLError", "PermissionError", "UnicodeDecodeError", "DeadlockDetected",
    "BrokenPipeError", "ValidationError", "ResourceExhausted", "StaleElementReferenceException",
)  # fmt: skip
ERROR_WORDS = (
    "CONN", "TIMEOUT", "AUTH", "QUOTA", "DISK", "TLS", "DNS", "LOCK", "QUEUE", "SCHEMA", "TOKEN", "UPSTREAM",
    "CACHE", "RATE", "SIGNATURE", "REFUSED", "EXPIRED", "INVALID", "MISSING", "DENIED", "LIMIT", "RESET",
)  # fmt: skip
HTTP_STATUSES = (400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504)
TICKET_KEYS = ("JIRA", "OPS", "INC", "PLAT", "BUG", "SEC", "DATA", "MOB", "PAY", "SRCH", "INFRA", "SUP")
ENV_VAR_SUFFIXES = (
    "HOST", "PORT", "URL", "TIMEOUT", "POOL_SIZE", "API_KEY_PATH", "LOG_LEVEL", "MAX_RETRIES", "BUCKET",
    "REGION", "WORKERS", "CACHE_TTL", "BATCH_SIZE", "DSN", "QUEUE_NAME", "FEATURE_FLAG",
)  # fmt: skip
EDITORS = ("Vim", "Emacs", "VS Code", "IntelliJ", "Neovim", "Sublime Text", "Helix", "PyCharm", "Zed")
DRINKS = ("green tea", "oat-milk latte", "black coffee", "sparkling water", "espresso", "chai", "matcha", "decaf")
FOODS = (
    "vegetarian", "vegan", "gluten-free", "halal", "kosher", "pescatarian", "nut-free", "lactose-free",
)  # fmt: skip
COMM_STYLES = (
    "short written updates", "a quick call", "async comments in the doc", "bullet points over prose",
    "one message per topic", "updates at the end of the day", "detailed design docs", "diagrams over text",
    "no meetings before 10am", "Slack threads instead of DMs", "email for anything formal",
)  # fmt: skip
LANGUAGES = ("Python", "Go", "Rust", "TypeScript", "Kotlin", "Java", "C#", "Elixir", "Ruby", "Scala", "C++")
TOPICS = (
    "billing", "search relevance", "onboarding", "caching", "logging", "alerting", "checkout", "reporting",
    "data retention policy", "Q3 roadmap", "on-call rotation", "incident review", "hiring",
    "API versioning scheme", "cost reduction", "mobile release", "GDPR requests", "load testing",
    "database upgrade", "feature flags", "design system", "SSO integration", "backup strategy",
    "latency budgets", "pricing page", "accessibility", "migration plan", "test flakiness",
)  # fmt: skip
ZH_TOPICS = (
    "计费", "搜索相关性", "新用户引导", "缓存", "日志", "告警", "结算流程", "报表", "数据保留策略", "第三季度规划",
    "值班安排", "故障复盘", "招聘", "接口版本管理", "降本", "移动端发版", "压测", "数据库升级", "灰度开关",
    "单点登录", "备份策略", "迁移方案",
)  # fmt: skip
CITIES = (
    "Berlin", "Lisbon", "Osaka", "Toronto", "Nairobi", "Austin", "Warsaw", "Singapore", "São Paulo", "Dublin",
    "Bangalore", "Seoul", "Melbourne", "Cape Town", "Vancouver", "Helsinki", "Mexico City", "Shanghai", "Zurich",
    "Tallinn", "Lagos", "Denver", "Prague", "Taipei",
)  # fmt: skip
ZH_CITIES = ("北京", "上海", "深圳", "杭州", "成都", "广州", "南京", "武汉", "西安", "苏州", "新加坡", "东京")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
ZH_WEEKDAYS = ("周一", "周二", "周三", "周四", "周五")
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
)  # fmt: skip
TIMEZONES = ("UTC", "CET", "PST", "EST", "JST", "IST", "CST (China)", "AEST", "BRT")
ADJECTIVES = (
    "flaky", "reliable", "slow", "fast", "expensive", "critical", "experimental", "stable", "noisy", "brittle",
    "underused", "overloaded", "legacy", "well documented", "undocumented", "half-migrated",
)  # fmt: skip
DECISION_VERBS = ("move", "migrate", "switch", "port")
PREFIXES = (
    "", "", "", "", "", "", "Note: ", "Reminder: ", "FYI: ", "Update: ", "Important: ", "As of last week, ",
    "Since the last release, ", "For the record, ", "Heads-up: ",
)  # fmt: skip
SUFFIXES = (
    "", "", "", "", "", "", "", " (confirmed)", " (to be verified)", " — see the wiki", " per the last retro",
    " until further notice", " for now",
)  # fmt: skip
ZH_PREFIXES = ("", "", "", "", "备注：", "提醒：", "更新：", "注意：", "记录一下，")


# --- slot generators -------------------------------------------------------------------------------

Slot = Callable[[Random], str]


def _person(r: Random) -> str:
    return r.choice(FIRST_NAMES) if r.random() < 0.4 else f"{r.choice(FIRST_NAMES)} {r.choice(LAST_NAMES)}"


def _zh_person(r: Random) -> str:
    return r.choice(ZH_SURNAMES) + r.choice(ZH_GIVEN)


def _service(r: Random) -> str:
    return f"{r.choice(SERVICE_PREFIXES)}-{r.choice(SERVICE_SUFFIXES)}"


def _host(r: Random) -> str:
    return f"{r.choice(SERVICE_PREFIXES)}-{r.choice(ENVS)}-{r.randint(1, 40):02d}.{r.choice(DOMAINS)}"


def _port(r: Random) -> str:
    common = (80, 443, 3000, 5000, 5432, 6379, 8000, 8080, 8443, 8888, 9000, 9090, 9200, 27017)
    return str(r.choice(common) if r.random() < 0.3 else r.randint(1024, 65535))


def _error_code(r: Random) -> str:
    form = r.randrange(6)
    if form == 0:
        return f"E{r.randint(1000, 9999)}"
    if form == 1:
        return f"ERR_{r.choice(ERROR_WORDS)}_{r.choice(ERROR_WORDS)}"
    if form == 2:
        return f"HTTP {r.choice(HTTP_STATUSES)}"
    if form == 3:
        return f"ORA-{r.randint(1, 99999):05d}"
    if form == 4:
        return f"0x{r.getrandbits(32):08X}"
    return r.choice(EXCEPTIONS)


def _version(r: Random) -> str:
    return f"{r.randint(0, 12)}.{r.randint(0, 30)}.{r.randint(0, 20)}"


def _ticket(r: Random) -> str:
    return f"{r.choice(TICKET_KEYS)}-{r.randint(10, 9999)}"


def _env_var(r: Random) -> str:
    return f"{r.choice(SERVICE_PREFIXES).upper().replace('-', '_')}_{r.choice(ENV_VAR_SUFFIXES)}"


def _date(r: Random) -> str:
    return f"{r.choice(MONTHS)} {r.randint(1, 28)}"


def _zh_date(r: Random) -> str:
    return f"{r.randint(1, 12)}月{r.randint(1, 28)}日"


def _time(r: Random) -> str:
    return f"{r.randint(7, 18)}:{r.choice(('00', '15', '30', '45'))}"


def _num(r: Random) -> str:
    return str(r.choice((r.randint(2, 99), r.randint(100, 999), r.randint(1000, 50000))))


SLOTS: dict[str, Slot] = {
    "person": _person,
    "role": lambda r: r.choice(ROLES),
    "team": lambda r: r.choice(TEAMS),
    "project": lambda r: r.choice(PROJECTS),
    "service": _service,
    "env": lambda r: r.choice(ENVS),
    "host": _host,
    "port": _port,
    "tech": lambda r: r.choice(TECH),
    "error": _error_code,
    "desc": lambda r: r.choice(ERROR_DESCRIPTIONS),
    "fix": lambda r: r.choice(FIXES),
    "version": _version,
    "ticket": _ticket,
    "envvar": _env_var,
    "editor": lambda r: r.choice(EDITORS),
    "drink": lambda r: r.choice(DRINKS),
    "food": lambda r: r.choice(FOODS),
    "style": lambda r: r.choice(COMM_STYLES),
    "lang": lambda r: r.choice(LANGUAGES),
    "topic": lambda r: r.choice(TOPICS),
    "city": lambda r: r.choice(CITIES),
    "weekday": lambda r: r.choice(WEEKDAYS),
    "month": lambda r: r.choice(MONTHS),
    "date": _date,
    "time": _time,
    "tz": lambda r: r.choice(TIMEZONES),
    "adj": lambda r: r.choice(ADJECTIVES),
    "num": _num,
    "verb": lambda r: r.choice(DECISION_VERBS),
    "zhperson": _zh_person,
    "zhrole": lambda r: r.choice(ZH_ROLES),
    "zhteam": lambda r: r.choice(ZH_TEAMS),
    "zhdesc": lambda r: r.choice(ZH_ERROR_DESCRIPTIONS),
    "zhfix": lambda r: r.choice(ZH_FIXES),
    "zhtopic": lambda r: r.choice(ZH_TOPICS),
    "zhcity": lambda r: r.choice(ZH_CITIES),
    "zhweekday": lambda r: r.choice(ZH_WEEKDAYS),
    "zhdate": _zh_date,
}

# --- templates ----------------------------------------------------------------------------------------
# A field named like "person_2" is a second, independent draw from the "person" slot.

EN_TEMPLATES = (
    # people and roles
    "{person} is the {role} on the {team} team.",
    "{person} joined the {team} team as a {role} in {month}.",
    "{person} took over as {role} for project {project} after {person_2} moved to {team}.",
    "{person} works from {city} and is usually online from {time} {tz}.",
    "{person} is the person to ask about {topic}.",
    "{person} reports to {person_2}, who runs the {team} group.",
    "{person} is out of office until {date}; {person_2} covers {topic} meanwhile.",
    "{person} owns the {service} and reviews every change to it.",
    "The {team} team is led by {person}, based in {city}.",
    "{person} mentors the new {role} on {topic}.",
    # preferences
    "{person} prefers {style}.",
    "{person} uses {editor} and hates when tabs and spaces get mixed.",
    "{person} drinks {drink} and likes meetings on {weekday} afternoons.",
    "{person} is {food}; book a {food} option for the team dinner.",
    "The user prefers answers in {lang} with type hints and short explanations.",
    "The user wants {style} when something about {topic} changes.",
    "Keep replies to {person} brief: they prefer {style}.",
    "{person} would rather write {lang} than {lang_2} for new services.",
    "The user's timezone is {tz}, so schedule nothing before {time}.",
    "{person} likes dark mode, {editor}, and {drink} during long reviews.",
    "Never page {person} on {weekday}s; they asked for {style} instead.",
    # projects
    "Project {project} rewrites the {service} in {lang}; the old one was {adj}.",
    "Project {project} ships on {date} if the {topic} work lands in time.",
    "{project} depends on {tech} {version} and the {service}.",
    "The goal of {project} is to cut {topic} costs by {num} percent.",
    "{project} was paused in {month} because {person} left the {team} team.",
    "The {project} repository lives under the {team} group and uses {tech} for CI.",
    "{project} phase two covers {topic} and starts after the {month} freeze.",
    "{person} wrote the design doc for {project}; feedback is due {date}.",
    "The {project} demo for {person} is on {weekday} at {time}.",
    "{project} has {num} open issues, most of them about {topic}.",
    # configs, hosts, ports, env vars
    "The {service} listens on port {port} in {env}.",
    "In {env}, {service} talks to {tech} at {host}:{port}.",
    "The {env} database host is {host}, port {port}.",
    "Set {envvar} to {num} for the {service} in {env}.",
    "{envvar} must point to {host} or the {service} will not start.",
    "The health check of {service} is on port {port} at /healthz.",
    "{tech} in {env} runs on {host}; the admin UI is on port {port}.",
    "The {service} reads {envvar} at start-up; the default is {num}.",
    "The load balancer forwards port {port} to {service} on {host}.",
    "Metrics for {service} are scraped from {host}:{port}/metrics every {num} seconds.",
    "Use {host} as the bastion for {env}; SSH is on port {port}.",
    "The {env} Redis cache lives at {host}:{port} with a TTL of {num} seconds.",
    "{envvar} and {envvar_2} are both required in {env}.",
    "The connection string for {tech} is stored in {envvar}, never in the repo.",
    "After the move, {service} in {env} uses port {port} instead of {port_2}.",
    # errors and fixes
    "{error} on {service} means {desc}; fixed by {fix}.",
    "When {service} throws {error}, the cause is usually {desc}.",
    "{error} in {env} was caused by {desc}. {person} fixed it by {fix}.",
    "If you see {error} during deploys, try {fix} first.",
    "The {tech} client returns {error} for {desc}.",
    "{error} keeps coming back on {host}; the workaround is {fix}.",
    "{error} and {error_2} look alike but only the first one means {desc}.",
    "Logged {error} {num} times last night in {service}; root cause was {desc}.",
    "Runbook for {error}: check for {desc}, then try {fix}.",
    "The {service} alert for {error} is {adj} and should be tuned.",
    "Support tickets mentioning {error} go to the {team} team.",
    # tickets
    "{ticket} tracks the {desc} in {service}.",
    "{ticket} is blocked on {ticket_2} until {person} replies.",
    "{person} closed {ticket} after {fix}.",
    "{ticket}: {service} fails in {env} with {error}.",
    "The fix for {ticket} shipped in {service} {version}.",
    "{ticket} is the epic for {topic} in project {project}.",
    "Reopened {ticket}: {error} showed up again in {env}.",
    "{person} estimated {ticket} at {num} story points.",
    # versions and releases
    "{service} {version} is deployed to {env}.",
    "We pin {tech} to {version} because {version_2} broke {topic}.",
    "{tech} {version} drops support for the old API, so {service} must be updated.",
    "The {env} cluster still runs {tech} {version}.",
    "Release {version} of {project} goes out on {date}.",
    "Upgrading {tech} from {version} to {version_2} fixed {error}.",
    "{service} {version} introduced {error} under load; rolled back to {version_2}.",
    "The minimum supported {lang} version for {project} is {version}.",
    # meetings
    "The {topic} sync is every {weekday} at {time} {tz}.",
    "Meeting with {person} and {person_2} on {date} about {topic}.",
    "{person} moved the {topic} review to {weekday} at {time}.",
    "The {team} standup is at {time} {tz}; {person} runs it.",
    "Notes from the {topic} meeting: {person} will follow up on {ticket}.",
    "The quarterly planning for {project} is in {city} on {date}.",
    "In the {date} retro we agreed the {service} alerts are too {adj}.",
    "{person} asked to skip the {weekday} sync during {month}.",
    "The customer call about {topic} with {person} is at {time} {tz}.",
    "Next {topic} workshop: {date}, hosted by the {team} team.",
    # decisions
    "Decision: {verb} {service} from {tech} to {tech_2} by {month}.",
    "We decided to keep {tech} for {topic} despite the {adj} tooling.",
    "{person} approved the plan to {verb} {project} to {tech}.",
    "Agreed with {person}: no new features in {service} until {ticket} is done.",
    "We chose {tech} over {tech_2} for {topic} because {tech_2} was too {adj}.",
    "The {team} team will own {service} starting {date}.",
    "Decision log: {project} uses {lang} and {tech}; revisit in {month}.",
    "After the outage on {date}, deploys to {env} need approval from {person}.",
    "Budget for {topic} is {num} dollars per month, signed off by {person}.",
    "The {service} rewrite in {lang} was cancelled; {person} explained why in {ticket}.",
    # incidents and operations
    "Incident on {date}: {service} in {env} was down for {num} minutes due to {desc}.",
    "The {env} deploy pipeline takes {num} minutes, mostly in {tech}.",
    "Backups of {tech} run nightly at {time} {tz} to {host}.",
    "{host} is {adj} and gets restarted every {weekday}.",
    "The {service} p95 latency is {num} ms in {env}.",
    "Disk on {host} fills up every {num} days; {fix} helps.",
    "On-call this week for {team} is {person}; escalate to {person_2}.",
    "The {service} queue peaks at {num} messages around {time}.",
    "Rate limit for the {service} is {num} requests per minute per key.",
    "Certificates for {host} expire on {date}; {person} renews them.",
    "Traffic from {city} goes through {host}.",
    "{service} in {env} has {num} replicas and autoscales on CPU.",
)

ZH_TEMPLATES = (
    "{zhperson}是{zhteam}的{zhrole}。",
    "{zhperson}在{zhcity}办公，负责{zhtopic}相关的工作。",
    "{zhperson}{zhdate}之前请假，期间{zhtopic}由{zhperson_2}负责。",
    "{zhperson}喜欢{drink}，开会尽量安排在{zhweekday}下午。",
    "{zhperson}更喜欢用{editor}写{lang}。",
    "用户希望回答用中文，代码示例用{lang}。",
    "{service}在{env}环境监听{port}端口。",
    "{env}环境的数据库地址是{host}，端口{port}。",
    "{envvar}需要设置为{num}，否则{service}启动失败。",
    "{service}启动时读取{envvar}，默认值是{num}。",
    "{tech}的管理界面在{host}的{port}端口。",
    "{error}表示{zhdesc}，解决办法是{zhfix}。",
    "{service}报{error}，原因是{zhdesc}。",
    "{env}环境又出现{error}，{zhperson}通过{zhfix}解决了。",
    "{ticket}跟踪{service}的{zhdesc}问题。",
    "{ticket}已经关闭，修复包含在{service} {version}里。",
    "{tech}固定在{version}版本，因为{version_2}有兼容问题。",
    "{project}项目计划在{zhdate}发布{version}版本。",
    "{zhtopic}例会每{zhweekday}{time}开。",
    "{zhdate}和{zhperson}、{zhperson_2}讨论了{zhtopic}。",
    "决定：{zhdate}前把{service}从{tech}迁移到{tech_2}。",
    "{zhteam}从{zhdate}起负责{service}。",
    "{zhdate}故障：{service}因为{zhdesc}中断了{num}分钟。",
    "{host}每{num}天磁盘就满，需要{zhfix}。",
    "本周{zhteam}值班的是{zhperson}，升级找{zhperson_2}。",
    "{service}的限流是每个密钥每分钟{num}次请求。",
    "{zhperson}负责{project}项目，技术栈是{lang}和{tech}。",
    "{zhcity}的流量走{host}。",
)

_LOWERABLE = frozenset((
    "The", "We", "In", "After", "If", "When", "Set", "Use", "Meeting", "Notes", "Release", "Decision:", "Decision",
    "Agreed", "Budget", "Incident", "Backups", "Disk", "On-call", "Rate", "Certificates", "Traffic", "Metrics",
    "Keep", "Never", "Next", "Reopened", "Logged", "Runbook", "Support", "Upgrading", "Project",
))  # fmt: skip
_FIELD = re.compile(r"^([a-z]+?)(?:_\d+)?$")


def _fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


# Parsed once: the slot behind every field of every template (a typo fails at import, not mid-run).
_PARSED: dict[str, list[tuple[str, Slot]]] = {}
for _template in EN_TEMPLATES + ZH_TEMPLATES:
    _slots: list[tuple[str, Slot]] = []
    for _name in dict.fromkeys(_fields(_template)):
        _match = _FIELD.match(_name)
        if _match is None or _match.group(1) not in SLOTS:
            raise ValueError(f"template field {_name!r} has no slot: {_template!r}")
        _slots.append((_name, SLOTS[_match.group(1)]))
    _PARSED[_template] = _slots


def _fill(template: str, r: Random) -> str:
    values: dict[str, str] = {}
    for name, slot in _PARSED[template]:
        value = slot(r)
        # "{port} instead of {port_2}" should name two different values.
        while value in values.values():
            value = slot(r)
        values[name] = value
    return template.format(**values)


def sentence(r: Random) -> str:
    """One random memory sentence (English, or Chinese with probability ZH_SHARE)."""
    if r.random() < ZH_SHARE:
        return r.choice(ZH_PREFIXES) + _fill(r.choice(ZH_TEMPLATES), r)
    text = _fill(r.choice(EN_TEMPLATES), r)
    prefix, suffix = r.choice(PREFIXES), r.choice(SUFFIXES)
    if prefix:
        # Mid-sentence, "The"/"We"/... lose their capital; names and identifiers keep theirs.
        lower = prefix.endswith(", ") and text.split(" ", 1)[0] in _LOWERABLE
        text = prefix + (text[0].lower() + text[1:] if lower else text)
    if suffix:
        text = text[:-1] + suffix + text[-1]
    return text


def stream(seed: int = SEED) -> Iterator[str]:
    """Distinct sentences, forever, in a fixed order for a given seed."""
    r = Random(seed)
    seen: set[str] = set()
    while True:
        text = sentence(r)
        if text not in seen:
            seen.add(text)
            yield text


def corpus(size: int, seed: int = SEED) -> list[str]:
    """The first `size` distinct sentences of `stream(seed)`."""
    out: list[str] = []
    for text in stream(seed):
        if len(out) == size:
            break
        out.append(text)
    return out


def held_out(count: int, exclude: set[str], seed: int = SEED) -> list[str]:
    """`count` distinct sentences from an independent stream, none of them in `exclude` (the corpus)."""
    out: list[str] = []
    for text in stream(seed + 7_919):  # any other seed: a different stream of the same distribution
        if len(out) == count:
            break
        if text not in exclude:
            out.append(text)
    return out


def digest(seed: int = SEED, sample: int = 5_000) -> str:
    """A short hash of the first `sample` sentences: names the corpus in cache keys."""
    h = hashlib.sha256()
    for text in corpus(sample, seed):
        h.update(text.encode())
        h.update(b"\n")
    return h.hexdigest()[:12]


def paragraph(r: Random, words: int = 100) -> str:
    """Sentences joined until the text has at least `words` words (a long memory / document chunk)."""
    parts: list[str] = []
    total = 0
    while total < words:
        text = _fill(r.choice(EN_TEMPLATES), r)
        parts.append(text)
        total += len(text.split())
    return " ".join(parts)


if __name__ == "__main__":  # a peek: python -m bench.corpus [n]
    import sys

    for line in corpus(int(sys.argv[1]) if len(sys.argv) > 1 else 20):
        print(line)
