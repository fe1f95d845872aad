"""The audit log for auditors: search, streaming export, chain verification."""

from __future__ import annotations

import csv
import io

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
from audit.services import audit_export_record
from core.api import UTCIsoDateTimeFilter
from core.canonical import canonical_json

EXPORT_FORMATS = ("jsonl", "csv")


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
        # The record's fields (audit.chain) as the API shows them: the seal's seq after the
        # id, the actor by name only, and whether the event is sealed yet.
        fields = [
            "id",
            "seq",
            *(f for f in chain.FIELDS if f not in ("id", "actor_id")),
            *chain.LINKS,
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
    since = UTCIsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = UTCIsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

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
        if fmt not in EXPORT_FORMATS:
            raise ValidationError({"format": "Must be jsonl or csv."})
        audit_export_record(
            actor=request.user, export_format=fmt, filters=dict(request.query_params)
        )
        return export_response(self.filter_queryset(self.get_queryset()), fmt)


def export_response(events, fmt: str) -> StreamingHttpResponse:
    """`events` streamed as an export download (`fmt`: one of EXPORT_FORMATS), in chain
    order; the API's export and the admin's share it. Recording the export is the caller's."""
    rows = selectors.export_records(events)
    stream = _jsonl(rows) if fmt == "jsonl" else _csv(rows)
    content_type = "application/x-ndjson" if fmt == "jsonl" else "text/csv"
    response = StreamingHttpResponse(stream, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="audit.{fmt}"'
    return response


def _jsonl(records):
    for record in records:
        yield canonical_json(record) + "\n"


def _csv(records):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=chain.EXPORT_FIELDS)
    writer.writeheader()
    yield buffer.getvalue()
    for record in records:
        buffer.seek(0)
        buffer.truncate()
        record["changes"] = canonical_json(record["changes"])
        record["context"] = canonical_json(record["context"])
        writer.writerow(record)
        yield buffer.getvalue()


class VerifyView(APIView):
    """Recompute the sealed chain and name the first broken event. Read only: events not
    sealed yet are reported as pending (how many, the oldest one's age), never sealed here —
    sealing runs after each commit that records events and on Celery beat, and
    `manage.py audit_verify` seals before it verifies."""

    permission_classes = [IsAuditor]

    @extend_schema(
        description="Recompute the hash chain of the sealed events (read only) and name the "
        "first broken one. `head_seq` and `head_hash` are the newest sealed event's; events "
        "recorded but not sealed yet are counted in `pending` (the oldest one's age in "
        "`pending_age_seconds`), not sealed by this request.",
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
        if checkpoint:
            result = selectors.verify_checkpoint(seq=seq, head=head, mac=mac)
        else:
            result = selectors.verify_chain(from_seq=from_seq)
        return Response(result.as_dict())
