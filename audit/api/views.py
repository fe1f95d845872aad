"""The audit log for auditors: search, streaming export, chain verification."""

from __future__ import annotations

import csv
import io

from django.db import transaction
from django.db.models import F
from django.http import StreamingHttpResponse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import chain, selectors
from audit.models import AuditEvent
from audit.services import audit_record, audit_seal
from core.canonical import canonical_json

# Every field that enters an event's hash (audit/chain.py), then the links: an export can be
# verified offline by scripts/verify_audit_export.py with nothing but the file and the key.
EXPORT_FIELDS = [
    "seq",
    "id",
    "occurred_at",
    "actor_id",
    "actor_username",
    "actor_kind",
    "channel",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "changes",
    "context",
    "prev_hash",
    "hash",
]


class IsAuditor(BasePermission):
    message = "The audit log is for auditors and superusers."

    def has_permission(self, request, view):
        return selectors.is_auditor(request.user)


class AuditEventSerializer(serializers.ModelSerializer):
    seq = serializers.IntegerField(source="seal.seq", read_only=True, allow_null=True, default=None)
    prev_hash = serializers.CharField(
        source="seal.prev_hash", read_only=True, allow_null=True, default=None
    )
    hash = serializers.CharField(source="seal.hash", read_only=True, allow_null=True, default=None)
    sealed = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "seq",
            "occurred_at",
            "actor_username",
            "actor_kind",
            "channel",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "changes",
            "context",
            "prev_hash",
            "hash",
            "sealed",
        ]
        read_only_fields = fields

    def get_sealed(self, event) -> bool:
        return hasattr(event, "seal")


class AuditEventFilter(filters.FilterSet):
    actor = filters.CharFilter(field_name="actor_username")
    action = filters.CharFilter(
        field_name="action",
        lookup_expr="startswith",
        label="Action prefix, e.g. registry.model_version",
    )
    since = filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["object_type", "object_id", "actor", "action", "channel", "since", "until"]


class EventCursor(CursorPagination):
    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """Audit events, newest first, with cursor pagination."""

    serializer_class = AuditEventSerializer
    permission_classes = [IsAuditor]
    filterset_class = AuditEventFilter
    pagination_class = EventCursor
    filter_backends = [filters.DjangoFilterBackend]

    def get_queryset(self):
        return selectors.events_for(self.request.user)

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["jsonl", "csv"])],
        responses={
            (200, "application/x-ndjson"): OpenApiTypes.STR,
            (200, "text/csv"): OpenApiTypes.STR,
        },
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def export(self, request):
        """Stream the (filtered) log as JSON lines or CSV, in constant memory. Recorded."""
        fmt = request.query_params.get("format", "jsonl")
        if fmt not in ("jsonl", "csv"):
            raise ValidationError({"format": "Must be jsonl or csv."})
        with transaction.atomic():
            audit_record(
                actor=request.user,
                action="audit.export.created",
                object_type="audit.auditevent",
                object_id="",
                object_repr="export",
                changes={"format": fmt, "filters": dict(request.query_params)},
            )
        # Sealed first, so the export (this export's own event included, when nothing holds
        # sealing back) carries seqs and hashes; chain order, events still pending last.
        audit_seal(wait=True)
        queryset = self.filter_queryset(self.get_queryset()).order_by(
            F("seal__seq").asc(nulls_last=True), "id"
        )
        rows = queryset.values(
            "id",
            "occurred_at",
            "actor_id",
            "actor_username",
            "actor_kind",
            "channel",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "changes",
            "context",
            "seal__seq",
            "seal__prev_hash",
            "seal__hash",
        )
        stream = _jsonl(rows) if fmt == "jsonl" else _csv(rows)
        content_type = "application/x-ndjson" if fmt == "jsonl" else "text/csv"
        response = StreamingHttpResponse(stream, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="audit.{fmt}"'
        return response


def _record(row) -> dict:
    """An exported record: the hashed fields in their canonical form, then the links."""
    return {
        "seq": row["seal__seq"],
        "id": row["id"],
        "occurred_at": chain.canonical_timestamp(row["occurred_at"]),
        "actor_id": row["actor_id"],
        "actor_username": row["actor_username"],
        "actor_kind": row["actor_kind"],
        "channel": row["channel"],
        "action": row["action"],
        "object_type": row["object_type"],
        "object_id": row["object_id"],
        "object_repr": row["object_repr"],
        "changes": row["changes"],
        "context": row["context"],
        "prev_hash": row["seal__prev_hash"],
        "hash": row["seal__hash"],
    }


def _jsonl(rows):
    for row in rows.iterator(chunk_size=2000):
        yield canonical_json(_record(row)) + "\n"


def _csv(rows):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    yield buffer.getvalue()
    for row in rows.iterator(chunk_size=2000):
        buffer.seek(0)
        buffer.truncate()
        record = _record(row)
        record["changes"] = canonical_json(record["changes"])
        record["context"] = canonical_json(record["context"])
        writer.writerow(record)
        yield buffer.getvalue()


class VerifyView(APIView):
    """Seal, then recompute the chain; names the first broken event."""

    permission_classes = [IsAuditor]

    @extend_schema(
        parameters=[
            OpenApiParameter("from", int, description="First seq to recompute (default 1)."),
            OpenApiParameter(
                "checkpoint",
                str,
                description="A checkpoint as printed by audit_checkpoint (JSON): proves the "
                "history up to it is unchanged.",
            ),
        ],
        responses={
            200: inline_serializer(
                "AuditVerification",
                fields={
                    "ok": serializers.BooleanField(),
                    "checked": serializers.IntegerField(),
                    "head_seq": serializers.IntegerField(),
                    "head_hash": serializers.CharField(),
                    "pending": serializers.IntegerField(),
                    "pending_age_seconds": serializers.FloatField(allow_null=True),
                    "broken_seq": serializers.IntegerField(allow_null=True),
                    "reason": serializers.CharField(allow_null=True),
                },
            )
        },
    )
    def get(self, request):
        try:
            from_seq = int(request.query_params.get("from", 1))
        except ValueError as exc:
            raise ValidationError({"from": "Must be a whole number."}) from exc
        if not 1 <= from_seq <= chain.MAX_SEQ:
            raise ValidationError({"from": f"Must be from 1 to {chain.MAX_SEQ}."})
        checkpoint = request.query_params.get("checkpoint")
        if checkpoint:
            try:
                seq, head, mac = chain.parse_checkpoint(checkpoint)
            except ValueError as exc:
                raise ValidationError({"checkpoint": f"Not a checkpoint: {exc}."}) from exc
        audit_seal(wait=True)
        if checkpoint:
            result = selectors.verify_checkpoint(seq=seq, head=head, mac=mac)
        else:
            result = selectors.verify_chain(from_seq=from_seq)
        return Response(result.as_dict())
