"""PostgreSQL: a stage changes only in the transaction that approved a request for it.

The earlier guard let a stage change through when the transaction-local setting
`modelgov.stage_change` was on — and any role may `SET LOCAL` it. Now:

- `approvals_promotionrequest` gets `decided_txid`, written by a trigger (never by the
  application) with the id of the transaction that closed the request. The same trigger
  allows only the transitions of `approvals/workflow.py` (a request is filed pending; only a
  pending request changes, to approved, rejected, cancelled, expired or superseded), keeps
  every other column of a filed request unchanged (but its expiry, which moves nothing),
  refuses "approved" unless approvals by people other than the requester fill the quorum of
  the request's policy snapshot, and "rejected" without a rejection, and never lets a request
  be deleted. (Closing a request otherwise — cancelled, expired, superseded — promotes
  nothing, so the database does not second-guess it.)
- `registry_modelversion`: a stage changes only if a request approved in the current
  transaction (`txid_current()`) asks for exactly that move of that version, or — for the
  model's previous production version being archived — a request approved in this
  transaction puts another version of the same model in production.

SQLite has no triggers of this kind here; there the approval service is the guard.
"""

from django.db import migrations, models

REQUEST_GUARD = """
CREATE OR REPLACE FUNCTION approvals_request_guard() RETURNS trigger AS $$
DECLARE
    required integer;
    approvals integer;
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'promotion requests are never deleted'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'pending' THEN
            RAISE EXCEPTION 'a promotion request is filed pending, not %', NEW.status
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        NEW.decided_txid := NULL;
        RETURN NEW;
    END IF;
    IF (NEW.version_id, NEW.from_stage, NEW.to_stage, NEW.requester_id, NEW.justification,
        NEW.policy_snapshot, NEW.content_digest, NEW.replaces_id, NEW.created_at)
       IS DISTINCT FROM
       (OLD.version_id, OLD.from_stage, OLD.to_stage, OLD.requester_id, OLD.justification,
        OLD.policy_snapshot, OLD.content_digest, OLD.replaces_id, OLD.created_at) THEN
        RAISE EXCEPTION 'promotion request % is on record: only its status changes', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.status IS NOT DISTINCT FROM OLD.status THEN
        IF (NEW.closed_at, NEW.closed_reason, NEW.decided_txid)
           IS DISTINCT FROM (OLD.closed_at, OLD.closed_reason, OLD.decided_txid) THEN
            RAISE EXCEPTION 'promotion request % is on record: only its status changes', OLD.id
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.status <> 'pending'
       OR NEW.status NOT IN ('approved', 'rejected', 'cancelled', 'expired', 'superseded') THEN
        RAISE EXCEPTION 'promotion request % is %; it cannot become %',
            OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.status = 'approved' THEN
        SELECT coalesce(sum(value::integer), 0) INTO required
            FROM jsonb_each_text(NEW.policy_snapshot -> 'required_approvals');
        SELECT count(*) INTO approvals FROM approvals_promotiondecision d
            WHERE d.request_id = NEW.id AND d.outcome = 'approve'
              AND d.decider_id <> NEW.requester_id;
        IF required < 1 OR approvals < required THEN
            RAISE EXCEPTION 'promotion request % has % of % approvals; it cannot be approved',
                OLD.id, approvals, required
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    ELSIF NEW.status = 'rejected' THEN
        IF NOT EXISTS (SELECT 1 FROM approvals_promotiondecision d
                       WHERE d.request_id = NEW.id AND d.outcome = 'reject') THEN
            RAISE EXCEPTION 'promotion request % has no rejection; it cannot be rejected', OLD.id
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END IF;
    NEW.decided_txid := txid_current();
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS approvals_request_guard ON approvals_promotionrequest;
CREATE TRIGGER approvals_request_guard
    BEFORE INSERT OR UPDATE OR DELETE ON approvals_promotionrequest
    FOR EACH ROW EXECUTE FUNCTION approvals_request_guard();
"""

STAGE_GUARD = """
CREATE OR REPLACE FUNCTION approvals_stage_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.stage <> 'development' THEN
            RAISE EXCEPTION 'a new model version starts in development; stages change only '
                'through an approved promotion request'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.stage = 'production' AND NEW.content_digest IS DISTINCT FROM OLD.content_digest THEN
        RAISE EXCEPTION 'model version % is in production; its approved content cannot change',
            OLD.id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.stage IS DISTINCT FROM OLD.stage AND NOT EXISTS (
        SELECT 1 FROM approvals_promotionrequest r
        WHERE r.decided_txid = txid_current()
          AND r.status = 'approved'
          AND (
              (r.version_id = NEW.id AND r.from_stage = OLD.stage AND r.to_stage = NEW.stage)
              OR (OLD.stage = 'production' AND NEW.stage = 'archived'
                  AND r.to_stage = 'production' AND r.version_id <> NEW.id
                  AND EXISTS (SELECT 1 FROM registry_modelversion v
                              WHERE v.id = r.version_id AND v.model_id = NEW.model_id))
          )
    ) THEN
        RAISE EXCEPTION 'the stage of model version % changes only through an approved '
            'promotion request, in the transaction that approves it (approvals.services)',
            OLD.id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
"""

PREVIOUS_STAGE_GUARD = """
CREATE OR REPLACE FUNCTION approvals_stage_guard() RETURNS trigger AS $$
BEGIN
    IF coalesce(current_setting('modelgov.stage_change', true), '') = 'on' THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.stage <> 'development' THEN
            RAISE EXCEPTION 'a new model version starts in development; stages change only '
                'through an approved promotion request'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    ELSIF NEW.stage IS DISTINCT FROM OLD.stage THEN
        RAISE EXCEPTION 'the stage of model version % changes only through an approved '
            'promotion request (approvals.services)', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    ELSIF OLD.stage = 'production' AND NEW.content_digest IS DISTINCT FROM OLD.content_digest THEN
        RAISE EXCEPTION 'model version % is in production; its approved content cannot change',
            OLD.id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(REQUEST_GUARD)
        cursor.execute(STAGE_GUARD)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "DROP TRIGGER IF EXISTS approvals_request_guard ON approvals_promotionrequest"
        )
        cursor.execute("DROP FUNCTION IF EXISTS approvals_request_guard()")
        cursor.execute(PREVIOUS_STAGE_GUARD)


class Migration(migrations.Migration):
    dependencies = [("approvals", "0004_stage_guard")]
    operations = [
        migrations.AddField(
            model_name="promotionrequest",
            name="decided_txid",
            field=models.BigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddIndex(
            model_name="promotionrequest",
            index=models.Index(fields=["decided_txid"], name="approvals_decided_txid"),
        ),
        migrations.RunPython(forwards, backwards),
    ]
