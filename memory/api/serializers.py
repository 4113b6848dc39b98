"""Input and output shapes of the REST memory API, one pair per endpoint.

Wire names are the seed's camelCase (`actorId`, `ttlMs`, `topK`). Input serializers check the
shape and types of the request (strictly: `"5"` is not a number and `5` is not a string) and
publish the limits in the OpenAPI schema (from `memory.limits`, where each is defined once); the
memory operations then check the values again (they are shared with MCP, MemOS and chat) and own
the rules JSON Schema cannot say (whitespace-only text, byte sizes); the runner checks grants.
Unknown fields are ignored.

Output serializers only document the responses: views return the service's dicts as they are.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from access import namespaces
from graph.api.serializers import ShortListField, StrictCharField, StrictRegexField
from memory import limits


class StrictBooleanField(serializers.BooleanField):
    """true or false as JSON booleans: DRF would otherwise accept "true", "yes", 1 and "on"."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictIntegerField(serializers.IntegerField):
    """A whole number that must be a JSON number: DRF would otherwise accept "5", 5.0 and true."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


def _namespace(*, required: bool, help_text: str) -> StrictRegexField:
    return StrictRegexField(
        namespaces.PATTERN,
        required=required,
        allow_null=not required,
        max_length=namespaces.MAX_NAMESPACE_LENGTH,
        trim_whitespace=False,
        help_text=help_text,
    )


def _time(help_text: str) -> StrictCharField:
    # Parsed by the memory operations (graph.validity), which name the field when it is not a time.
    return StrictCharField(required=False, allow_null=True, trim_whitespace=False, max_length=64, help_text=help_text)


def _actor(help_text: str) -> StrictCharField:
    # Stored and matched exactly as sent (no trimming); "" is a value (memories without an actor).
    return StrictCharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        trim_whitespace=False,
        max_length=limits.MAX_ACTOR_LENGTH,
        help_text=help_text,
    )


# --- write ----------------------------------------------------------------------------------------


class WriteIn(serializers.Serializer):
    namespace = _namespace(
        required=False,
        help_text="e.g. org:team:project; needs a write grant. Required here or in the X-Memory-Namespace header",
    )
    text = StrictCharField(trim_whitespace=False, help_text="the memory, stored exactly as sent")
    actorId = _actor("who the memory is about or from (a user, an agent)")
    tags = ShortListField(
        child=StrictCharField(trim_whitespace=False, max_length=limits.MAX_TAG_LENGTH),
        required=False,
        allow_null=True,
        max_length=limits.MAX_TAGS,
        help_text="free labels, returned with the memory; duplicates are stored once",
    )
    ttlMs = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=limits.MAX_TTL_MS,
        help_text="time to live in milliseconds; an expired memory is never returned. Default: kept forever",
    )
    dedupe = StrictBooleanField(
        required=False,
        help_text="false: store the text even when it says the same as a current memory of this actor in the "
        "namespace. Default true (unless the namespace turns dedupe off)",
    )
    validFrom = _time("when the fact became true (ISO 8601; a date alone is midnight UTC). Default: now")
    validTo = _time(
        "when it stopped being true (ISO 8601, after validFrom): a past fact, found by asOf and includeExpired "
        "searches only. Default: still true"
    )
    infer = StrictBooleanField(
        required=False,
        help_text="true: after storing the text, have the server's model extract its facts behind the write "
        "(docs/operations/extraction.md). Default false: nothing calls a model",
    )


class WriteOut(serializers.Serializer):
    id = serializers.CharField(help_text="mem_<number>; for a repeat, the id of the memory it repeats")
    namespace = serializers.CharField()
    createdAt = serializers.DateTimeField()
    expiresAt = serializers.DateTimeField(allow_null=True, help_text="createdAt + ttlMs; null without a ttl")
    duplicateOf = serializers.CharField(
        allow_null=True,
        help_text="the id of the current memory this text repeats (then nothing was stored, and that memory's "
        "mentionCount and lastSeen rose); null when the text was stored",
    )
    validFrom = serializers.DateTimeField(help_text="when the fact became true")
    validTo = serializers.DateTimeField(allow_null=True, help_text="when it stopped; null while current")
    inferred = serializers.ChoiceField(
        choices=["queued", "disabled"],
        required=False,
        help_text="only with infer: queued (its facts will be extracted) or disabled (no model is configured)",
    )


# --- search ---------------------------------------------------------------------------------------


class SearchIn(serializers.Serializer):
    query = StrictCharField(trim_whitespace=False, help_text="what to look for, in any words or language")
    namespace = _namespace(
        required=False,
        help_text="search this namespace only (needs a read grant; or the X-Memory-Namespace header); "
        "default: every namespace the key can read",
    )
    actorId = _actor("only memories of this actor")
    topK = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=limits.MAX_TOP_K,
        help_text=f"at most this many results (default {limits.DEFAULT_TOP_K})",
    )
    asOf = _time(
        "search what was true at this time (ISO 8601; a date alone is midnight UTC) instead of what is true now"
    )
    includeExpired = StrictBooleanField(
        required=False,
        help_text="true: search every fact, current, superseded and past, each marked with current and "
        "validFrom/validTo. Default false: current facts only",
    )


class MemoryHit(serializers.Serializer):
    id = serializers.CharField()
    text = serializers.CharField()
    namespace = serializers.CharField()
    tags = ShortListField(child=serializers.CharField())
    score = serializers.FloatField(min_value=0, max_value=1, help_text="relevance, 1 is best")
    createdAt = serializers.DateTimeField()
    expiresAt = serializers.DateTimeField(allow_null=True)
    actorId = serializers.CharField(allow_blank=True, help_text='"" when the memory has no actor')
    entityName = serializers.CharField(
        allow_null=True,
        help_text="the entity of a knowledge-graph observation; null for a memory written here",
    )
    mentionCount = serializers.IntegerField(help_text="how often the text was written (repeats are folded into it)")
    lastSeen = serializers.DateTimeField(help_text="when the text was last written (createdAt if only once)")
    validFrom = serializers.DateTimeField(help_text="when the fact became true (createdAt unless given)")
    validTo = serializers.DateTimeField(allow_null=True, help_text="when it stopped being true; null while current")
    current = serializers.BooleanField(help_text="whether it is true now")
    supersedes = serializers.CharField(allow_null=True, help_text="the memory it replaced (mem_<n>), or null")
    supersededBy = serializers.CharField(allow_null=True, help_text="the memory that replaced it, or null")
    sourceId = serializers.CharField(
        allow_null=True, help_text="the message it was extracted from (mem_<n>); null when written as is"
    )
    extractedBy = serializers.CharField(allow_null=True, help_text="the model that extracted it; null when none")


class SearchOut(serializers.Serializer):
    results = MemoryHit(many=True, help_text="best first")
    totalResults = serializers.IntegerField(help_text="how many candidates matched (results holds the best topK)")
    queryTime = serializers.IntegerField(help_text="milliseconds")


# --- delete and clear -----------------------------------------------------------------------------


def _memory_id(help_text: str = "a memory id as written or found: mem_<number>") -> StrictRegexField:
    return StrictRegexField(r"^mem_[1-9][0-9]{0,18}$", max_length=23, trim_whitespace=False, help_text=help_text)


class DeleteIn(serializers.Serializer):
    id = _memory_id()
    purge = StrictBooleanField(
        required=False,
        default=False,
        help_text="erase it and its whole history at once (for erasure requests; it cannot be restored); also "
        "erases the history of a memory deleted earlier",
    )


class DeleteOut(serializers.Serializer):
    deleted = serializers.BooleanField(
        help_text="false when no memory has this id, or it is in a namespace the key cannot write"
    )
    id = serializers.CharField()


class ClearIn(serializers.Serializer):
    namespace = _namespace(
        required=False,
        help_text="needs a write grant; or the X-Memory-Namespace header; default: the key's default namespace",
    )
    actorId = _actor("only this actor's memories")


class ClearOut(serializers.Serializer):
    cleared = serializers.IntegerField(help_text="how many memories were deleted")
    namespace = serializers.CharField()


_ANY_ID = r"^(mem|ent|rel)_[1-9][0-9]{0,18}$"


class HistoryIn(serializers.Serializer):
    id = StrictRegexField(
        _ANY_ID,
        max_length=23,
        trim_whitespace=False,
        help_text="a memory or observation id (mem_<n>), or an entity (ent_<n>) or relation (rel_<n>) id",
    )


class VersionOut(serializers.Serializer):
    id = serializers.CharField(help_text="the object's id: mem_<n>, ent_<n> or rel_<n>")
    kind = serializers.ChoiceField(choices=["observation", "entity", "relation"])
    namespace = serializers.CharField()
    version = serializers.IntegerField(help_text="1, 2, ... per object")
    action = serializers.CharField(
        help_text="create, update, merge, rename, delete, expire, restore, mention, purge or close (its validity ended)"
    )
    before = serializers.DictField(allow_null=True, help_text="the fields before; null: it did not exist")
    after = serializers.DictField(allow_null=True, help_text="the fields after; null: it was removed")
    changedAt = serializers.CharField(help_text="ISO 8601 UTC")
    key = serializers.CharField(help_text="key:<prefix> of the key that made the change; empty when none")
    userId = serializers.IntegerField(allow_null=True)
    actorId = serializers.CharField()
    surface = serializers.CharField(help_text="mcp, rest, memos, console, admin, import or system")
    operation = serializers.CharField()


class HistoryOut(serializers.Serializer):
    id = serializers.CharField()
    versions = VersionOut(many=True, help_text="newest first (at most 1,000)")


class UpdateIn(serializers.Serializer):
    id = _memory_id()
    text = StrictCharField(trim_whitespace=False, help_text="the new text (not empty)")


class UpdateOut(serializers.Serializer):
    id = serializers.CharField(help_text="the same id")
    text = serializers.CharField()
    namespace = serializers.CharField()
    version = serializers.IntegerField(allow_null=True, help_text="its version number after the update")


class SupersedeIn(serializers.Serializer):
    id = _memory_id("the current memory to replace: mem_<number>")
    text = StrictCharField(trim_whitespace=False, help_text="what is true now (not empty)")


class SupersedeOut(serializers.Serializer):
    id = serializers.CharField(help_text="the new memory, current from now")
    supersedes = serializers.CharField(help_text="the memory it replaced (closed: validTo = validFrom of the new one)")
    validFrom = serializers.DateTimeField()
    namespace = serializers.CharField()


class RestoreIn(serializers.Serializer):
    id = StrictRegexField(
        _ANY_ID,
        max_length=23,
        trim_whitespace=False,
        help_text="what to restore: a memory or observation (mem_<n>), an entity (ent_<n>) or a relation (rel_<n>)",
    )
    version = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="the version to go back to; default: undo the deletion",
    )


class RestoreOut(serializers.Serializer):
    id = serializers.CharField()
    kind = serializers.CharField()
    namespace = serializers.CharField()
    version = serializers.IntegerField(help_text="the version number the restore was recorded as")
    restoredFrom = serializers.IntegerField(help_text="the version whose fields came back")
    state = serializers.DictField(allow_null=True, help_text="the object's fields now")
    alsoRestored = serializers.ListField(
        child=serializers.CharField(), help_text="ids restored with it (an entity's observations and relations)"
    )
