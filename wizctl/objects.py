"""What wizctl receives from wizd, typed: the results and notification params
of docs/protocol.md that wizctl reads.

wizctl never imports wizd, so these mirror ``wizd/objects.py`` (the shapes the
daemon publishes); tests/wizctl/test_ctl_objects.py holds every class here to
the daemon's keys. wizctl still reads optional data with ``.get``: a daemon
of another version may leave a key out.
"""

from __future__ import annotations

from typing import Literal, TypedDict

UserType = Literal["human", "agent"]
ProviderType = Literal["openai", "offline"]
AgentStatus = Literal["active", "inactive", "busy"]
ConversationType = Literal["dm", "channel"]
MessageKind = Literal["text", "error"]
JobStatus = Literal["waiting", "active", "delayed", "failed", "completed", "paused"]
McpTransport = Literal["stdio", "http"]


class User(TypedDict):
    """A user: the local human, or the user behind an agent (every message author is one)."""

    id: str
    name: str
    type: UserType
    created_at: int


class Provider(TypedDict):
    """An LLM provider. Never carries the API key: ``has_api_key`` says whether one
    is stored; ``api_key_env`` and ``api_key_file`` say where else it comes from.
    ``stream`` false: its server is asked for one JSON answer, not a stream."""

    id: str
    name: str
    type: ProviderType
    base_url: str | None
    default_model: str
    is_default: bool
    has_api_key: bool
    api_key_env: str | None
    api_key_file: str | None
    stream: bool
    created_at: int
    updated_at: int


class Agent(TypedDict):
    """An LLM persona with a user of its own (``user_id``) that authors its replies.

    ``model`` null means the provider's default model. ``tools``: the MCP
    tools it may call, as ``server.tool`` patterns (``fs.*``); ``max_steps``:
    the most tool steps it takes for one reply."""

    id: str
    user_id: str
    name: str
    role: str
    backstory: str
    goal: str
    system_prompt: str
    provider_id: str
    model: str | None
    temperature: float | None
    max_tokens: int | None
    tools: list[str]
    max_steps: int
    status: AgentStatus
    created_at: int
    updated_at: int


class Dm(TypedDict):
    """A direct-message conversation; ``participants`` are user ids, the local user first."""

    id: str
    type: Literal["dm"]
    name: str | None
    participants: list[str]
    archived: bool
    archived_at: int | None
    created_at: int
    updated_at: int


class OpenedDm(Dm):
    """A DM as ``dm.create`` returns it: ``existing`` when an open one was reused."""

    existing: bool


class Channel(TypedDict):
    """A project's channel: a conversation without a member list (``participants``
    is empty); an agent answers there when mentioned as ``@name``."""

    id: str
    type: Literal["channel"]
    name: str
    project_id: str
    participants: list[str]
    archived: bool
    archived_at: int | None
    created_at: int
    updated_at: int


# A conversation is a DM or a channel; ``type`` tells which.
Conversation = Dm | Channel


class Project(TypedDict):
    """A project: a named group of channels."""

    id: str
    name: str
    description: str | None
    archived: bool
    created_at: int
    updated_at: int


class Message(TypedDict):
    """A stored message. ``seq`` grows strictly with every message across the
    daemon: the cursor for history and for resuming a subscription.
    ``conversation_id`` and ``source_id`` are the same id. ``truncated`` marks a
    reply cut off at the daemon's ``max_reply_bytes``."""

    id: str
    seq: int
    conversation_id: str
    source_type: ConversationType
    source_id: str
    author_id: str
    content: str
    kind: MessageKind
    reply_to: str | None
    truncated: bool
    created_at: int


class SentMessage(TypedDict):
    """What ``message.send`` returns: the message and the ids of the reply jobs it queued."""

    message: Message
    jobs: list[str]


class HitMessage(TypedDict):
    """The message found (the fields a reader needs to place it)."""

    id: str
    seq: int
    conversation_id: str
    author_id: str
    content: str
    kind: MessageKind
    reply_to: str | None
    created_at: int


class HitConversation(TypedDict):
    """Where it was said: a DM's name (or, without one, the names of its
    participants other than the local user, comma-separated), or a channel's
    ``project#channel``."""

    id: str
    type: ConversationType
    name: str


class SearchHit(TypedDict):
    """One message ``message.search`` found, and where."""

    message: HitMessage
    conversation: HitConversation
    author_name: str
    snippet: str  # the matching part, matched words in [brackets], cuts marked …
    score: float  # FTS5's bm25 rank: lower is a better match; hits come best first


class SearchResults(TypedDict):
    """What ``message.search`` returns: the hits, best first."""

    results: list[SearchHit]


class Job(TypedDict):
    """A queued unit of work (a reply to write). ``data`` holds references (ids),
    never secrets; ``result`` is what the job produced once completed."""

    id: str
    name: str
    data: dict[str, object]  # what the job needs, by its name (a reply: agent_id ...)
    status: JobStatus
    priority: int
    progress: int
    attempts: int
    max_attempts: int
    failure_reason: str | None
    result: object
    created_at: int
    processed_on: int | None
    finished_on: int | None
    run_at: int
    group_key: str | None


class StepCall(TypedDict):
    """A tool call the model asked for; ``arguments`` as the JSON text it wrote."""

    id: str
    name: str
    arguments: str


class JobStep(TypedDict):
    """One stored step of a tool-using reply: the model's turn (``role``
    assistant, its ``tool_calls``) or a call's result (``role`` tool, its
    ``tool_call_id`` and ``name``; ``state`` started while it runs, done)."""

    step: int
    role: str
    content: str
    tool_calls: list[StepCall]
    tool_call_id: str | None
    name: str | None
    state: str | None
    created_at: int
    updated_at: int


class JobDetail(Job):
    """A job as ``job.get`` shows it: with the steps it stored (a reply's tool
    calls and their results, in order; empty for other jobs)."""

    steps: list[JobStep]


class UsageRow(TypedDict):
    """One agent's replies from one model."""

    agent_id: str
    agent_name: str
    model: str
    replies: int
    unreported: int  # replies whose provider gave no token counts
    prompt_tokens: int
    completion_tokens: int


class UsageSummary(TypedDict):
    """What ``usage.summary`` returns: rows by agent name, then model."""

    usage: list[UsageRow]


class ReplyTokens(TypedDict):
    """The model of one reply and the tokens its provider reported (null: none)."""

    model: str
    prompt_tokens: int | None
    completion_tokens: int | None


class MessageUsage(TypedDict):
    """What ``usage.messages`` returns."""

    usage: dict[str, ReplyTokens]  # by message id; only replies with a recorded model


class Settings(TypedDict):
    """The daemon's effective settings (see ``wizd config``); paths as strings."""

    socket: str
    db: str
    log_level: str
    backend: str
    concurrency: int
    job_timeout: float
    max_attempts: int
    backoff_base: float
    backoff_cap: float
    shutdown_grace: float
    context_messages: int
    max_context_bytes: int
    max_reply_bytes: int
    max_line_bytes: int
    max_batch: int
    subscriber_buffer: int
    synchronous: str
    keep_finished_jobs: int
    keep_finished_days: float
    prune_interval: float
    node: str
    lease: float


class Node(TypedDict):
    """A wizd on the database (several share one PostgreSQL; SQLite has one).
    Times in ms since the epoch (on PostgreSQL, its server's clock): the node
    renews its lease while it runs (``seen_at``: last renewed); ``alive``: the
    lease holds. Once it lapses, other nodes take back the jobs it ran."""

    id: str
    host: str
    pid: int
    socket: str
    version: str
    started_at: int
    seen_at: int
    lease_until: int
    alive: bool


class DaemonStatus(TypedDict):
    """What ``daemon.status`` returns. ``queue`` counts jobs by status (every
    status some job has, and at least waiting, active, delayed, failed and
    completed); ``last_seq`` is the newest stored message's seq (0 for none).
    ``node`` is this wizd's node id; ``nodes`` every node of the database
    (this one alone on SQLite), as of the last lease renewal."""

    version: str
    pid: int
    uptime_ms: int
    db: str
    socket: str
    queue: dict[str, int]
    last_seq: int
    subscriptions: int
    config: Settings
    node: str
    nodes: list[Node]


class McpServer(TypedDict):
    """An MCP server registered in wizd: run as ``command`` (stdio) or reached at
    ``url`` (streamable HTTP). ``env`` maps a variable of the server's
    environment to the name of wizd's variable that gives its value when the
    server starts: names only, never values. ``idempotent`` and ``confirm``:
    patterns of its tool names (``*``: all) that may run twice, and that wait
    for approval. ``running``: wizd has it started."""

    id: str
    name: str
    transport: McpTransport
    command: list[str] | None
    url: str | None
    env: dict[str, str]
    idempotent: list[str]
    confirm: list[str]
    running: bool
    created_at: int
    updated_at: int


class DeletedMcpServer(McpServer):
    """An MCP server as ``mcp.remove`` returns it."""

    deleted: bool


class McpTool(TypedDict):
    """A tool of an MCP server: ``name`` is ``server.tool``; ``input_schema``
    the JSON Schema of its arguments, as the server gives it."""

    name: str
    server: str
    tool: str
    description: str | None
    input_schema: dict[str, object]


class McpFailure(TypedDict):
    """A server whose tools could not be listed, and why."""

    server: str
    error: str


class McpToolList(TypedDict):
    tools: list[McpTool]
    failures: list[McpFailure]


class UserList(TypedDict):
    users: list[User]


class ProviderList(TypedDict):
    providers: list[Provider]


class AgentList(TypedDict):
    agents: list[Agent]


class DmList(TypedDict):
    conversations: list[Dm]


class ChannelList(TypedDict):
    conversations: list[Channel]


class McpServerList(TypedDict):
    servers: list[McpServer]


class ProjectList(TypedDict):
    projects: list[Project]


class MessageList(TypedDict):
    """Messages in increasing seq. ``has_more``: more messages lie beyond this
    page in the direction asked (older without ``after_seq``, newer with it);
    the first or last message's seq is the cursor for the next page."""

    messages: list[Message]
    has_more: bool


class JobList(TypedDict):
    """Jobs, newest first. ``next``: pass it as ``before`` for the next (older)
    page; null when there is none."""

    jobs: list[Job]
    next: str | None


class Subscribed(TypedDict):
    """The id of a new subscription: the ``subscription`` param of its notifications."""

    subscription: str


class MessageCreated(TypedDict):
    """A message was stored (or, replaying history, had been)."""

    subscription: str
    message: Message


class MessageDelta(TypedDict):
    """A piece of a reply being streamed; ``index`` counts a job's pieces from 0."""

    subscription: str
    job_id: str
    conversation_id: str
    author_id: str
    index: int
    delta: str


class ToolStarted(TypedDict):
    """An agent's reply job calls a tool (``name``: ``server.tool``) with
    ``arguments``; ``call_id`` pairs it with its ``tool.finished``."""

    subscription: str
    job_id: str
    conversation_id: str
    agent_id: str
    call_id: str
    name: str
    arguments: dict[str, object]
    step: int


class ToolApprovalRequested(TypedDict):
    """A reply job waits (status waiting) until the user approves or denies
    this call of a tool its server marks ``confirm`` (``job.approve``,
    ``job.deny``)."""

    subscription: str
    job_id: str
    conversation_id: str
    agent_id: str
    call_id: str
    name: str
    arguments: dict[str, object]


class ToolFinished(TypedDict):
    """A tool call ended: ``outcome`` ok, error (the tool failed; or, for an
    idempotent tool, it timed out or its server died), refused (not allowed,
    bad arguments) or unknown (a tool not marked idempotent that timed out,
    lost its server, or was in flight when wizd stopped: it may have acted,
    and is not run again); ``result``: its first 200 characters."""

    subscription: str
    job_id: str
    conversation_id: str
    agent_id: str
    call_id: str
    name: str
    duration_ms: int
    outcome: Literal["ok", "error", "refused", "unknown"]
    result: str


class AgentStatusChanged(TypedDict):
    subscription: str
    agent_id: str
    status: AgentStatus


class JobUpdated(TypedDict):
    subscription: str
    job: Job


class EventsLagged(TypedDict):
    """The subscription fell behind and has ended; ``last_seq`` is the seq of the
    last message it delivered (resume with ``after_seq``)."""

    subscription: str
    last_seq: int
